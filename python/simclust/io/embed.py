"""A built-in image embedder that needs no downloaded weights.

:class:`PixelEmbedder` turns an image into a short, unit-norm float32 vector made for
finding duplicates and near-duplicates (crops of up to about 10 %, horizontal flips,
brightness changes, re-encoding, resizing). It is perceptual, not semantic: two
different photos of the same kind of object are not close. With the defaults an image
is decoded at 64 x 64 and described by three L2-normalised, weighted blocks
(``dim = 465``):

* ``dct`` (209 values, weight 0.5): structure. The first ``n_dct`` low-frequency 2-D
  DCT-II coefficients of the grayscale (luma) image in JPEG zig-zag order, without
  the DC term (all coefficients with ``u + v <= 19``), after subtracting the weighted
  mean luma and weighting the pixels by a centred Gaussian (standard deviation
  ``window`` times the side): the border, which a crop removes, counts little. Like a
  perceptual hash, but real-valued: invariant to brightness offsets and contrast
  scaling, robust to blur, noise and compression, and smooth under small shifts and
  crops.
* ``thumb`` (8 x 8 x 3 = 192 values, weight 0.3): colour layout. The image averaged
  down to 8 x 8 in YCbCr, each channel mean-subtracted (folded, see below).
* ``hist`` (4 x 4 x 4 = 64 values, weight 0.2): colour content. A soft (trilinear)
  RGB histogram with 4 levels per channel, square-rooted (so that the cosine of two
  blocks is the Bhattacharyya coefficient of the histograms).

Every block is exactly invariant under a horizontal flip: the image is folded about
its vertical axis into the sum ``S`` and the difference ``D`` of each pixel and its
mirror image (a flip keeps ``S`` and negates ``D``). A DCT coefficient of even
horizontal frequency is computed from ``S``, one of odd horizontal frequency (the ones
a flip negates) from ``D`` and taken in absolute value; the thumbnail holds the
mirror-symmetric part (its left half, from ``S``) and the absolute antisymmetric part
(from ``D``); the histogram counts a set of pixels closed under the flip. A flipped
copy therefore embeds to the same vector, bit for bit. The price is that an image and
its mirror image are the same thing to this embedder, and odd-frequency structure is
compared by magnitude only.

The output is L2-normalised, so the cosine similarity of two embeddings is the
weighted mean of the three block cosines (weights normalised to sum 1). A block whose
RMS contrast is below one grey level is scaled down in proportion instead of being
normalised (it would amplify pixel noise): a uniform image is described by its
histogram only.

Measured on 200 seeded photo-like images (smooth colour fields, gradients, shapes,
blur, noise; ``tests/test_io_images.py``), their horizontal flips and their central
90 % crops (JPEG, quality 90): every flip has cosine 1.0000 (to 4 decimals) to its
original and 98.5 % of the crops 0.95 or more (median 0.98, minimum 0.94), while the
distinct pairs have a mean cosine of 0.35 and at most 0.79. On
:func:`simclust.testing.images.make_image_dataset` (3000 images, 96 px, seed 0):
near-duplicate pairs have median cosine 0.997 (minimum 0.97), members of the same group
0.75 on average (two originals at most 0.936: the generator draws them so), images of
different groups 0.29.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.png"
    ...     Image.radial_gradient("L").convert("RGB").save(p)
    ...     result = PixelEmbedder().embed([p, Path(tmp) / "missing.jpg"])
    >>> result.features.shape, result.bad_files.height
    ((1, 465), 1)

"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl
from PIL import Image

from simclust.base import Embedder, EmbedderOutput
from simclust.exceptions import ParameterError, ShapeError
from simclust.io.images import DEFAULT_MAX_PIXELS, ImageReadError, load_image
from simclust.ops import resolve_threads

__all__ = [
    "BAD_FILES_SCHEMA",
    "EmbedResult",
    "PixelEmbedder",
    "dct_matrix",
    "decode_in_order",
    "zigzag_indices",
]

BAD_FILES_SCHEMA: dict[str, pl.DataType] = {"path": pl.String(), "error": pl.String()}
"""Schema of :attr:`EmbedResult.bad_files`: the file and why it could not be read."""

# RGB -> YCbCr (ITU-R BT.601, as in JPEG); the offsets do not matter after centring.
_BATCH = 64
"""Decoded images embedded together (vectorised numpy; rows are independent)."""

_YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    dtype=np.float32,
)


def dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """The orthonormal DCT-II matrix of size ``n``.

    ``dct_matrix(n) @ x`` equals ``scipy.fft.dct(x, norm="ortho")`` and
    ``C @ X @ C.T`` (``C = dct_matrix(n)``) the 2-D DCT ``scipy.fft.dctn(X, norm="ortho")``.

    Args:
        n: Size, ``>= 1``.

    Returns:
        ``float64[n, n]``; row ``k`` is the ``k``-th cosine basis vector.

    Raises:
        ParameterError: ``n < 1``.

    Example:
        >>> C = dct_matrix(4)
        >>> bool(np.allclose(C @ C.T, np.eye(4)))
        True

    """
    if n < 1:
        raise ParameterError(f"DCT size must be >= 1, got {n}")
    k = np.arange(n, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    c: npt.NDArray[np.float64] = np.cos(np.pi * (2.0 * i + 1.0) * k / (2.0 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


def zigzag_indices(n: int, count: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The first ``count`` (row, column) positions of an ``n x n`` grid in JPEG zig-zag order.

    The order runs over the anti-diagonals ``row + col = 0, 1, 2, ...``, alternating
    direction: ``(0,0), (0,1), (1,0), (2,0), (1,1), (0,2), (0,3), ...``.

    Args:
        n: Side of the grid.
        count: Number of positions, ``0 <= count <= n * n``.

    Returns:
        ``(rows, cols)``, two ``intp[count]`` arrays.

    Raises:
        ParameterError: ``count`` is out of range.

    Example:
        >>> rows, cols = zigzag_indices(8, 6)
        >>> list(zip(rows.tolist(), cols.tolist()))
        [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2)]

    """
    if not 0 <= count <= n * n:
        raise ParameterError(f"count must be in [0, {n * n}] for a {n}x{n} grid, got {count}")
    r, c = np.divmod(np.arange(n * n), n)
    s = r + c
    # Odd diagonals run down (row increasing), even ones up (row decreasing).
    order = np.lexsort((np.where(s % 2 == 1, r, -r), s))[:count]
    return r[order].astype(np.intp), c[order].astype(np.intp)


EmbedResult = EmbedderOutput
"""What :meth:`PixelEmbedder.embed` returns: :class:`simclust.base.EmbedderOutput`
``(features, paths, bad_files)``: ``float32[n_ok, dim]`` unit-norm rows of the readable
images in input order, their paths, and the unreadable files with
:data:`BAD_FILES_SCHEMA` (``path``, ``error``)."""


_R = TypeVar("_R")


def decode_in_order(
    items: Sequence[Path],
    decode: Callable[[Path], _R],
    n_jobs: int,
    *,
    ahead: int,
) -> Generator[tuple[Path, _R], None, None]:
    """Yield ``(path, decode(path))`` for every path, in input order, decoding in threads.

    The one windowed decode loop of simclust's embedders: up to ``ahead`` decodes are
    queued in a pool of ``n_jobs`` threads (Pillow releases the GIL) and consumed in
    input order, so the output does not depend on ``n_jobs`` or on completion order,
    and memory does not grow with the number of files. ``n_jobs == 1`` (or a single
    path) decodes in the calling thread. Close the generator when stopping early (use
    ``contextlib.closing``): queued decodes are then cancelled and running ones
    awaited, also on Ctrl-C or an error in the consumer.

    Example:
        >>> paths = [Path(f"{i}.png") for i in range(5)]
        >>> with closing(decode_in_order(paths, lambda p: p.stem, 2, ahead=3)) as out:
        ...     [value for _, value in out]
        ['0', '1', '2', '3', '4']

    """
    if n_jobs == 1 or len(items) <= 1:
        for path in items:
            yield path, decode(path)
        return
    window: deque[tuple[Path, Future[_R]]] = deque()
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="simclust-decode")
    try:
        for path in items:
            window.append((path, pool.submit(decode, path)))
            if len(window) >= ahead:
                p, fut = window.popleft()
                yield p, fut.result()
        while window:
            p, fut = window.popleft()
            yield p, fut.result()
    finally:
        # on Ctrl-C (or a failing consumer) drop the queued decodes
        pool.shutdown(wait=True, cancel_futures=True)


class PixelEmbedder(Embedder):
    """Weight-free, flip-invariant image embedder for near-duplicates (see the module doc).

    It is the built-in embedder ``pixels``: its constructor's parameters are the
    config's ``[input.embedder_params]``.

    Args:
        size: Side of the square the images are resized to before anything else.
        n_dct: Number of low-frequency DCT coefficients (zig-zag order, DC excluded).
        thumb: Side of the colour thumbnail; even, and must divide ``size``.
        hist_bins: Levels per RGB channel of the colour histogram (``hist_bins ** 3`` bins).
        weights: Weights of the ``dct``, ``thumb`` and ``hist`` blocks (non-negative,
            positive sum; normalised to sum 1). The cosine of two embeddings is the
            weighted mean of the block cosines. With a zero ``hist`` weight a uniform
            image embeds to the zero vector.
        window: Standard deviation of the centred Gaussian that weights the pixels of
            the ``dct`` block, as a fraction of the side (``None``: no weighting).
        max_pixels: Images with more pixels are listed as unreadable without being
            decoded (see :func:`~simclust.io.load_image`); ``None``: no limit of simclust's.
        n_jobs: Decoding threads of :meth:`embed` (default: ``SIMCLUST_NUM_THREADS`` or
            all cores; the kernels' cap applies, :func:`simclust.ops.resolve_threads`).

    Raises:
        ParameterError: A parameter is out of range.

    Example:
        >>> emb = PixelEmbedder()
        >>> emb.dim, emb.get_params()["n_dct"]
        (465, 209)
        >>> PixelEmbedder(size=32, thumb=4).get_params()["thumb"]
        4
        >>> rgb = np.zeros((2, 64, 64, 3), np.uint8)
        >>> rgb[0, :32] = 255
        >>> rgb[1, :30] = 230  # a shifted, darker copy
        >>> x = emb.embed_arrays(rgb)
        >>> bool(x[0] @ x[1] > 0.9)
        True
        >>> rgb[1] = rgb[0, :, ::-1]  # a horizontal flip: the same embedding
        >>> bool(np.array_equal(*emb.embed_arrays(rgb)))
        True

    """

    def __init__(
        self,
        *,
        size: int = 64,
        n_dct: int = 209,
        thumb: int = 8,
        hist_bins: int = 4,
        weights: tuple[float, float, float] = (0.5, 0.3, 0.2),
        window: float | None = 0.2,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        n_jobs: int | None = None,
    ) -> None:
        self.n_jobs = n_jobs
        if max_pixels is not None and (
            isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
        ):
            raise ParameterError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
        self.max_pixels = max_pixels
        for name, value, low in [
            ("size", size, 8),
            ("thumb", thumb, 2),
            ("hist_bins", hist_bins, 2),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ParameterError(f"{name} must be an int >= {low}, got {value!r}")
        if thumb % 2:
            raise ParameterError(f"thumb must be even (the flip folds it in halves), got {thumb}")
        if size % thumb:
            raise ParameterError(f"thumb ({thumb}) must divide size ({size})")
        if window is not None and (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or not np.isfinite(window)
            or window <= 0
        ):
            raise ParameterError(f"window must be a positive number or None, got {window!r}")
        if isinstance(n_dct, bool) or not isinstance(n_dct, int) or not 1 <= n_dct < size * size:
            raise ParameterError(f"n_dct must be an int in [1, {size * size - 1}], got {n_dct!r}")
        w = tuple(float(v) for v in weights)
        if len(w) != 3 or not all(np.isfinite(v) and v >= 0 for v in w) or sum(w) <= 0:
            raise ParameterError(
                "weights must be 3 finite non-negative numbers with a positive sum, "
                f"got {weights!r}"
            )
        self.size = size
        self.n_dct = n_dct
        self.thumb = thumb
        self.hist_bins = hist_bins
        self.weights: tuple[float, float, float] = (w[0], w[1], w[2])
        self.window = window

        rows, cols = zigzag_indices(size, n_dct + 1)
        rows, cols = rows[1:], cols[1:]  # drop DC
        k = int(max(rows.max(), cols.max())) + 1
        half = size // 2
        c = dct_matrix(size)[:k].astype(np.float32)  # only the low frequencies
        self._dct_rows = c
        # Horizontal frequencies on the folded halves: even ones from S, odd ones from D.
        self._dct_even, self._dct_odd = c[0::2, :half], c[1::2, :half]
        self._zz = rows * k + cols
        total = sum(w)
        self._scale = [np.float32(np.sqrt(v / total)) for v in w]
        self._thumb_avg = _block_mean_matrix(thumb, size)
        self._thumb_half = _block_mean_matrix(thumb // 2, half)
        # Centre weights of the dct block on the left half [size, half] (the window is
        # symmetric, so the right half is its mirror image), and the contrast floor: one
        # grey level of RMS under the window.
        if window is None:
            g = np.ones(size)
        else:
            x = (np.arange(size) + 0.5) / size - 0.5
            g = np.exp(-0.5 * (x / window) ** 2)
        self._window = (g[:, None] * g[None, :half]).astype(np.float32)
        self._dct_floor = float(size * np.sqrt(np.mean(self._window.astype(np.float64) ** 2)))
        # tent[i, v]: weight of the uint8 value v in histogram level i (levels at 255 i / (b-1)).
        v = np.arange(256) * ((hist_bins - 1) / 255.0)
        self._tent = np.maximum(0.0, 1.0 - np.abs(v - np.arange(hist_bins)[:, None]))
        self._tent = self._tent.astype(np.float32)

    @property
    def dim(self) -> int:
        """Embedding dimension: ``n_dct + 3 * thumb**2 + hist_bins**3``.

        Example:
            >>> PixelEmbedder(n_dct=35, thumb=4, hist_bins=3).dim
            110

        """
        return self.n_dct + 3 * self.thumb**2 + self.hist_bins**3

    @property
    def blocks(self) -> dict[str, slice]:
        """The column range of each block in the embedding.

        Example:
            >>> PixelEmbedder().blocks["hist"]
            slice(401, 465, None)

        """
        a = self.n_dct
        b = a + 3 * self.thumb**2
        return {"dct": slice(0, a), "thumb": slice(a, b), "hist": slice(b, self.dim)}

    def embed_arrays(self, images: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Embed decoded images (as :func:`~simclust.io.load_image` returns them).

        Args:
            images: ``uint8[n, size, size, 3]`` RGB (or one ``[size, size, 3]`` image).

        Returns:
            ``float32[n, dim]`` unit-norm rows (``[dim]`` for a single image).

        Raises:
            ShapeError: The images are not ``size x size`` RGB.

        Example:
            >>> PixelEmbedder().embed_arrays(np.zeros((64, 64, 3), np.uint8)).shape
            (465,)

        """
        x = np.asarray(images)
        single = x.ndim == 3
        if single:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3):
            raise ShapeError(
                f"images must be [n, {self.size}, {self.size}, 3] RGB, got shape {x.shape}"
            )
        out = np.empty((x.shape[0], self.dim), dtype=np.float32)
        for start in range(0, x.shape[0], _BATCH):
            out[start : start + _BATCH] = self._embed_batch(x[start : start + _BATCH])
        return out[0] if single else out

    def _embed_batch(self, rgb: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """Embed ``uint8[B, size, size, 3]``; each row depends on its own image only."""
        n, s = rgb.shape[0], self.size
        half = s // 2
        # Fold about the vertical axis: S = pixel + mirror pixel, D = pixel - mirror pixel
        # on the left half (exact small integers). A flip keeps S and negates D, exactly;
        # every feature below is a function of S and |linear function of D|.
        left = rgb[:, :, :half].astype(np.float32)
        right = rgb[:, :, ::-1][:, :, :half].astype(np.float32)
        fs, fd = left + right, left - right  # [B, s, s/2, 3]

        # Structure: low-frequency 2-D DCT of the centre-weighted luma (its weighted mean
        # subtracted), zig-zag order, no DC. A coefficient of even horizontal frequency v
        # is C[u] @ L @ C[v] over the whole width = C[u] @ S_L @ C[v, :s/2]; an odd one
        # the same with D_L, and a flip changes its sign only, so its magnitude is kept.
        w = self._window
        ls, ld = fs @ _YCC[0], fd @ _YCC[0]  # [B, s, s/2]
        mean = np.einsum("bij,ij->b", ls, w) / (2.0 * w.sum(dtype=np.float32))
        ls = (ls - 2.0 * mean[:, None, None].astype(np.float32)) * w
        c = self._dct_rows
        k = len(c)
        full = np.empty((n, k, k), dtype=np.float32)
        full[:, :, 0::2] = c @ ls @ self._dct_even.T
        full[:, :, 1::2] = np.abs(c @ (ld * w) @ self._dct_odd.T)
        dct = full.reshape(n, -1)[:, self._zz]

        # Colour layout: t x t block means in YCbCr, folded like the pixels: the left
        # half of the mirror-symmetric part (from S), channels centred, and the absolute
        # antisymmetric part (from D). A @ X @ B.T averages the blocks of each channel
        # (matmul over the stack of [s/2, 3] slices).
        a, ah = self._thumb_avg, self._thumb_half
        t = len(a)

        def block_means(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            rows = (a @ x.reshape(n, s, -1)).reshape(n, t, half, 3)  # row-block means
            out: npt.NDArray[np.float32] = (ah @ rows).reshape(n, -1, 3) @ _YCC.T
            return out

        sym = block_means(fs)
        sym -= sym.mean(axis=1, keepdims=True)
        thumb = np.hstack([sym.reshape(n, -1), np.abs(block_means(fd)).reshape(n, -1)])

        # Colour content: soft RGB histogram of every other pixel in each direction, on a
        # grid closed under the flip (columns 0, 2, ... of the left half and their mirror
        # images), summed half by half. Each pixel spreads a unit weight over the 8
        # nearest bin centres (trilinear "tent" weights, looked up per uint8 value):
        # hist[r, g, b] = sum_p R[r,p] G[g,p] B[b,p].
        tent = self._tent

        def counts(px: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
            px = px.reshape(n, -1, 3)
            r, g, b = (np.take(tent, px[:, :, i], axis=1).transpose(1, 0, 2) for i in range(3))
            rg = (r[:, :, None, :] * g[:, None, :, :]).reshape(n, -1, px.shape[1])
            out: npt.NDArray[np.float32] = rg @ b.transpose(0, 2, 1)  # [B, bins^2, bins]
            return out

        px_left, px_right = rgb[:, ::2, :half:2], rgb[:, ::2, ::-1][:, :, :half:2]
        m = 2 * px_left.shape[1] * px_left.shape[2]
        hist = counts(px_left) + counts(px_right)
        hist = np.sqrt(np.maximum(hist, 0.0).reshape(n, -1) / m)

        # Blocks with an RMS contrast below one grey level shrink instead of being blown up
        # to unit norm (pixel noise of flat images); the histogram always has norm 1. The
        # folded thumbnail has sqrt(2) times the norm of the unfolded one.
        blocks = (
            _unit_rows(dct, self._dct_floor),
            _unit_rows(thumb, float(np.sqrt(2.0) * self.thumb)),
            _unit_rows(hist),
        )
        return _unit_rows(np.hstack([v * w for v, w in zip(blocks, self._scale, strict=True)]))

    def _decode(self, path: Path) -> npt.NDArray[np.uint8] | str:
        try:
            return load_image(path, self.size, max_pixels=self.max_pixels)
        except ImageReadError as e:
            return e.reason

    def embed(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        progress: Callable[[int, int], object] | None = None,
        n_jobs: int | None = None,
    ) -> EmbedResult:
        """Embed image files; unreadable files are reported, never fatal.

        Decoding runs in a thread pool (Pillow releases the GIL); the result does not
        depend on ``n_jobs`` or on the completion order.

        Args:
            paths: The image files.
            progress: Called as ``progress(done, total)`` from the calling thread as
                images finish (in input order).
            n_jobs: Number of threads (default: the ``n_jobs`` parameter); ``None``
                uses ``SIMCLUST_NUM_THREADS`` or all cores
                (:func:`simclust.ops.resolve_threads`, the kernels' rule and cap); ``1``
                runs in the calling thread.

        Returns:
            An :class:`EmbedResult` ``(features, paths, bad_files)``: the features of the
            readable images in input order, their paths, and the unreadable files with
            the reason.

        Raises:
            ParameterError: ``n_jobs`` (or ``SIMCLUST_NUM_THREADS`` when it is ``None``) is
                not a positive int or is above :func:`simclust.ops.resolve_threads`' cap.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     bad = Path(tmp) / "bad.jpg"
            ...     _ = bad.write_bytes(b"not an image")
            ...     r = PixelEmbedder().embed([bad], n_jobs=1)
            >>> r.features.shape, r.bad_files["error"][0].startswith("UnidentifiedImageError")
            ((0, 465), True)

        """
        if n_jobs is None:
            n_jobs = self.n_jobs
        if n_jobs is not None and (
            isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1
        ):
            raise ParameterError(f"n_jobs must be a positive int or None, got {n_jobs!r}")
        try:  # one rule (and cap) for every thread count simclust starts
            n_jobs = resolve_threads(n_jobs)
        except ParameterError as exc:
            message = str(exc)
            if message.startswith("n_threads"):
                message = "n_jobs" + message.removeprefix("n_threads")
            raise ParameterError(message) from None
        items = [Path(p) for p in paths]
        total = len(items)
        out = np.empty((total, self.dim), dtype=np.float32)
        ok_paths: list[Path] = []
        bad_paths: list[str] = []
        bad_errors: list[str] = []

        pending: list[npt.NDArray[np.uint8]] = []

        def flush() -> None:
            if pending:
                start = len(ok_paths) - len(pending)
                out[start : len(ok_paths)] = self._embed_batch(np.stack(pending))
                pending.clear()

        def collect(done: int, path: Path, res: npt.NDArray[np.uint8] | str) -> None:
            if isinstance(res, str):
                bad_paths.append(os.fspath(path))
                bad_errors.append(res)
            else:
                pending.append(res)
                ok_paths.append(path)
                if len(pending) == _BATCH:
                    flush()
            if progress is not None:
                progress(done, total)

        with warnings.catch_warnings():
            # max_pixels is the size limit: Pillow's warning that an image is above its
            # default limit says nothing here (the image is refused or was allowed).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            self._embed_all(items, n_jobs, collect)
        flush()

        n_ok = len(ok_paths)
        features = out if n_ok == total else out[:n_ok].copy()
        bad = pl.DataFrame({"path": bad_paths, "error": bad_errors}, schema=BAD_FILES_SCHEMA)
        return EmbedResult(features, ok_paths, bad)

    def _embed_all(
        self,
        items: list[Path],
        n_jobs: int,
        collect: Callable[[int, Path, npt.NDArray[np.uint8] | str], None],
    ) -> None:
        # Decoding runs in the pool; the features are computed in batches of _BATCH
        # decoded images in input order, each row from its own image only, so the result
        # does not depend on n_jobs.
        ahead = 4 * n_jobs + _BATCH
        with closing(decode_in_order(items, self._decode, n_jobs, ahead=ahead)) as decoded:
            for done, (path, res) in enumerate(decoded, 1):
                collect(done, path, res)


def _block_mean_matrix(n_out: int, n_in: int) -> npt.NDArray[np.float32]:
    """``[n_out, n_in]``: row ``i`` averages the ``i``-th block of ``n_in // n_out`` inputs."""
    m = np.zeros((n_out, n_in), dtype=np.float32)
    k = n_in // n_out
    for i in range(n_out):
        m[i, i * k : (i + 1) * k] = 1.0 / k
    return m


def _unit_rows(v: npt.NDArray[Any], floor: float = 0.0) -> npt.NDArray[np.float32]:
    """Each row ``v / max(|v|, floor)`` in float32 (a zero row stays zero)."""
    v64 = v.astype(np.float64)
    n = np.maximum(np.sqrt(np.einsum("ij,ij->i", v64, v64)), floor)[:, None]
    safe = np.where(n > 0, n, 1.0)
    return np.where(n > 0, v64 / safe, 0.0).astype(np.float32)
