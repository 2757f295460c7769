"""The HTML report: content, escaping, atomic writes, and rendering in headless Chromium."""

import dataclasses
import html
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import simclust
import simclust.testing
from _reference import bridged_groups_and_an_arc
from PIL import Image
from simclust.exceptions import ParameterError
from simclust.report import html as report_html
from simclust.report import write_report

XSS_ALERT = "<img src=x onerror=alert(1)>.png"
XSS_FLAG = '<img src=x onerror="window.__xss=1">.png'
SCRIPT_ID = "</script><script>alert(1)</script>"
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 60, 220),
    "yellow": (230, 220, 40),
    "purple": (150, 40, 170),
}
PER_GROUP = 12
XSS_LABEL = "<script>alert('label')</script>"
VARIANT = "green/holiday_2024_beach_sunset_panorama_edit"
VARIANTS = ((f"{VARIANT}_version_A.png", f"{VARIANT}_version_B.png"),)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


# --------------------------------------------------------------------------- data


def _write_png(path: Path, colour, rng, patch=None) -> None:
    base = np.array(colour, dtype=np.float64) + rng.uniform(-12, 12, size=3)
    px = np.clip(base + rng.normal(0, 8, size=(24, 24, 3)), 0, 255)
    if patch is not None:
        px[:8, :8] = patch
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(px.astype(np.uint8), "RGB").save(path)


def _embed(paths) -> np.ndarray:
    """4 x 4 mean-pooled RGB pixels, centred over the dataset: one 48-d vector per image."""
    feats = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        feats.append(a.reshape(4, 6, 4, 6, 3).mean(axis=(1, 3)).reshape(-1))
    x = np.asarray(feats)
    return (x - x.mean(axis=0)).astype(np.float32)


@pytest.fixture(scope="module")
def image_result(tmp_path_factory):
    """~60 PNGs in five colour groups; the two XSS-named files are (off-centre) red ones."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    ids = []
    for name, colour in COLOURS.items():
        for i in range(PER_GROUP):
            rel = f"{name}/img_{i:02d}.png"
            _write_png(root / rel, colour, rng)
            ids.append(rel)
    for name in (XSS_ALERT, XSS_FLAG):
        rel = f"red/{name}"
        _write_png(root / rel, COLOURS["red"], rng, patch=(200, 90, 90))
        ids.append(rel)
    ids.append("red/missing.png")  # listed but never written: shown as its name
    _write_png(root / "red/missing.png", COLOURS["red"], rng)
    # exact copies: near-duplicate groups, named alike up to their distinguishing ends
    for src, copy in ((f"red/{XSS_FLAG}", f"red/copy {XSS_FLAG}"), *VARIANTS):
        if not (root / src).exists():
            _write_png(root / src, COLOURS["green"], rng, patch=(90, 200, 90))
            ids.append(src)
        (root / copy).write_bytes((root / src).read_bytes())
        ids.append(copy)
    x = _embed([root / i for i in ids])
    (root / "red/missing.png").unlink()
    labels = [i.split("/")[0] for i in ids]
    labels[ids.index("red/img_00.png")] = "blue"
    labels[ids.index("yellow/img_03.png")] = XSS_LABEL
    res = simclust.analyze(
        x,
        ids=ids,
        threshold=0.8,
        metrics=["intra", "edge", "centroid", "inter", "silhouette", "label-purity"],
        rows=pl.DataFrame({"label": labels}),
        config={"dedup": {"threshold": 1.0, "keep": "first"}},
    )
    res.tables["bad_files"] = pl.DataFrame(
        {
            "path": [f"bad/{XSS_ALERT}", f"bad/{XSS_FLAG}", "bad/broken.png"],
            "error": ["cannot identify image file <b>", "truncated & broken", "OSError"],
        }
    )
    labels = res.assignments["cluster"].to_numpy()
    red = labels[[i for i, s in enumerate(ids) if s.startswith("red/")]]
    assert len(set(red.tolist())) == 1, "the red group (with the XSS files) must be one cluster"
    assert res.clusters.filter(pl.col("size") >= 2).height == len(COLOURS)
    return res, root


@pytest.fixture(scope="module")
def image_report(image_result, tmp_path_factory):
    res, root = image_result
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(res, out, image_root=root, gallery_size=16, thumb_px=64)
    return out, out.read_text(encoding="utf-8")


def _arc_result():
    """An elongated cluster (an arc: neighbours cos >= 0.92, ends opposite) + a tight one."""
    angles = np.arange(10) * 0.35
    arc = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    rng = np.random.default_rng(3)
    tight = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.02, size=(8, 3))
    return simclust.analyze(
        np.vstack([arc, tight]).astype(np.float32),
        threshold=0.9,
        metrics=["intra", "edge", "centroid", "inter", "silhouette"],
    )


def _section(text: str, section_id: str) -> str:
    start = text.index(f'<section id="{section_id}">')
    return text[start : text.index("</section>", start)]


# --------------------------------------------------------------------------- plain tests


def test_image_report_escapes_names(image_report):
    _, text = image_report
    assert html.escape(XSS_ALERT, quote=True) in text
    assert html.escape(XSS_FLAG, quote=True) in text
    assert "<img src=x" not in text
    outliers = _section(text, "outliers")
    assert "cannot identify image file &lt;b&gt;" in outliers  # errors are escaped too
    assert "truncated &amp; broken" in outliers
    # the XSS file is a thumbnail in the red cluster's gallery, and listed as a bad file
    galleries = _section(text, "galleries")
    assert f'alt="red/{html.escape(XSS_ALERT, quote=True)}"' in galleries
    assert html.escape(f"bad/{XSS_ALERT}", quote=True) in _section(text, "outliers")
    assert f'alt="red/copy {html.escape(XSS_FLAG, quote=True)}"' in _section(text, "duplicates")
    # a listed image that does not exist is shown as its name
    assert '<div class="noimg"' in galleries and "red/missing.png</div>" in galleries


def test_image_report_has_thumbnails_and_sections(image_report):
    _, text = image_report
    assert text.startswith("<!DOCTYPE html>")
    assert text.count('<div class="cluster" id="cluster-') == len(COLOURS)
    assert text.count("data:image/jpeg;base64,") >= len(COLOURS) * 8
    sids = ("summary", "sizes", "sweep", "heatmap", "tightness", "galleries", "duplicates")
    for sid in (*sids, "labels", "outliers"):
        assert f'<section id="{sid}">' in text
    assert "SIMILARITIES" in text and "higher = closer" in text


def test_sizes_plot_shows_rows_per_size_range(image_report, image_result):
    res, _ = image_result
    _, text = image_report
    trace = _spec(text, "sizes")["data"][0]
    sizes = res.clusters["size"].to_numpy()
    assert sum(trace["y"]) == sizes.sum() == res.assignments.height  # rows, not clusters
    assert "type" not in _spec(text, "sizes")["layout"]["yaxis"]  # linear, not log
    n = res.assignments.height  # every row is in one of the 5 clusters of 12-16 rows
    assert trace["text"][-1] == f"size 9\u201316: {n} rows (100.0 % of all) in 5 clusters"


def test_sweep_starts_below_the_threshold(image_report, image_result):
    res, _ = image_result
    _, text = image_report
    xs = _spec(text, "sweep")["data"][0]["x"]
    assert xs[0] == pytest.approx(res.threshold() - 0.1) and xs[-1] == pytest.approx(0.99)
    assert "30 thresholds, 0.700 to 0.990." in _section(text, "sweep")


def test_duplicates_view(image_report):
    _, text = image_report
    dups = _section(text, "duplicates")
    assert '<a href="#duplicates">' in text
    assert "2 groups, 4 files, 2 files to remove." in dups
    # each group: the kept file first (framed), then the copy with its similarity to it
    for kept, copy in ((f"red/{XSS_FLAG}", f"red/copy {XSS_FLAG}"), *VARIANTS):
        k, c = html.escape(kept, quote=True), html.escape(copy, quote=True)
        assert dups.index(f'alt="{k}"') < dups.index(f'alt="{c}"')
        assert f'<span class="fn" style="max-width:64px" title="{c}">{c}</span>' in dups
    assert dups.count('<figure class="tile medoid">') == 2
    assert dups.count(">1.000 to kept<") == 2
    assert "<b>1.000</b>" in dups  # the pair's similarity
    assert "<img src=x" not in dups


def test_suspect_labels_view(image_report):
    _, text = image_report
    sus = _section(text, "labels")
    assert '<a href="#labels">' in text
    assert "2 suspect rows in 2 clusters." in sus
    assert html.escape(XSS_LABEL, quote=True) in sus and XSS_LABEL not in text
    assert "label blue<br>cluster: red" in sus
    assert sus.index('alt="red/img_00.png"') < sus.index('alt="yellow/img_03.png"')  # red: larger


def test_captions_hold_whole_names(image_report):
    """File names are never cut: the caption wraps the whole id, its title holds it too."""
    _, text = image_report
    gal = _section(text, "galleries")
    for _, copy in VARIANTS:
        assert f'title="{copy}">{copy}</span>' in gal


def test_counts_have_the_right_number(tmp_path):
    x = simclust.testing.make_embeddings(120, 8, n_clusters=3, seed=4)
    res = simclust.analyze(x, threshold=0.8, metrics=["intra", "centroid"])
    largest = int(res.clusters["size"].max())
    text = write_report(res, tmp_path / "r.html", gallery_size=largest - 1).read_text("utf-8")
    assert "… 1 more member (to centroid" in text
    text = write_report(res, tmp_path / "r.html", gallery_size=largest - 2).read_text("utf-8")
    assert "… 2 more members (to centroid" in text
    page = text[: text.index("</main>")]  # the page, not plotly.js
    assert "(s)" not in page and " 1 rows" not in page and " 1 clusters" not in page


def _spec(text: str, name: str) -> dict:
    m = re.search(rf'<script type="application/json" id="spec-{name}">(.*?)</script>', text)
    assert m is not None
    return __import__("json").loads(m.group(1))


def test_report_is_offline(image_report):
    _, text = image_report
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE)
    assert not re.search(r"<img[^>]*src\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*[\"']?https?:", text, re.IGNORECASE)
    assert text.count("<script>") == 2  # plotly.js once, then the page script


def test_chained_cluster_listed():
    """The two bridged groups are listed and ringed; the arc (all-pairs min -0.5) is not."""
    x, _ = bridged_groups_and_an_arc()
    res = simclust.analyze(x, threshold=0.9, metrics=["intra", "edge", "centroid"])
    bridged, arc = int(res.assignments["cluster"][0]), int(res.assignments["cluster"][40])
    assert float(res.clusters.filter(pl.col("cluster") == arc)["sim_min"][0]) < 0.0
    text = "".join(report_html._render(res, report_html._Options(None, None, 50, 24, 96)))
    table = text[text.index('<table class="data chained">') :]
    table = table[: table.index("</table>")]
    assert f'<a href="#cluster-{bridged}">{bridged}</a>' in table
    assert f">{arc}</a>" not in table
    assert "2 parts of \u2265 10% (and \u2265 3 members) at similarity \u2265 0.920" in table
    # the tightness plot rings it, and states the rule
    assert '"name":"chained (min)"' in text
    assert "conductance &lt; 0.05" in _section(text, "tightness")


def test_loose_arc_is_not_chained():
    """An elongated cluster, however low its all-pairs minimum, is not chained."""
    res = _arc_result()
    assert float(res.clusters["sim_min"].min()) < 0.0
    assert report_html._chained(res, 0.9).height == 0
    text = "".join(report_html._render(res, report_html._Options(None, None, 50, 24, 96)))
    assert '<h3 id="chained">Chained clusters</h3>\n<p class="note">None.</p>' in text


def test_report_without_images_shows_id_table(tmp_path):
    x = simclust.testing.make_embeddings(300, 16, n_clusters=5, seed=1)
    ids = [f"row-{i}" for i in range(300)]
    ids[0] = SCRIPT_ID
    res = simclust.analyze(x, ids=ids, threshold=0.8, metrics=["intra", "centroid", "inter"])
    out = write_report(res, tmp_path / "r.html", max_clusters=3, gallery_size=10)
    text = out.read_text(encoding="utf-8")
    assert '<table class="data members">' in text
    assert "data:image/jpeg;base64," not in text and '<div class="gallery">' not in text
    assert text.count('<div class="cluster" id="cluster-') == 3
    assert SCRIPT_ID not in text
    assert "</script><script>" not in text
    gal = _section(text, "galleries")
    assert "(medoid)" in gal and "more members" in gal
    # the outliers view: the cut-off it used, and the rows at or below it, lowest first
    out = _section(text, "outliers")
    nn = res.assignments["nn_similarity"].to_numpy()
    cut = np.percentile(nn, 1.0, method="lower")
    assert f"≤ <b>{cut:.3f}</b> (the lowest 1 % of 300 rows): 3 rows." in out
    lowest = [ids[i] for i in np.argsort(nn, kind="stable")[:3]]
    positions = [out.index(f'<span class="id">{i}</span>') for i in lowest]
    assert positions == sorted(positions)


def test_json_in_script_is_escaped():
    s = report_html._script_json({"t": SCRIPT_ID + " & <!--"})
    assert "<" not in s and ">" not in s and "&" not in s
    assert s.count("\\u003c") == 4


def test_heatmap_hover_text(image_report):
    _, text = image_report
    m = re.search(r'<script type="application/json" id="spec-heatmap">(.*?)</script>', text)
    assert m is not None
    spec = __import__("json").loads(m.group(1))
    trace = spec["data"][0]
    assert trace["type"] == "heatmap"
    assert len(trace["z"]) == len(COLOURS)
    assert re.match(
        r"cluster \d+ \u00d7 cluster \d+: [-0-9.]+<br>sizes \d+ \u00d7 \d+", trace["text"][0][1]
    )


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    res = _arc_result()
    target = tmp_path / "out" / "report.html"

    def boom(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report_html, "_galleries_section", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(res, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    # an existing report survives a failed rewrite untouched
    old = '<meta name="generator" content="simclust.report">old'
    target.write_text(old, encoding="utf-8")
    with pytest.raises(RuntimeError):
        write_report(res, target)
    assert target.read_text(encoding="utf-8") == old
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_deterministic_and_noise(tmp_path):
    res = _arc_result()
    # mark the tight cluster's rows as noise: the report lists them
    tight = int(res.assignments["cluster"][10])
    res = dataclasses.replace(
        res,
        assignments=res.assignments.with_columns(
            cluster=pl.when(pl.col("cluster") == tight).then(-1).otherwise(pl.col("cluster"))
        ),
        clusters=res.clusters.filter(pl.col("cluster") != tight),
    )
    a = write_report(res, tmp_path / "a.html").read_bytes()
    b = write_report(res, tmp_path / "b.html").read_bytes()
    assert a == b
    text = a.decode()
    assert "Noise rows (8)" in text


def test_arguments_validated(tmp_path):
    res = _arc_result()
    with pytest.raises(ParameterError):
        write_report(res, tmp_path / "r.html", gallery_size=0)
    with pytest.raises(ParameterError):
        write_report(res, tmp_path / "r.html", image_root=tmp_path / "nope")
    assert not (tmp_path / "r.html").exists()


def test_without_inter_and_graph(tmp_path):
    x = simclust.testing.make_embeddings(200, 8, n_clusters=3, seed=2)
    res = simclust.analyze(x, strategy="kmeans", n_clusters=3, metrics=["intra"])
    text = write_report(res, tmp_path / "k.html").read_text(encoding="utf-8")
    assert "Not computed" in _section(text, "heatmap")
    assert "No sweep" in _section(text, "sweep")
    assert "needs a clustering threshold" in text


# --------------------------------------------------------------------------- browser


def browser_missing(paths=(CHROMIUM, CHROMEDRIVER)):
    """Why the browser tests cannot run here (``None``: they can): each tool must exist."""
    missing = [p for p in paths if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} absent: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver) to run the browser tests"
    )


def test_browser_skip_reason_names_each_missing_tool(tmp_path):
    """A machine with chromium but no chromedriver skips (it must not error in setup)."""
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    driver_path = str(tmp_path / "chromedriver")
    reason = browser_missing((str(browser), driver_path))
    assert reason is not None and reason.startswith(f"{driver_path} absent")
    assert str(browser) not in reason
    assert browser_missing((str(browser),)) is None
    both = browser_missing((str(tmp_path / "a"), str(tmp_path / "b")))
    assert both is not None and both.startswith(f"{tmp_path / 'a'} and {tmp_path / 'b'} absent")


@pytest.fixture(scope="module")
def driver():
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("SIMCLUST_REQUIRE_BROWSER"):  # CI installs both: never skip there
            pytest.fail(f"SIMCLUST_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    from selenium import webdriver  # a test dependency: fail, not skip, when missing
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def loaded(driver, image_report):
    from selenium.webdriver.support.ui import WebDriverWait

    path, _ = image_report
    driver.get(path.as_uri())
    WebDriverWait(driver, 20).until(
        lambda d: (
            d.execute_script("return document.querySelectorAll('.js-plotly-plot').length") == 4
        )
    )
    return driver, driver.get_log("browser")


def test_browser_no_console_errors(loaded):
    _, logs = loaded
    severe = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert severe == []


def test_browser_plots(loaded):
    drv, _ = loaded
    types = drv.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(function (el) { return el.id + ':' + el.data[0].type; });"
    )
    assert types == [
        "plot-sizes:bar",
        "plot-sweep:scatter",
        "plot-heatmap:heatmap",
        "plot-tightness:scatter",
    ]
    hover = drv.execute_script(
        "var el = document.getElementById('plot-heatmap');"
        "el.scrollIntoView(); Plotly.Fx.hover(el, {xval: 1, yval: 0}, 'xy');"
        "var h = el.querySelector('.hoverlayer'); return h ? h.textContent : '';"
    )
    assert re.search(r"cluster \d+ \u00d7 cluster \d+: [-0-9.]+sizes \d+ \u00d7 \d+", hover)


def test_browser_gallery_thumbnails(loaded):
    drv, _ = loaded
    loaded_imgs = drv.execute_script(
        "return Array.from(document.querySelectorAll('.gallery img'))"
        ".filter(function (im) { im.loading = 'eager'; return im.naturalWidth > 0; }).length;"
    )
    total = drv.execute_script("return document.querySelectorAll('.gallery img').length;")
    assert total >= len(COLOURS) * 7
    if loaded_imgs < total:  # lazy images below the fold: scroll through once
        drv.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        loaded_imgs = drv.execute_script(
            "return Array.from(document.querySelectorAll('.gallery img'))"
            ".filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;"
        )
    assert loaded_imgs > 0


def test_browser_xss_names_are_text(loaded):
    from selenium.common.exceptions import NoAlertPresentException

    drv, _ = loaded
    with pytest.raises(NoAlertPresentException):
        _ = drv.switch_to.alert.text
    assert drv.execute_script("return typeof window.__xss;") == "undefined"
    assert drv.execute_script("return document.querySelectorAll('img[src=\"x\"]').length;") == 0
    body = drv.execute_script("return document.body.textContent;")
    assert XSS_ALERT in body and XSS_FLAG in body and XSS_LABEL in body
    assert f"bad/{XSS_ALERT}" in body
    # whole file names, wrapped inside the tile: none is cut (no overflow)
    cut = drv.execute_script(
        "return Array.from(document.querySelectorAll('figcaption .fn'))"
        ".filter(function (el) { return el.scrollWidth > el.clientWidth + 1; }).length;"
    )
    assert cut == 0
