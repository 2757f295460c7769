"""Image folders, decoding, the built-in PixelEmbedder and the synthetic image dataset."""

import os
import pickle

import numpy as np
import polars as pl
import pytest
import scipy.fft
from PIL import Image
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError
from simclust.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    PixelEmbedder,
    dct_matrix,
    find_images,
    load_image,
    zigzag_indices,
)
from simclust.testing.images import make_image_dataset

BAD_SCHEMA = {"path": pl.String, "error": pl.String}
DATASET_SCHEMA = {"path": pl.String, "group": pl.Int64, "kind": pl.String, "source": pl.String}
# BT.601 RGB -> YCbCr without offsets (they cancel once the thumbnail is centred).
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _save_noise(path, rng, size=48, fmt=None):
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, format=fmt)


def _unit(v):
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- find_images


def test_find_images_recursive_sorted_filtered(tmp_path):
    files = [
        "b.JPG",
        "a.png",
        "sub/c.jpeg",
        "sub/deeper/d.WebP",
        "sub/notes.txt",
        "z/e.tiff",
        "z/f.tif",
        "z/g.bmp",
        "a_dir.jpg/k.png",
        ".hidden/h.jpg",
        "sub/.i.png",
        "noext",
        "weird.jpg.bak",
        "A.png",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")  # a loop back to the root
    os.symlink(tmp_path / "sub" / "deeper", tmp_path / "alias")  # not a loop: followed
    os.symlink(tmp_path / "missing.jpg", tmp_path / "broken.jpg")  # dangling: skipped

    found = find_images(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    expected = [
        "A.png",
        "a.png",
        "a_dir.jpg/k.png",
        "alias/d.WebP",
        "b.JPG",
        "sub/c.jpeg",
        "sub/deeper/d.WebP",
        "z/e.tiff",
        "z/f.tif",
        "z/g.bmp",
    ]
    assert rel == expected
    assert all(p.is_file() for p in found)
    assert found[0] == tmp_path / "A.png"  # paths are root / relative path
    assert find_images(str(tmp_path)) == found


def test_find_images_suffixes():
    assert IMAGE_SUFFIXES == (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def test_find_images_bad_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_images(tmp_path / "nope")
    (tmp_path / "f.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        find_images(tmp_path / "f.jpg")
    assert find_images(tmp_path / ".") == [tmp_path / "." / "f.jpg"]


# ---------------------------------------------------------------------------- load_image


def test_load_image_exif_orientation(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # left half red
    img[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(img).save(tmp_path / "o.jpg", quality=95, exif=exif)
    out = load_image(tmp_path / "o.jpg", 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    # Rotated clockwise, the left (red) half becomes the top half.
    np.testing.assert_allclose(out[:4].reshape(-1, 3).mean(0), [255, 0, 0], atol=20)
    np.testing.assert_allclose(out[-4:].reshape(-1, 3).mean(0), [0, 0, 255], atol=20)


def test_load_image_modes(tmp_path):
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    np.testing.assert_array_equal(load_image(tmp_path / "clear.png", 5), 255)  # on white
    Image.new("RGBA", (10, 10), (10, 20, 30, 255)).save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(load_image(tmp_path / "opaque.png", 5)[0, 0], [10, 20, 30])
    Image.new("L", (10, 10), 77).save(tmp_path / "gray.bmp")
    np.testing.assert_array_equal(load_image(tmp_path / "gray.bmp", 5), 77)
    Image.new("P", (10, 10), 3).save(tmp_path / "pal.tiff")
    assert load_image(tmp_path / "pal.tiff", 7).shape == (7, 7, 3)


def test_load_image_high_bit_depth(tmp_path):
    ramp = np.linspace(0, 1, 16)[None, :].repeat(4, 0)  # a horizontal ramp 0..1
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tif")
    for name in ("g16.png", "f.tif"):
        out = load_image(tmp_path / name, 16)[0, :, 0].astype(float)
        np.testing.assert_allclose(out, ramp[0] * 255, atol=1.01)  # not clipped at 255


def test_load_image_large_jpeg_matches_full_decode(tmp_path, rng):
    """The reduced-scale JPEG decode gives about the same pixels as a full decode."""
    yy, xx = np.mgrid[0:600, 0:800] / 100.0
    img = np.stack([128 + 100 * np.sin(xx), 128 + 100 * np.cos(yy), 128 + 60 * np.sin(xx + yy)], -1)
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "big.jpg", quality=95)
    with Image.open(tmp_path / "big.jpg") as im:
        full = np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), float)
    out = load_image(tmp_path / "big.jpg", 32).astype(float)
    assert np.abs(out - full).mean() < 3.0


def test_load_image_errors(tmp_path, rng):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "random.jpg").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _save_noise(tmp_path / "full.png", rng, 64)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "j.jpg")
    data = (tmp_path / "j.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    cases = {
        "empty.png": "empty",
        "random.jpg": "cannot identify",
        "cut.png": "truncated",
        "cut.jpg": "truncated",
        "missing.webp": "FileNotFoundError",
    }
    for name, reason in cases.items():
        with pytest.raises(ImageReadError, match=reason) as e:
            load_image(tmp_path / name, 16)
        assert e.value.path == tmp_path / name
        assert str(tmp_path / name) in str(e.value)
        assert reason in e.value.reason
    for size in (0, -1, 2.5, True):
        with pytest.raises(ParameterError, match="size"):
            load_image(tmp_path / "full.png", size)


def test_image_read_error_class():
    e = ImageReadError("dir/x.jpg", "broken")
    assert isinstance(e, InvalidInputError) and isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (type(e2), str(e2), e2.path, e2.reason) == (ImageReadError, str(e), e.path, "broken")


# --------------------------------------------------------------------- DCT and zig-zag


@pytest.mark.parametrize("n", [1, 2, 7, 8, 64])
def test_dct_matrix_matches_scipy(n, rng):
    C = dct_matrix(n)
    x = rng.standard_normal((n, 5))
    np.testing.assert_allclose(C @ x, scipy.fft.dct(x, axis=0, norm="ortho"), atol=1e-12)
    X = rng.standard_normal((n, n))
    np.testing.assert_allclose(C @ X @ C.T, scipy.fft.dctn(X, norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(C @ C.T, np.eye(n), atol=1e-12)


def test_zigzag_matches_jpeg_table():
    # The JPEG zig-zag scan of an 8x8 block (ITU T.81 figure A.6), as row-major indices.
    jpeg = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]  # fmt: skip
    rows, cols = zigzag_indices(8, 64)
    assert (rows * 8 + cols).tolist() == jpeg
    rows, cols = zigzag_indices(64, 210)  # the default: all u + v <= 19
    assert (rows + cols).max() == 19 and len(set(zip(rows, cols, strict=True))) == 210


# ------------------------------------------------------------------------- PixelEmbedder


def test_embedder_params():
    emb = PixelEmbedder()
    assert emb.get_params() == {
        "size": 64,
        "n_dct": 209,
        "thumb": 8,
        "hist_bins": 4,
        "weights": (0.5, 0.3, 0.2),
        "window": 0.2,
        "max_pixels": 50_000_000,
        "n_jobs": None,
    }
    assert emb.dim == 209 + 192 + 64 == 465
    assert PixelEmbedder(**emb.get_params()).get_params() == emb.get_params()
    small = PixelEmbedder(size=16, n_dct=10, thumb=2, hist_bins=3, weights=(1, 1, 1))
    assert small.dim == 10 + 12 + 27
    assert small.blocks == {"dct": slice(0, 10), "thumb": slice(10, 22), "hist": slice(22, 49)}
    assert "n_dct=10" in repr(small)
    bad = [
        {"size": 4},
        {"size": 64, "thumb": 7},
        {"size": 63, "thumb": 3},  # the thumbnail is folded in halves: even
        {"thumb": 1},
        {"window": 0},
        {"window": float("inf")},
        {"window": True},
        {"n_dct": 0},
        {"size": 8, "n_dct": 64},
        {"hist_bins": 1},
        {"weights": (1, -1, 1)},
        {"weights": (0, 0, 0)},
        {"weights": (1, float("nan"), 1)},
        {"weights": (1, 1)},
        {"size": 64.0},
    ]
    for kwargs in bad:
        with pytest.raises(ParameterError):
            PixelEmbedder(**kwargs)


# Every other row, and columns 0, 2, ... of the left half of 32 with their mirror images.
HIST_COLS_32 = [*range(0, 16, 2), *range(31, 16, -2)]


@pytest.mark.parametrize("window", [0.2, None])
def test_embedding_blocks_match_references(rng, window):
    """Each block equals an independent numpy/scipy computation, weighted as documented.

    The references work on the whole, unfolded image: the DCT of the centre-weighted
    luma with the odd horizontal frequencies in absolute value, the thumbnail's
    mirror-symmetric and antisymmetric parts, the histogram of a flip-closed pixel grid.
    """
    emb = PixelEmbedder(
        size=32, n_dct=20, thumb=4, hist_bins=4, weights=(2.0, 1.0, 1.0), window=window
    )
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = emb.embed_arrays(rgb).astype(np.float64)
    assert x.shape == (emb.dim,) and abs(np.linalg.norm(x) - 1) < 1e-6
    f = rgb.astype(np.float64)

    luma = f @ YCC[0]
    u = (np.arange(32) + 0.5) / 32 - 0.5  # pixel centres, in sides from the middle
    g = np.ones(32) if window is None else np.exp(-0.5 * (u / window) ** 2)
    w2 = np.outer(g, g)
    coeffs = scipy.fft.dctn((luma - (luma * w2).sum() / w2.sum()) * w2, norm="ortho")
    order = sorted(
        ((r, c) for r in range(32) for c in range(32)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else -rc[0]),
    )[1:21]
    ref_dct = np.array([abs(coeffs[r, c]) if c % 2 else coeffs[r, c] for r, c in order])

    thumb = (f @ YCC.T).reshape(4, 8, 4, 8, 3).mean(axis=(1, 3))
    sym = (thumb + thumb[:, ::-1])[:, :2]
    anti = np.abs(thumb - thumb[:, ::-1])[:, :2]
    ref_thumb = np.r_[(sym - sym.mean(axis=(0, 1))).ravel(), anti.ravel()]

    # Soft histogram of the grid: tent weights around the levels 0, 85, 170, 255.
    px = f[::2][:, HIST_COLS_32].reshape(-1, 3)
    w = np.maximum(0, 1 - np.abs(px[:, :, None] / 85.0 - np.arange(4)))  # [P, 3, 4]
    ref_hist = np.sqrt(np.einsum("pi,pj,pk->ijk", w[:, 0], w[:, 1], w[:, 2]).ravel() / len(px))

    for name, ref, weight in [("dct", ref_dct, 0.5), ("thumb", ref_thumb, 0.25)]:
        block = x[emb.blocks[name]]
        np.testing.assert_allclose(_unit(block), _unit(ref), atol=2e-5)
        assert np.linalg.norm(block) ** 2 == pytest.approx(weight, abs=1e-5)
    block = x[emb.blocks["hist"]]
    np.testing.assert_allclose(block / np.sqrt(0.25), ref_hist, atol=2e-5)


def test_flip_gives_the_same_embedding_bit_for_bit(rng):
    """A horizontal flip leaves every block unchanged; a vertical flip does not."""
    for kwargs in [{}, {"size": 32, "n_dct": 20, "thumb": 4, "window": None}]:
        emb = PixelEmbedder(**kwargs)
        s = emb.size
        rgb = rng.integers(0, 256, (70, s, s, 3), dtype=np.uint8)  # more than one batch
        rgb[:5] = np.cumsum(rgb[:5], axis=2, dtype=np.uint16).astype(np.uint8)  # asymmetric
        x = emb.embed_arrays(rgb)
        np.testing.assert_array_equal(emb.embed_arrays(rgb[:, :, ::-1]), x)
        np.testing.assert_array_equal(emb.embed_arrays(np.ascontiguousarray(rgb[:, :, ::-1])), x)
        upside_down = np.einsum("ij,ij->i", emb.embed_arrays(rgb[:, ::-1]), x)
        assert upside_down.max() < 0.99


def test_histogram_on_bin_centres(rng):
    """With values at the bin centres the soft histogram is np.histogramdd's hard one."""
    emb = PixelEmbedder(size=16, n_dct=5, thumb=2, hist_bins=4)
    rgb = rng.choice(np.array([0, 85, 170, 255], np.uint8), (16, 16, 3))
    hist = emb.embed_arrays(rgb)[emb.blocks["hist"]]
    cols = [*range(0, 8, 2), *range(15, 8, -2)]  # a grid closed under the flip
    counts, _ = np.histogramdd(
        rgb[::2][:, cols].reshape(-1, 3), bins=[np.array([-1, 42, 127, 212, 256])] * 3
    )
    np.testing.assert_allclose(_unit(hist), _unit(np.sqrt(counts.ravel())), atol=1e-6)


def test_uniform_images():
    """Flat images: no structure, colour only; same colour -> identical, finite, unit norm."""
    emb = PixelEmbedder()
    a = np.full((64, 64, 3), (17, 0, 255), np.uint8)
    x = emb.embed_arrays(np.stack([a, a, np.full_like(a, 128)]))
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(x[0], x[1])
    assert np.abs(x[0, emb.blocks["dct"]]).max() < 1e-4  # pixel-level round-off only
    assert np.abs(x[0, emb.blocks["thumb"]]).max() < 1e-4
    # Value 17 lies 1/5 of the way from level 0 to level 1 (85): weights 0.8 and 0.2.
    expected = np.zeros((4, 4, 4))
    expected[0, 0, 3], expected[1, 0, 3] = 0.8, 0.2
    np.testing.assert_allclose(x[0, emb.blocks["hist"]], _unit(np.sqrt(expected.ravel())), 1e-6)
    assert x[0] @ x[2] < 0.1


def test_embed_arrays_shape_errors():
    emb = PixelEmbedder(size=32, thumb=4)
    assert emb.embed_arrays(np.zeros((3, 32, 32, 3), np.uint8)).shape == (3, emb.dim)
    for shape in [(32, 32), (2, 32, 32, 4), (64, 64, 3)]:
        with pytest.raises(ShapeError, match="32, 32, 3"):
            emb.embed_arrays(np.zeros(shape, np.uint8))


def test_embed_bad_files(tmp_path, rng):
    good = []
    for i, fmt in enumerate(["png", "jpg", "webp", "bmp"]):
        good.append(tmp_path / f"good{i}.{fmt}")
        _save_noise(good[-1], rng)
    (tmp_path / "x.jpg").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.webp").write_text("hello")
    paths = [
        good[0],
        tmp_path / "x.jpg",
        good[1],
        tmp_path / "zero.png",
        tmp_path / "missing.png",
        good[2],
        tmp_path / "text.webp",
        good[3],
    ]
    emb = PixelEmbedder()
    reference = emb.embed(good, n_jobs=1).features
    for n_jobs in (1, 2):
        calls = []
        res = emb.embed(
            paths, n_jobs=n_jobs, progress=lambda d, t, calls=calls: calls.append((d, t))
        )
        assert res.paths == good
        assert res.features.shape == (4, 465) and res.features.dtype == np.float32
        np.testing.assert_array_equal(res.features, reference)
        assert dict(res.bad_files.schema) == BAD_SCHEMA
        assert res.bad_files["path"].to_list() == [
            str(tmp_path / n) for n in ["x.jpg", "zero.png", "missing.png", "text.webp"]
        ]
        errors = res.bad_files["error"].to_list()
        assert "cannot identify" in errors[0]
        assert "empty" in errors[1]
        assert "FileNotFoundError" in errors[2]
        assert "cannot identify" in errors[3]
        assert calls == [(i, len(paths)) for i in range(1, len(paths) + 1)]


def test_embed_empty_and_all_bad(tmp_path):
    emb = PixelEmbedder(size=32, thumb=4)
    res = emb.embed([])
    assert res.features.shape == (0, emb.dim) and res.features.dtype == np.float32
    assert res.paths == [] and res.bad_files.height == 0
    assert dict(res.bad_files.schema) == BAD_SCHEMA
    (tmp_path / "a.jpg").write_bytes(b"")
    res = emb.embed([tmp_path / "a.jpg", str(tmp_path / "b.png")], n_jobs=2)
    assert res.features.shape == (0, emb.dim) and res.bad_files.height == 2
    for n_jobs in (0, -1, 1.5):
        with pytest.raises(ParameterError, match="n_jobs"):
            emb.embed([], n_jobs=n_jobs)


def _photo_like(rng, h=96, w=128):
    """A seeded photo-like image: smooth colour field, gradient, shapes, blur and noise."""
    from PIL import ImageDraw, ImageFilter

    cells = rng.integers(0, 256, (*[int(rng.integers(2, 6))] * 2, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(cells).resize((w, h), Image.Resampling.BICUBIC), float)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = rng.uniform(0, 2 * np.pi)
    gradient = (xx * np.cos(a) + yy * np.sin(a))[:, :, None] * rng.normal(0, 80, 3)
    base = field * rng.uniform(0.4, 1) + gradient + rng.uniform(-40, 40)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 9))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.3) * w
        kind = rng.integers(3)
        if kind == 0:
            ry = r * rng.uniform(0.4, 1)
            draw.ellipse((cx - r, cy - ry, cx + r, cy + ry), fill=colour)
        elif kind == 1:
            t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            draw.polygon([(cx + r * np.cos(v), cy + r * np.sin(v)) for v in t], fill=colour)
        else:
            draw.rectangle((cx - r, cy - r / 2, cx + r * rng.uniform(0.3, 1.5), cy + r / 2), colour)
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))
    noisy = np.asarray(img, float) + rng.normal(0, rng.uniform(1, 8), (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def test_flips_and_central_crops_stay_with_their_originals(tmp_path):
    """Issue 13's criterion on 200 seeded photo-like images, as JPEG files (quality 90).

    Their horizontal flips and their central 90 % crops must reach the dedup default
    threshold 0.95 with the original in >= 90 % of cases, and distinct images must stay
    apart. Measured: flips 100 % (cosine 1.0000 to 4 decimals after JPEG), crops 98.5 %
    at 0.95 (minimum 0.940), distinct pairs mean 0.35, at most 0.79, and a copy against
    another original at most 0.80. The embedder before issue 13: flips 0 % (median 0.24),
    crops 82 % at 0.95 (minimum 0.88), distinct pairs at most 0.72.
    """
    rng = np.random.default_rng(13)
    paths = {"orig": [], "flip": [], "crop": []}
    for i in range(200):
        img = _photo_like(rng)
        w, h = img.size
        box = (round(0.05 * w), round(0.05 * h), w - round(0.05 * w), h - round(0.05 * h))
        for kind, version in [
            ("orig", img),
            ("flip", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
            ("crop", img.crop(box)),
        ]:
            paths[kind].append(tmp_path / f"{i:03d}_{kind}.jpg")
            version.save(paths[kind][-1], quality=90)
    emb = PixelEmbedder()
    X = {k: emb.embed(v, n_jobs=1).features.astype(np.float64) for k, v in paths.items()}
    flip = np.einsum("ij,ij->i", X["orig"], X["flip"])
    crop = np.einsum("ij,ij->i", X["orig"], X["crop"])
    distinct = (X["orig"] @ X["orig"].T)[np.triu_indices(200, 1)]
    copies = np.r_[X["flip"], X["crop"]] @ X["orig"].T
    others = copies[~np.tile(np.eye(200, dtype=bool), (2, 1))]  # a copy against other originals

    assert flip.min() >= 0.99
    assert np.mean(crop >= 0.95) >= 0.95 and crop.min() >= 0.9
    assert distinct.max() < 0.9 and others.max() < 0.9
    assert np.mean(distinct >= 0.8) < 0.001


# ---------------------------------------------------------------- synthetic dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """300 images in 10 groups, their frame and their embeddings (n_jobs=1)."""
    root = tmp_path_factory.mktemp("images")
    df = make_image_dataset(root, n_images=300, n_groups=10, seed=0)
    paths = [root / p for p in df["path"]]
    res = PixelEmbedder().embed(paths, n_jobs=1)
    return root, df, res


def test_dataset_frame(dataset):
    root, df, res = dataset
    assert dict(df.schema) == DATASET_SCHEMA and df.height == 300
    counts = dict(df.group_by("kind").len().iter_rows())
    assert counts == {"original": 261, "near_duplicate": 30, "outlier": 9}
    assert df["path"].to_list() == sorted(df["path"].to_list())
    assert [p.relative_to(root).as_posix() for p in find_images(root)] == df["path"].to_list()
    assert {p.rsplit(".", 1)[1] for p in df["path"]} == {"png", "jpg", "webp"}
    out = df.filter(pl.col("kind") == "outlier")
    assert out["group"].to_list() == [-1] * 9 and out["path"].str.starts_with("misc/").all()
    assert out["source"].null_count() == 9
    ins = df.filter(pl.col("kind") != "outlier")
    assert set(ins["group"]) == set(range(10))
    assert (
        ins["path"].str.slice(0, 10)
        == ins["group"].map_elements(lambda g: f"group_{g:03d}/", return_dtype=pl.String)
    ).all()
    dups = df.filter(pl.col("kind") == "near_duplicate")
    src = df.join(dups.select(path="source", dup_group="group"), on="path")
    assert src.height == 30 and src["kind"].unique().to_list() == ["original"]
    assert (src["group"] == src["dup_group"]).all()
    assert res.bad_files.height == 0 and res.features.shape == (300, 465)


def test_near_duplicates_are_closer_than_other_groups(dataset):
    """Near-duplicate pairs: cosine > 0.9 (>= 95 %), far above pairs from different groups."""
    _, df, res = dataset
    X = res.features.astype(np.float64)
    pos = {p: i for i, p in enumerate(df["path"])}
    dups = df.filter(pl.col("kind") == "near_duplicate")
    a = np.array([pos[p] for p in dups["path"]])
    b = np.array([pos[p] for p in dups["source"]])
    near = np.einsum("ij,ij->i", X[a], X[b])

    g = df["group"].to_numpy()
    S = X @ X.T
    iu, ju = np.triu_indices(len(X), 1)
    clustered = (g[iu] >= 0) & (g[ju] >= 0)
    different = S[iu, ju][clustered & (g[iu] != g[ju])]
    same = S[iu, ju][clustered & (g[iu] == g[ju])]

    assert np.mean(near > 0.9) >= 0.95
    assert near.mean() > 0.95
    assert different.mean() < 0.4
    assert near.mean() - different.mean() > 0.5
    assert near.mean() > same.mean() + 0.05  # closer than mere members of the same group
    # Outliers (noise images) are not near anything.
    out = g < 0
    assert S[np.ix_(out, ~out)].max() < 0.9


def test_embedding_deterministic_across_n_jobs(dataset):
    root, df, res = dataset
    paths = [root / p for p in df["path"]]
    emb = PixelEmbedder()
    for n_jobs in (2, 3):
        other = emb.embed(paths, n_jobs=n_jobs)
        np.testing.assert_array_equal(other.features, res.features)
        assert other.paths == res.paths


def test_dataset_deterministic(tmp_path):
    kwargs = {"n_images": 60, "n_groups": 5, "size": 48}
    a = make_image_dataset(tmp_path / "a", seed=7, **kwargs)
    b = make_image_dataset(tmp_path / "b", seed=7, **kwargs)
    c = make_image_dataset(tmp_path / "c", seed=8, **kwargs)
    assert a.equals(b)
    for p in a["path"]:
        assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()
    assert not a.equals(c) or any(
        (tmp_path / "a" / p).read_bytes() != (tmp_path / "c" / p).read_bytes() for p in a["path"]
    )
    with Image.open(tmp_path / "a" / a["path"][0]) as im:
        assert im.size == (48, 48)


def test_dataset_parameters(tmp_path):
    for kwargs in [
        {"n_images": 0},
        {"n_groups": 0},
        {"size": 8},
        {"outlier_fraction": 1.0},
        {"near_duplicate_fraction": -0.1},
        {"n_images": 20, "n_groups": 30},
    ]:
        with pytest.raises(ParameterError):
            make_image_dataset(tmp_path, **kwargs)


# ruff: noqa: N806  (X, S, C: the field's matrix notation)


def test_interrupt_stops_decoding(tmp_path, monkeypatch):
    import threading

    import simclust.io.embed as embed_mod

    root = tmp_path / "imgs"
    root.mkdir()
    img = Image.new("RGB", (16, 16), (200, 10, 10))
    paths = []
    for i in range(400):
        p = root / f"{i:03d}.png"
        img.save(p)
        paths.append(p)
    calls = []
    lock = threading.Lock()
    real = embed_mod.load_image

    def counting(path, size, **kwargs):
        with lock:
            calls.append(path)
        return real(path, size, **kwargs)

    monkeypatch.setattr(embed_mod, "load_image", counting)

    def stop(done, total):
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PixelEmbedder().embed(paths, progress=stop, n_jobs=2)
    # at most the bounded window of queued decodes ran, not the remaining ~390 files
    assert 10 <= len(calls) <= 10 + 4 * 2 + 64 + 2
