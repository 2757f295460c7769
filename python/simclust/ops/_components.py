"""Connected components, threshold sweep, bridge similarity and weak splits of clusters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError
from simclust.ops._coerce import (
    _as_count,
    _as_nodes,
    _as_threads,
    _as_vector,
)


def connected_components(
    n: int, src: npt.ArrayLike, dst: npt.ArrayLike, *, n_threads: int | None = None
) -> npt.NDArray[np.int64]:
    """Connected components of the graph with nodes ``0..n-1`` and the given edges.

    Labels are canonical: components are numbered ``0..C-1`` in the order of
    their smallest member, so the result never depends on edge order or
    thread count. Self-loops and duplicate edges are allowed.

    Example:
        >>> connected_components(5, [3, 1], [4, 0]).tolist()
        [0, 0, 1, 2, 2]

    """
    nn = _as_count(n, "n", minimum=0)
    return _native.connected_components(
        nn, _as_nodes(src, "src"), _as_nodes(dst, "dst"), n_threads=_as_threads(n_threads)
    )


def threshold_sweep(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    thresholds: Sequence[float] | npt.ArrayLike,
) -> pl.DataFrame:
    """Components and largest component size at each threshold, in one pass.

    An edge counts at threshold ``t`` when its similarity is ``>= t``. Edges
    are fed to a union-find in descending similarity (single linkage), so any
    number of thresholds costs one sort.

    Returns:
        A frame with columns ``threshold: Float32``, ``n_components: UInt32``,
        ``largest_component: UInt32``, one row per threshold, in the given order.

    Example:
        >>> threshold_sweep(3, [0, 1], [1, 2], [0.95, 0.85], [0.9, 0.8])["n_components"].to_list()
        [2, 1]

    """
    nn = _as_count(n, "n", minimum=0)
    t = _as_vector(thresholds, "thresholds", np.float32)
    comps, largest = _native.threshold_sweep(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        t,
    )
    return pl.DataFrame(
        {
            "threshold": pl.Series(t, dtype=pl.Float32),
            "n_components": pl.Series(comps, dtype=pl.UInt32),
            "largest_component": pl.Series(largest, dtype=pl.UInt32),
        }
    )


def bridge_similarity(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    labels: npt.ArrayLike,
) -> npt.NDArray[np.float32]:
    """Per cluster, the similarity at which it would first split (single linkage).

    For cluster ``c`` (labels ``0..C-1``; ``-1`` marks noise and is ignored)
    this is the weakest edge of the maximum spanning forest of the edges
    inside ``c``: the largest ``t`` such that ``c`` stays connected using only
    its internal edges with similarity ``>= t``. For components of an
    ε-graph at threshold ``t0`` the bridge is ``>= t0``; one just above
    ``t0`` flags a chain held together by a single weak link, which the
    component's size alone does not show. NaN for singletons and for
    clusters whose internal edges do not connect them.

    Example:
        >>> bridge_similarity(3, [0, 1], [1, 2], [0.95, 0.91], [0, 0, 0]).tolist()
        [0.9100000262260437]

    """
    nn = _as_count(n, "n", minimum=0)
    lab = np.asarray(labels)
    if lab.ndim == 1 and lab.size and lab.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be integers, got dtype {lab.dtype}")
    return _native.bridge_similarity(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        _as_vector(lab, "labels", np.int64),
    )


def spanning_forest(
    src: npt.ArrayLike, dst: npt.ArrayLike, similarity: npt.ArrayLike
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """The maximum spanning forest of a similarity graph: Kruskal, strongest edges first.

    Returns its edges ``(src < dst, similarity)`` in descending similarity. For every
    threshold ``t`` the forest's edges ``>= t`` connect exactly the rows the graph's edges
    ``>= t`` connect, so :func:`connected_components` and :func:`threshold_sweep` give the
    graph's answers from at most ``nodes - 1`` edges; and the forest of several graphs
    together is the forest of their forests (how a distributed run merges its tasks'
    graphs). Node ids may be any uint32 (the state is per edge, not per id). With tied
    similarities the edges kept depend on the input order, the components never do.

    Example:
        >>> src, dst, sim = spanning_forest([0, 1, 0], [1, 2, 2], [0.9, 0.8, 0.7])
        >>> src.tolist(), dst.tolist(), sim.astype(float).round(2).tolist()
        ([0, 1], [1, 2], [0.9, 0.8])

    """
    return _native.spanning_forest(
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
    )


def weak_splits(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    threshold: float,
    strict: float,
    min_share: float,
    min_part: int,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float64]]:
    """Per cluster, its sizable parts at a stricter threshold and how weakly they are joined.

    The cluster's internal edges with similarity ``>= strict`` split it into parts
    (connected components); a part is *sizable* when it has at least ``min_part``
    members and ``min_share`` of the cluster. For each sizable part ``P`` the
    conductance of the cut between ``P`` and the rest ``R`` of its cluster, over the
    cluster's internal edges with similarity ``>= threshold``, is
    ``cut(P, R) / min(vol(P), vol(R))`` (``vol``: the sum of the members' degrees,
    ``cut``: the edges with one end on each side). Groups joined by a few bridges give
    a conductance near 0; a part split off a uniformly dense cluster is joined to the
    rest by about as many edges as it has inside. Edges are counted as given (each
    once, or each twice: the ratio is the same). O(edges + n).

    Args:
        n: Number of nodes (rows).
        src: The edges' first nodes.
        dst: The edges' second nodes.
        similarity: The edges' similarities.
        labels: ``int[n]`` cluster of each row, ``0..C-1``; ``-1`` (noise) is ignored.
        threshold: The clustering threshold: edges below it are not counted.
        strict: The stricter threshold that defines the parts, ``>= threshold``.
        min_share: A sizable part's smallest share of its cluster, in ``[0, 1]``.
        min_part: A sizable part's fewest members, ``>= 1``.

    Returns:
        ``(n_parts, conductance)``, both of length ``C = labels.max() + 1``: the number
        of sizable parts (``uint32``) and the lowest conductance of a sizable part
        (``float64``; NaN when the cluster has fewer than 2 sizable parts).

    Raises:
        ShapeError: The edge arrays differ in length or ``labels`` is not ``[n]``.
        ParameterError: A node id is ``>= n``, or a parameter is out of range.

    Example:
        >>> # two triangles joined by the edge 2-3 at 0.91; at 0.95 they are two parts
        >>> src, dst = [0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]
        >>> sim = [0.99] * 6 + [0.91]
        >>> parts, cond = weak_splits(
        ...     6, src, dst, sim, [0] * 6, threshold=0.9, strict=0.95, min_share=0.1, min_part=3
        ... )
        >>> parts.tolist(), cond.round(3).tolist()  # 1 cut edge, 7 degrees on each side
        ([2], [0.143])

    """
    nn = _as_count(n, "n", minimum=0)
    s, d = _as_nodes(src, "src").astype(np.int64), _as_nodes(dst, "dst").astype(np.int64)
    w = _as_vector(similarity, "similarity", np.float32)
    lab = _as_vector(labels, "labels", np.int64)
    if not len(s) == len(d) == len(w):
        raise ShapeError(
            f"src, dst and similarity must have the same length, got {len(s)}, {len(d)}, {len(w)}"
        )
    if len(lab) != nn:
        raise ShapeError(f"labels must have n = {nn} entries, got {len(lab)}")
    if len(s) and max(int(s.max()), int(d.max())) >= nn:
        raise ParameterError(f"edge node ids must be < n = {nn}")
    if not (np.isfinite(threshold) and np.isfinite(strict) and strict >= threshold):
        raise ParameterError(f"need finite threshold <= strict, got {threshold}, {strict}")
    if not 0.0 <= min_share <= 1.0 or isinstance(min_part, bool) or min_part < 1:
        raise ParameterError(
            f"need min_share in [0, 1] and min_part >= 1, got {min_share}, {min_part}"
        )
    n_clusters = int(lab.max()) + 1 if nn else 0
    inside = (lab[s] == lab[d]) & (lab[s] >= 0) & (w >= np.float32(threshold))
    s, d, w = s[inside], d[inside], w[inside]
    strong = w >= np.float32(strict)
    part = connected_components(nn, s[strong], d[strong])
    n_all = int(part.max()) + 1 if nn else 0
    clustered = lab >= 0
    part_cluster = np.full(n_all, -1, dtype=np.int64)
    part_cluster[part] = lab
    part_size = np.bincount(part, minlength=n_all)
    degree = np.bincount(s, minlength=nn) + np.bincount(d, minlength=nn)
    part_vol = np.bincount(part, weights=degree, minlength=n_all)
    cross = part[s] != part[d]
    cut = np.bincount(part[s[cross]], minlength=n_all) + np.bincount(
        part[d[cross]], minlength=n_all
    )
    size = np.bincount(lab[clustered], minlength=n_clusters)
    vol = np.bincount(lab[clustered], weights=degree[clustered], minlength=n_clusters)
    owner = np.maximum(part_cluster, 0)
    sizable = (part_cluster >= 0) & (part_size >= np.maximum(min_part, min_share * size[owner]))
    n_parts = np.bincount(part_cluster[sizable], minlength=n_clusters).astype(np.uint32)
    rest = vol[owner] - part_vol
    phi = cut / np.maximum(np.minimum(part_vol, rest), 1.0)
    conductance = np.full(n_clusters, np.nan)
    np.fmin.at(conductance, part_cluster[sizable], phi[sizable])
    conductance[n_parts < 2] = np.nan
    return n_parts, conductance
