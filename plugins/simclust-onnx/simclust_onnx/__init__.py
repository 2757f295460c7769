"""simclust-onnx: embed images with your own ONNX model, as the simclust embedder ``onnx``.

The plugin is found through the ``simclust`` entry-point group (this module is the
entry point's value) and registers :class:`OnnxEmbedder` under the name ``onnx`` with
:func:`simclust_register_embedders`. The image-folder loader uses it when a config says
``[input] embedder = "onnx"``::

    [input]
    path = "photos"
    embedder = "onnx"

    [input.embedder_params]
    model = "/models/resnet50.onnx"
    input_size = 224

onnxruntime is imported only when images are embedded, so installing the plugin does
not slow down runs that do not use it.

Example:
    >>> import simclust
    >>> simclust.get_host().embedders.get("onnx").distribution
    'simclust-onnx'

"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from PIL import Image, ImageOps
from simclust.base import Embedder, EmbedderOutput, Progress
from simclust.exceptions import InvalidInputError, ParameterError
from simclust.host import Registry, hookimpl
from simclust.io.embed import BAD_FILES_SCHEMA, decode_in_order
from simclust.io.images import ImageReadError

__all__ = [
    "ModelNotFoundError",
    "OnnxEmbedder",
    "OnnxModelError",
    "simclust_register_embedders",
]

_INPUT_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}
_LAYOUTS = ("NCHW", "NHWC")
_RESIZES = ("squash", "center-crop")


class OnnxModelError(InvalidInputError):
    """The ONNX model cannot be loaded or run, or its input/output does not fit.

    The message names the model file and what to change (``input_size``, ``layout``,
    ``output``...).

    Example:
        >>> str(OnnxModelError("model.onnx: output 'logits' has shape (4, 7, 9)"))
        "model.onnx: output 'logits' has shape (4, 7, 9)"

    """


class ModelNotFoundError(OnnxModelError, FileNotFoundError):
    """The ``model`` parameter names a file that does not exist.

    Example:
        >>> issubclass(ModelNotFoundError, FileNotFoundError)
        True

    """


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _dim(value: object) -> int | None:
    """A fixed (positive int) dimension of an onnxruntime shape, else ``None``."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


@dataclass(frozen=True)
class _Model:
    """An opened inference session and what the embedder needs to know about it."""

    session: Any
    path: Path
    input_name: str
    input_dtype: type[np.floating[Any]]
    batch: int | None  # the model's fixed batch size, or None (dynamic)
    output_name: str
    output_dim: int | None  # the static embedding dimension when the model declares it


class OnnxEmbedder(Embedder):
    """Runs your own ONNX image model with onnxruntime (CPU) and returns its output.

    Every image is decoded with Pillow (rotated by its EXIF orientation, transparency
    composited on white, converted to RGB), resized to ``input_size x input_size``,
    scaled to ``[0, 1]``, normalised per channel by ``(x - mean) / std`` and laid out
    as ``layout``; batches of ``batch_size`` images are run through the model. The
    chosen output must hold one vector per image: ``(B, D)``, or ``(B, D, 1, 1)`` /
    ``(B, 1, D)`` (squeezed to ``(B, D)``).

    Decoding runs in a thread pool while the model runs; the features are in input
    order and do not depend on ``batch_size`` or the number of threads. Unreadable
    images (corrupt, empty, truncated) are listed in ``bad_files``, never fatal.

    Args:
        model: path of the ``.onnx`` file (required).
        input_size: side of the square image the model takes, in pixels.
        mean: per-channel mean subtracted after scaling to ``[0, 1]`` (RGB order; one
            value applies to all channels). The default is ImageNet's.
        std: per-channel standard deviation divided by (RGB order; one value applies
            to all channels). The default is ImageNet's.
        layout: ``"NCHW"`` (channels first, PyTorch) or ``"NHWC"`` (channels last,
            TensorFlow/Keras).
        output: name of the model output holding the embeddings (default: the first
            output).
        batch_size: images per model call. A model exported with a fixed batch
            dimension is run with that batch size instead (one by one for a batch of 1).
        n_threads: onnxruntime intra-op threads (default: onnxruntime's, all cores).
        resize: ``"center-crop"`` scales the shorter side to ``input_size`` and crops
            the centre square (torchvision's ``Resize`` + ``CenterCrop``); ``"squash"``
            resizes to ``input_size x input_size`` ignoring the aspect ratio. Both use
            Pillow's antialiased bilinear filter.

    Raises:
        ModelNotFoundError: (from :meth:`embed`) ``model`` does not exist.
        OnnxModelError: (from :meth:`embed`) the model cannot be loaded, its input is
            not one 4-D float image tensor that fits ``layout`` and ``input_size``, its
            output is not one vector per image, or it returns NaN/Inf.
        ParameterError: (from :meth:`embed`) a parameter is out of range.

    Example:
        >>> emb = OnnxEmbedder(model="resnet50.onnx", input_size=224)
        >>> emb.get_params()["layout"], emb.get_params()["resize"]
        ('NCHW', 'center-crop')
        >>> out = emb.embed(sorted(Path("photos").glob("*.jpg")))  # doctest: +SKIP
        >>> out.features.shape, out.bad_files.height  # doctest: +SKIP
        ((120, 2048), 0)

    """

    def __init__(
        self,
        *,
        model: str,
        input_size: int = 224,
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
        layout: Literal["NCHW", "NHWC"] = "NCHW",
        output: str | None = None,
        batch_size: int = 32,
        n_threads: int | None = None,
        resize: Literal["squash", "center-crop"] = "center-crop",
    ) -> None:
        self.model = model
        self.input_size = input_size
        self.mean = mean
        self.std = std
        self.layout = layout
        self.output = output
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.resize = resize

    # ------------------------------------------------------------------ parameters

    def _check_params(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Validate the parameters; return ``mean`` and ``std`` as float32 ``(3,)``."""
        if not isinstance(self.model, str | os.PathLike) or not os.fspath(self.model):
            raise ParameterError(f"model must be the path of an .onnx file, got {self.model!r}")
        if not _is_int(self.input_size) or self.input_size < 1:
            raise ParameterError(f"input_size must be a positive int, got {self.input_size!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ParameterError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.n_threads is not None and (not _is_int(self.n_threads) or self.n_threads < 1):
            raise ParameterError(
                f"n_threads must be a positive int or None, got {self.n_threads!r}"
            )
        if self.layout not in _LAYOUTS:
            raise ParameterError(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        if self.resize not in _RESIZES:
            raise ParameterError(f"resize must be 'center-crop' or 'squash', got {self.resize!r}")
        if self.output is not None and not isinstance(self.output, str):
            raise ParameterError(f"output must be an output name or None, got {self.output!r}")
        out = []
        for name in ("mean", "std"):
            value = getattr(self, name)
            try:
                arr = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                arr = np.empty(0)
            if arr.size not in (1, 3) or not np.isfinite(arr).all():
                raise ParameterError(
                    f"{name} must be 3 finite numbers (R, G, B) or 1 for all channels, "
                    f"got {value!r}"
                )
            if name == "std" and (arr == 0).any():
                raise ParameterError(f"std must not contain 0, got {value!r}")
            out.append(np.broadcast_to(arr, (3,)).astype(np.float32))
        return out[0], out[1]

    # ------------------------------------------------------------------ images

    def preprocess(self, path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
        """Decode one image into exactly what the model receives (without the batch axis).

        Returns:
            float32 ``(3, input_size, input_size)`` for ``"NCHW"``, or
            ``(input_size, input_size, 3)`` for ``"NHWC"``.

        Raises:
            ImageReadError: the file cannot be read or decoded.
            ParameterError: a parameter is out of range.

        """
        mean, std = self._check_params()
        return self._preprocess(Path(path), mean, std)

    def _preprocess(
        self, path: Path, mean: npt.NDArray[np.float32], std: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        rgb = _decode(path, int(self.input_size), self.resize)
        x = np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
        x = (x - mean) / std
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def _try_preprocess(
        self, path: Path, mean: npt.NDArray[np.float32], std: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32] | str:
        """The model input of ``path``, or why it cannot be read."""
        try:
            return self._preprocess(path, mean, std)
        except ImageReadError as exc:
            return exc.reason
        except Exception as exc:  # a decoder error not caught by _decode
            return f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ model

    def _open(self) -> _Model:
        """Load the model and check that its input and output fit the parameters."""
        path = Path(os.fspath(self.model)).expanduser()
        if not path.is_file():
            where = "is not a file" if path.exists() else "does not exist"
            rel = (
                ""
                if path.is_absolute()
                else f"; a relative path is taken from the working directory {os.getcwd()!r}"
            )
            raise ModelNotFoundError(
                f"ONNX model {str(path)!r} {where} (embedder 'onnx' parameter 'model'{rel})"
            )
        try:
            import onnxruntime as ort  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise ImportError(
                "the 'onnx' embedder needs onnxruntime >= 1.16: pip install onnxruntime"
            ) from exc
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only
        if self.n_threads is not None:
            opts.intra_op_num_threads = int(self.n_threads)
        try:
            session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise OnnxModelError(f"cannot load ONNX model {str(path)!r}: {exc}") from exc

        inputs = session.get_inputs()
        if len(inputs) != 1:
            listed = ", ".join(repr(i.name) for i in inputs)
            raise OnnxModelError(
                f"{path.name}: the model has {len(inputs)} inputs ({listed}); the 'onnx' "
                "embedder feeds a single image tensor"
            )
        inp = inputs[0]
        shape = list(inp.shape) if inp.shape is not None else []
        shown = "(" + ", ".join(str(d) for d in shape) + ")"
        want = "(N, 3, H, W)" if self.layout == "NCHW" else "(N, H, W, 3)"
        if len(shape) != 4:
            raise OnnxModelError(
                f"{path.name}: input {inp.name!r} has shape {shown} ({len(shape)}-D); the "
                f"'onnx' embedder needs a 4-D image input {want} (layout = {self.layout!r})"
            )
        dtype = _INPUT_DTYPES.get(inp.type)
        if dtype is None:
            raise OnnxModelError(
                f"{path.name}: input {inp.name!r} has type {inp.type}; the 'onnx' embedder "
                "feeds float32 (or float16/float64) images"
            )
        dims = [_dim(d) for d in shape]
        if self.layout == "NCHW":
            c, h, w, other_c = dims[1], dims[2], dims[3], dims[3]
        else:
            c, h, w, other_c = dims[3], dims[1], dims[2], dims[1]
        if c is not None and c != 3:
            hint = ""
            if other_c == 3:
                other = "NHWC" if self.layout == "NCHW" else "NCHW"
                hint = f"; it looks like {other}: set layout = {other!r}"
            raise OnnxModelError(
                f"{path.name}: input {inp.name!r} has shape {shown}, which with layout = "
                f"{self.layout!r} means {c} channel(s), not 3 (RGB){hint}"
            )
        size = int(self.input_size)
        for side in (h, w):
            if side is not None and side != size:
                raise OnnxModelError(
                    f"{path.name}: input {inp.name!r} has shape {shown}: the model takes "
                    f"{h}x{w} images, but input_size = {size}"
                    + (f"; set input_size = {h}" if h == w else "")
                )

        outputs = session.get_outputs()
        names = [o.name for o in outputs]
        if self.output is None:
            out = outputs[0]
        elif self.output in names:
            out = outputs[names.index(self.output)]
        else:
            raise OnnxModelError(
                f"{path.name} has no output {self.output!r}; its outputs: "
                + ", ".join(repr(n) for n in names)
            )
        out_dims = [_dim(d) for d in (out.shape or [])]
        output_dim = None
        if len(out_dims) >= 2 and all(d is not None for d in out_dims[1:]):
            output_dim = math.prod(d for d in out_dims[1:] if d is not None)
        return _Model(session, path, inp.name, dtype, dims[0], out.name, output_dim)

    def _run(self, model: _Model, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run one batch; return float32 ``(B, D)``."""
        n = x.shape[0]
        if model.batch is not None and n != model.batch:  # pad a short last batch
            pad = np.zeros((model.batch - n, *x.shape[1:]), dtype=x.dtype)
            x = np.concatenate([x, pad])
        try:
            (y,) = model.session.run(
                [model.output_name], {model.input_name: x.astype(model.input_dtype, copy=False)}
            )
        except Exception as exc:
            raise OnnxModelError(
                f"{model.path.name}: running the model on an input of shape "
                f"{tuple(x.shape)} ({self.layout}) failed: {exc}"
            ) from exc
        y = np.asarray(y)
        shape = tuple(int(d) for d in y.shape)
        name = f"{model.path.name}: output {model.output_name!r}"
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise OnnxModelError(f"{name} has type {y.dtype}, not numbers")
        if y.ndim < 2 or shape[0] != x.shape[0] or sum(d != 1 for d in shape[1:]) > 1:
            raise OnnxModelError(
                f"{name} has shape {shape} for a batch of {x.shape[0]} image(s); the "
                "'onnx' embedder needs one vector per image: (B, D), (B, D, 1, 1) or "
                "(B, 1, D). Pick another output with output = '...' or export the model "
                "with the pooled embedding as its output"
            )
        return np.ascontiguousarray(y[:n].reshape(n, -1), dtype=np.float32)

    # ------------------------------------------------------------------ embed

    def embed(self, paths: Sequence[Path], *, progress: Progress | None = None) -> EmbedderOutput:
        """Embed the images at ``paths``; unreadable ones go to ``bad_files``.

        Args:
            paths: the image files.
            progress: called as ``progress(done, total)`` after every batch (``done``
                counts the readable and unreadable images handled so far).

        Returns:
            ``EmbedderOutput(features, paths, bad_files)``: float32 ``(n_ok, D)`` model
            outputs of the readable images in input order, their paths, and the
            unreadable files (``path``, ``error``) in input order.

        Raises:
            ModelNotFoundError: ``model`` does not exist.
            OnnxModelError: the model does not fit (see the class) or returned NaN/Inf.
            ParameterError: a parameter is out of range.

        """
        mean, std = self._check_params()
        model = self._open()
        items = [Path(p) for p in paths]
        total = len(items)
        step = model.batch if model.batch is not None else int(self.batch_size)

        feats: list[npt.NDArray[np.float32]] = []
        ok_paths: list[Path] = []
        bad_paths: list[str] = []
        bad_errors: list[str] = []
        dim: int | None = None
        arrays: list[npt.NDArray[np.float32]] = []
        readable: list[Path] = []
        workers = max(1, min(step, os.cpu_count() or 1))
        decode = partial(self._try_preprocess, mean=mean, std=std)
        # simclust's windowed decode loop: images are decoded in threads, up to two
        # batches ahead of the one the model runs on, and consumed in input order.
        with closing(decode_in_order(items, decode, workers, ahead=3 * step)) as decoded:
            for done, (path, res) in enumerate(decoded, 1):
                if isinstance(res, str):
                    bad_paths.append(os.fspath(path))
                    bad_errors.append(res)
                else:
                    arrays.append(res)
                    readable.append(path)
                if done % step and done != total:
                    continue
                if arrays:  # the readable images of this batch of `step` paths
                    y = self._run(model, np.stack(arrays))
                    if dim is not None and y.shape[1] != dim:
                        raise OnnxModelError(
                            f"{model.path.name}: output {model.output_name!r} has "
                            f"{y.shape[1]} values per image in one batch and {dim} in another"
                        )
                    dim = int(y.shape[1])
                    finite = np.isfinite(y).all(axis=1)
                    if not finite.all():
                        which = [str(readable[j]) for j in np.flatnonzero(~finite)]
                        raise OnnxModelError(
                            f"{model.path.name}: output {model.output_name!r} holds NaN or "
                            f"Inf for {len(which)} image(s), e.g. {which[0]!r}; check the "
                            "model and its preprocessing (mean, std, layout, input_size)"
                        )
                    feats.append(y)
                    ok_paths.extend(readable)
                    arrays, readable = [], []
                if progress is not None:
                    progress(done, total)

        if feats:
            features = feats[0] if len(feats) == 1 else np.concatenate(feats)
        else:
            features = np.empty((0, dim or model.output_dim or 0), dtype=np.float32)
        bad = pl.DataFrame({"path": bad_paths, "error": bad_errors}, schema=BAD_FILES_SCHEMA)
        return EmbedderOutput(features, ok_paths, bad)


def _decode(path: Path, size: int, resize: str) -> Image.Image:
    """Open ``path`` as an RGB ``size x size`` image (see :class:`OnnxEmbedder`).

    Raises:
        ImageReadError: the file cannot be read or decoded.

    """
    try:
        if os.path.getsize(path) == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
        with Image.open(path) as im:
            if im.format == "JPEG" and im.width * im.height > 16 * size * size:
                im.draft("RGB", (2 * size, 2 * size))  # decode big JPEGs at a reduced scale
            im.load()
            out = ImageOps.exif_transpose(im)
            if "transparency" in out.info or "A" in out.getbands():
                rgba = out.convert("RGBA")
                out = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                out.alpha_composite(rgba)
            out = out.convert("RGB")
            width, height = out.size
            if resize == "squash":
                if out.size != (size, size):
                    out = out.resize((size, size), Image.Resampling.BILINEAR)
            else:
                # torchvision: Resize(size) then CenterCrop(size)
                if width <= height:
                    new = (size, max(size, int(size * height / width)))
                else:
                    new = (max(size, int(size * width / height)), size)
                if out.size != new:
                    out = out.resize(new, Image.Resampling.BILINEAR)
                left = round((new[0] - size) / 2.0)
                top = round((new[1] - size) / 2.0)
                if new != (size, size):
                    out = out.crop((left, top, left + size, top + size))
            out.load()
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises many types for bad files; none is fatal here
        raise ImageReadError(path, f"{type(exc).__name__}: {exc}") from exc
    if out.size != (size, size) or out.mode != "RGB":
        raise ImageReadError(path, f"decoded to {out.mode} {out.size}, expected RGB {size}x{size}")
    return out


@hookimpl
def simclust_register_embedders(registry: Registry[type[Any]]) -> None:
    """Register :class:`OnnxEmbedder` as the embedder ``onnx``."""
    registry.register("onnx", OnnxEmbedder)
