"""Tests of the ``onnx`` embedder with tiny ONNX models built here (no downloads).

The reference model is ``images (N, 3, H, W) -> GlobalAveragePool -> Flatten -> MatMul W``
with a fixed ``W`` (3 x 8), so the expected embedding of an image is the mean of its
preprocessed pixels times ``W``, computed here with Pillow and numpy independently of
the plugin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
import simclust  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from simclust.exceptions import ConfigError, ParameterError  # noqa: E402
from simclust_onnx import ModelNotFoundError, OnnxEmbedder, OnnxModelError  # noqa: E402

W = np.array(
    [
        [1.0, -0.5, 0.25, 2.0, 0.0, 1.5, -1.0, 0.3],
        [0.2, 1.0, -0.75, -1.0, 0.5, 0.0, 2.0, -0.3],
        [-0.4, 0.3, 1.0, 0.5, -2.0, 1.0, 0.1, 0.9],
    ],
    dtype=np.float32,
)
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
SIZE = 32


# --------------------------------------------------------------------------- models


def _save(
    path: Path,
    nodes: list[Any],
    in_shape: Sequence[int | str],
    out_shape: Sequence[int | str],
    *,
    initializers: Sequence[Any] = (),
    out_name: str = "embedding",
    extra_outputs: Sequence[Any] = (),
) -> Path:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(in_shape))],
        [
            helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape)),
            *extra_outputs,
        ],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _pool_matmul(x: str = "images") -> tuple[list[Any], list[Any]]:
    nodes = [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
    ]
    return nodes, [numpy_helper.from_array(W, "W")]


def make_model(
    path: Path, *, layout: str = "NCHW", batch: int | str = "N", side: int | str = "H"
) -> Path:
    """The reference model; NHWC transposes to NCHW first."""
    if layout == "NCHW":
        nodes, inits = _pool_matmul()
        shape: list[int | str] = [batch, 3, side, side]
    else:
        nodes, inits = _pool_matmul("nchw")
        nodes.insert(0, helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2]))
        shape = [batch, side, side, 3]
    return _save(path, nodes, shape, [batch, 8], initializers=inits)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The reference models (NCHW, NHWC, fixed batch 1 and 4), built once."""
    d = tmp_path_factory.mktemp("models")
    return {
        "nchw": make_model(d / "nchw.onnx"),
        "nhwc": make_model(d / "nhwc.onnx", layout="NHWC"),
        "batch1": make_model(d / "batch1.onnx", batch=1, side=SIZE),
        "batch4": make_model(d / "batch4.onnx", batch=4),
    }


# --------------------------------------------------------------------------- images


def _pattern(w: int, h: int, seed: int) -> Image.Image:
    """A smooth colour image (JPEG-friendly) that differs by seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(0.02, 0.3, 3)
        chans.append(127 + 120 * np.sin(a * xx + b * yy + c * seed))
    return Image.fromarray(np.stack(chans, axis=-1).clip(0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Four colour images (PNG and JPEG, various aspect ratios) and a greyscale PNG."""
    d = tmp_path / "imgs"
    d.mkdir()
    specs = [("a.png", 40, 30), ("b.jpg", 50, 64), ("c.png", 32, 32), ("d.jpg", 90, 45)]
    out = []
    for i, (name, w, h) in enumerate(specs):
        p = d / name
        _pattern(w, h, i).save(p, quality=95)  # PNG ignores quality
        out.append(p)
    grey = d / "e.png"
    Image.fromarray((np.arange(48 * 36) % 251).reshape(36, 48).astype(np.uint8), "L").save(grey)
    out.append(grey)
    return out


def reference(
    path: Path, *, size: int = SIZE, resize: str = "center-crop"
) -> npt.NDArray[np.float64]:
    """Mean of the preprocessed pixels times W, in float64."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    if resize == "squash":
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    else:
        nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        rgb = rgb.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = round((nw - size) / 2), round((nh - size) / 2)
        rgb = rgb.crop((left, top, left + size, top + size))
    x = (np.asarray(rgb, dtype=np.float64) / 255.0 - MEAN) / STD
    assert x.shape == (size, size, 3)
    out: npt.NDArray[np.float64] = x.mean(axis=(0, 1)) @ W.astype(np.float64)
    return out


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("resize", ["center-crop", "squash"])
def test_values_match_numpy_reference(
    models: dict[str, Path], images: list[Path], layout: str, resize: str
) -> None:
    """Features equal the numpy reference for both layouts and resize modes."""
    model = models["nchw" if layout == "NCHW" else "nhwc"]
    emb = OnnxEmbedder(model=str(model), input_size=SIZE, layout=layout, resize=resize)  # type: ignore[arg-type]
    out = emb.embed(images)
    assert out.features.dtype == np.float32
    assert out.features.shape == (len(images), 8)
    assert out.paths == images
    assert out.bad_files.height == 0
    expected = np.stack([reference(p, resize=resize) for p in images])
    np.testing.assert_allclose(out.features, expected, rtol=0, atol=1e-5)


def test_preprocess_is_the_model_input(models: dict[str, Path], images: list[Path]) -> None:
    """``preprocess`` returns the model input; NHWC is NCHW transposed."""
    nchw = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE).preprocess(images[1])
    nhwc = OnnxEmbedder(model=str(models["nhwc"]), input_size=SIZE, layout="NHWC").preprocess(
        images[1]
    )
    assert nchw.shape == (3, SIZE, SIZE) and nchw.dtype == np.float32
    np.testing.assert_array_equal(nchw, nhwc.transpose(2, 0, 1))
    np.testing.assert_allclose(nchw.mean(axis=(1, 2)) @ W, reference(images[1]), atol=1e-5)


def test_custom_mean_std_and_exif_orientation(models: dict[str, Path], tmp_path: Path) -> None:
    """EXIF orientation is applied; a single mean/std applies to all channels."""
    base = _pattern(40, 24, 7)
    plain = tmp_path / "upright.png"
    base.transpose(Image.Transpose.ROTATE_270).save(plain)
    rotated = tmp_path / "exif.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    base.save(rotated, exif=exif)
    emb = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE, mean=(0.5,), std=(0.5,))
    out = emb.embed([plain, rotated])
    np.testing.assert_allclose(out.features[0], out.features[1], atol=1e-6)
    x = emb.preprocess(plain)
    assert x.min() >= -1.0 and x.max() <= 1.0


# --------------------------------------------------------------------------- batching


def test_batch_sizes_and_fixed_batch_models_agree(
    models: dict[str, Path], images: list[Path]
) -> None:
    """Batch sizes 1/3/32 and fixed-batch models give the same features."""
    calls: list[tuple[int, int]] = []
    runs = {
        bs: OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE, batch_size=bs).embed(images)
        for bs in (1, 32)
    }
    runs[3] = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE, batch_size=3).embed(
        images, progress=lambda d, t: calls.append((d, t))
    )
    for bs in (1, 3):
        np.testing.assert_array_equal(runs[bs].features, runs[32].features)
        assert runs[bs].paths == runs[32].paths
    assert calls == [(3, 5), (5, 5)]  # once per batch
    for name in ("batch1", "batch4"):  # one by one; padded batches of 4
        fixed = OnnxEmbedder(model=str(models[name]), input_size=SIZE, batch_size=3).embed(images)
        np.testing.assert_allclose(fixed.features, runs[32].features, rtol=0, atol=1e-6)
        assert fixed.paths == images


# --------------------------------------------------------------------------- bad files


def test_unreadable_images_go_to_bad_files(models: dict[str, Path], images: list[Path]) -> None:
    """Corrupt, empty and truncated files end in bad_files, in input order."""
    d = images[0].parent
    corrupt = d / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a JPEG")
    empty = d / "empty.png"
    empty.touch()
    truncated = d / "truncated.jpg"
    truncated.write_bytes(images[1].read_bytes()[:200])
    paths = [corrupt, images[0], empty, images[1], truncated, images[2]]
    calls: list[tuple[int, int]] = []
    out = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE, batch_size=2).embed(
        paths, progress=lambda d, t: calls.append((d, t))
    )
    assert out.paths == [images[0], images[1], images[2]]
    np.testing.assert_allclose(out.features, np.stack([reference(p) for p in out.paths]), atol=1e-5)
    assert out.bad_files.columns == ["path", "error"]
    assert out.bad_files["path"].to_list() == [str(corrupt), str(empty), str(truncated)]
    errors = out.bad_files["error"].to_list()
    assert errors[0].startswith("UnidentifiedImageError")
    assert "empty" in errors[1]
    assert errors[2]
    assert calls == [(2, 6), (4, 6), (6, 6)]

    none = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE).embed([corrupt, empty])
    assert none.features.shape == (0, 8) and none.bad_files.height == 2


# --------------------------------------------------------------------------- errors


def test_missing_model_is_a_clear_error(tmp_path: Path, images: list[Path]) -> None:
    """A missing, directory or garbage model file is a clear error."""
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelNotFoundError, match=r"nope\.onnx.*does not exist") as info:
        OnnxEmbedder(model=str(missing)).embed(images)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="is not a file"):
        OnnxEmbedder(model=str(tmp_path)).embed(images)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    with pytest.raises(OnnxModelError, match="cannot load ONNX model"):
        OnnxEmbedder(model=str(broken)).embed(images)


def _error_models(d: Path) -> dict[str, Path]:
    nodes, _ = _pool_matmul()
    gap = [helper.make_node("GlobalAveragePool", ["images"], ["embedding"])]
    inf = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    return {
        "rank3": _save(
            d / "rank3.onnx",
            [helper.make_node("ReduceMean", ["images"], ["embedding"], axes=[2], keepdims=0)],
            ["N", 3, 5],
            ["N", 3],
        ),
        "fixed64": make_model(d / "fixed64.onnx", side=64),
        "nhwc": make_model(d / "nhwc.onnx", layout="NHWC", side=SIZE),
        "nchw_1x1": _save(d / "gap.onnx", gap, ["N", 3, "H", "W"], ["N", 3, 1, 1]),
        "tokens": _save(
            d / "tokens.onnx",
            [helper.make_node("Identity", ["images"], ["embedding"])],
            ["N", 3, "H", "W"],
            ["N", 3, "H", "W"],
        ),
        "nonfinite": _save(
            d / "inf.onnx",
            [*nodes[:-1], helper.make_node("Div", ["flat", "zero"], ["embedding"])],
            ["N", 3, "H", "W"],
            ["N", 3],
            initializers=[inf],
        ),
    }


def test_model_shape_errors(tmp_path: Path, images: list[Path]) -> None:
    """Input/output shapes that do not fit, and NaN/Inf outputs, are clear errors."""
    m = _error_models(tmp_path)

    def embed(name: str, **kw: Any) -> Any:
        return OnnxEmbedder(model=str(m[name]), input_size=SIZE, **kw).embed(images[:2])

    with pytest.raises(OnnxModelError, match=r"shape \(N, 3, 5\) \(3-D\).*4-D"):
        embed("rank3")
    with pytest.raises(OnnxModelError, match=r"takes 64x64 images.*set input_size = 64"):
        embed("fixed64")
    with pytest.raises(OnnxModelError, match="set layout = 'NHWC'"):
        embed("nhwc")
    with pytest.raises(OnnxModelError, match=r"no output 'pooled'; its outputs: 'embedding'"):
        embed("nchw_1x1", output="pooled")
    squeezed = embed("nchw_1x1", output="embedding")  # (B, 3, 1, 1) -> (B, 3)
    assert squeezed.features.shape == (2, 3)
    with pytest.raises(OnnxModelError, match=r"shape \(2, 3, 32, 32\)"):
        embed("tokens")
    with pytest.raises(OnnxModelError, match="NaN or Inf for 2 image"):
        embed("nonfinite")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"input_size": 0}, "input_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_threads": 0}, "n_threads"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"layout": "CHW"}, "layout"),
        ({"resize": "pad"}, "resize"),
    ],
)
def test_parameter_errors(models: dict[str, Path], params: dict[str, Any], match: str) -> None:
    """Out-of-range parameters raise ParameterError naming the parameter."""
    with pytest.raises(ParameterError, match=match):
        OnnxEmbedder(model=str(models["nchw"]), **params).embed([])


def test_params_are_stored_verbatim(models: dict[str, Path]) -> None:
    """The constructor stores its keyword-only parameters verbatim."""
    emb = OnnxEmbedder(model=str(models["nchw"]), n_threads=1, output="embedding")
    assert emb.get_params() == {
        "model": str(models["nchw"]),
        "input_size": 224,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "layout": "NCHW",
        "output": "embedding",
        "batch_size": 32,
        "n_threads": 1,
        "resize": "center-crop",
    }
    first = simclust.base.parameters(OnnxEmbedder)[0]
    assert first.name == "model" and first.required
    assert emb.embed([]).features.shape == (0, 8)


# --------------------------------------------------------------------------- plugin host


def test_registered_through_the_entry_point() -> None:
    """The installed distribution registers the embedder 'onnx'."""
    reg = simclust.get_host().embedders.get("onnx")
    assert reg.obj is OnnxEmbedder
    assert reg.plugin == "onnx"
    assert reg.distribution == "simclust-onnx"


def _config(model: Path | None, **params: Any) -> dict[str, Any]:
    ep: dict[str, Any] = {"input_size": SIZE, **params}
    if model is not None:
        ep["model"] = str(model)
    return {
        "input": {"embedder": "onnx", "embedder_params": ep},
        "cluster": {"threshold": 0.99},
    }


def test_analyze_image_folder_end_to_end(models: dict[str, Path], tmp_path: Path) -> None:
    """simclust.analyze embeds a folder with the onnx embedder; ids are relative paths."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    base = _pattern(48, 40, 3)
    base.save(root / "one.png")
    base.save(root / "sub" / "one_copy.png")  # identical -> same cluster
    _pattern(40, 48, 11).save(root / "two.jpg", quality=95)
    _pattern(64, 40, 12).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "sub" / "z.png")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    seen: list[tuple[str, int, int]] = []
    progress: Callable[[str, int, int], None] = lambda s, d, t: seen.append((s, d, t))  # noqa: E731

    result = simclust.analyze(root, config=_config(models["nchw"]), progress=progress)

    ids = result.assignments["id"].to_list()
    assert ids == ["one.png", "sub/one_copy.png", "sub/z.png", "two.jpg"]
    labels = dict(zip(ids, result.assignments["cluster"].to_list(), strict=True))
    assert labels["one.png"] == labels["sub/one_copy.png"]
    bad = result.tables["bad_files"]
    assert bad["path"].to_list() == ["sub/broken.jpg"]
    assert any(stage == "load" for stage, _, _ in seen)


def test_analyze_reports_config_and_model_errors(tmp_path: Path) -> None:
    """A missing model parameter or file fails the run with a clear error."""
    root = tmp_path / "photos"
    root.mkdir()
    _pattern(40, 30, 1).save(root / "a.png")
    with pytest.raises(ConfigError, match="needs parameter 'model'"):
        simclust.analyze(root, config=_config(None))
    with pytest.raises(ModelNotFoundError, match=r"missing\.onnx"):
        simclust.analyze(root, config=_config(tmp_path / "missing.onnx"))


def test_n_threads_and_env_independence(models: dict[str, Path], images: list[Path]) -> None:
    """The number of onnxruntime threads does not change the features."""
    a = OnnxEmbedder(model=str(models["nchw"]), input_size=SIZE, n_threads=1).embed(images)
    b = OnnxEmbedder(model=os.fspath(models["nchw"]), input_size=SIZE, n_threads=2).embed(images)
    np.testing.assert_array_equal(a.features, b.features)
