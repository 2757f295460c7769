//! Bindings of `simclust_core::similarity`.

use std::borrow::Cow;

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use simclust_core::ivf;
use simclust_core::similarity::{self, EdgeList, Neighbors};

use crate::arrays::{mat, slice2, to_py1, to_py2, usizes, vec1};
use crate::detach::run_detached;
use crate::pages;

type PyNeighbors<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<f32>>);
/// Two index arrays: the two ends of each pair.
type PyPairs<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>);
type PyEdges<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
);

fn neighbors_out(py: Python<'_>, nn: Neighbors, n: usize) -> PyResult<PyNeighbors<'_>> {
    let k = nn.k;
    Ok((
        to_py2(py, nn.indices, n, k)?,
        to_py2(py, nn.similarities, n, k)?,
    ))
}

fn edges_out(py: Python<'_>, e: EdgeList) -> PyEdges<'_> {
    (
        to_py1(py, e.src),
        to_py1(py, e.dst),
        to_py1(py, e.similarity),
    )
}

/// Unit-L2-normalised copy of `x` (float32, C-contiguous, 2-D).
#[pyfunction]
#[pyo3(signature = (x, *, n_threads=None))]
fn normalize<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let xm = mat(&x, "X")?;
    let (n, d) = (xm.n_rows(), xm.n_cols());
    let out = run_detached(py, "normalize", None, |_| {
        similarity::normalize_rows(xm, "X", n_threads)
    })?;
    to_py2(py, out, n, d)
}

/// The exact similarity of rows `a[i]` and `b[i]` of `x` for every `i`: the
/// value the kNN searches list for the same pair.
#[pyfunction]
#[pyo3(signature = (x, a, b, *, n_threads=None))]
fn pair_similarity<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    a: PyReadonlyArray1<'py, u32>,
    b: PyReadonlyArray1<'py, u32>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let xm = mat(&x, "X")?;
    let (a, b) = (vec1(&a, "a")?, vec1(&b, "b")?);
    let out = run_detached(py, "pair_similarity", None, |_| {
        similarity::pair_similarities(xm, a, b, n_threads)
    })?;
    Ok(to_py1(py, out))
}

/// Whether every row is a unit row already (validating them as `normalize`).
#[pyfunction]
#[pyo3(signature = (x, *, n_threads=None))]
fn rows_are_unit(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f32>,
    n_threads: Option<usize>,
) -> PyResult<bool> {
    let xm = mat(&x, "X")?;
    run_detached(py, "rows_are_unit", None, |_| {
        similarity::rows_are_unit(xm, "X", n_threads)
    })
}

/// Exact cosine self-kNN, self excluded.
#[pyfunction]
#[pyo3(signature = (x, k, *, n_threads=None, progress=None))]
fn knn<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    k: usize,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyNeighbors<'py>> {
    let xm = mat(&x, "X")?;
    let nn = run_detached(py, "knn", progress.as_ref(), |ctl| {
        similarity::knn(xm, k, n_threads, ctl)
    })?;
    neighbors_out(py, nn, xm.n_rows())
}

/// Exact cosine kNN of the rows of `x` among the rows of `y`.
#[pyfunction]
#[pyo3(signature = (x, y, k, *, n_threads=None, progress=None))]
fn knn_query<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    k: usize,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyNeighbors<'py>> {
    let xm = mat(&x, "X")?;
    let ym = mat(&y, "Y")?;
    let nn = run_detached(py, "knn_query", progress.as_ref(), |ctl| {
        similarity::knn_query(xm, ym, k, n_threads, ctl)
    })?;
    neighbors_out(py, nn, xm.n_rows())
}

/// Exact cosine kNN between two row sets, both ways: each row of `a`'s `k`
/// nearest rows of `b`, and each row of `b`'s `k` nearest rows of `a`; with
/// `floor_a` and `floor_b` (both or neither), only pairs at or above each
/// row's floor.
#[pyfunction]
#[pyo3(signature = (a, b, k, *, floor_a=None, floor_b=None, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn knn_between<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    k: usize,
    floor_a: Option<PyReadonlyArray1<'py, f32>>,
    floor_b: Option<PyReadonlyArray1<'py, f32>>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<(PyNeighbors<'py>, PyNeighbors<'py>)> {
    let am = mat(&a, "A")?;
    let bm = mat(&b, "B")?;
    let floors = match (&floor_a, &floor_b) {
        (Some(fa), Some(fb)) => Some((vec1(fa, "floor_a")?, vec1(fb, "floor_b")?)),
        (None, None) => None,
        _ => {
            return Err(crate::errors::ParameterError::new_err(
                "floor_a and floor_b go together: give both or neither",
            ))
        }
    };
    let (ab, ba) = run_detached(py, "knn_between", progress.as_ref(), |ctl| {
        similarity::knn_between(am, bm, k, floors, n_threads, ctl)
    })?;
    Ok((
        neighbors_out(py, ab, am.n_rows())?,
        neighbors_out(py, ba, bm.n_rows())?,
    ))
}

/// A batch call's lists, their start positions and the list pairs.
type ListBatch<'a> = (Vec<simclust_core::MatRef<'a>>, &'a [u32], Vec<(u32, u32)>);

/// The lists (with the position of each one's first row) and the list
/// pairs of a batch call.
fn list_batch<'a>(
    lists: &'a [PyReadonlyArray2<'_, f32>],
    starts: &'a PyReadonlyArray1<'_, u32>,
    pairs: &'a PyReadonlyArray2<'_, u32>,
) -> PyResult<ListBatch<'a>> {
    let mats = lists
        .iter()
        .map(|a| mat(a, "a list"))
        .collect::<PyResult<Vec<_>>>()?;
    if pairs.shape()[1] != 2 {
        return Err(crate::errors::ShapeError::new_err(format!(
            "pairs must be an (m, 2) array of list indices, got {:?}",
            pairs.shape()
        )));
    }
    let p = slice2(pairs, "pairs")?;
    let pairs = p.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    Ok((mats, vec1(starts, "starts")?, pairs))
}

/// The ε-graph edges of list pairs in positions (see
/// `simclust_core::similarity::list_pair_edges`).
#[pyfunction]
#[pyo3(signature = (lists, starts, pairs, threshold, *, n_threads=None))]
fn list_pair_edges<'py>(
    py: Python<'py>,
    lists: Vec<PyReadonlyArray2<'py, f32>>,
    starts: PyReadonlyArray1<'py, u32>,
    pairs: PyReadonlyArray2<'py, u32>,
    threshold: f32,
    n_threads: Option<usize>,
) -> PyResult<PyEdges<'py>> {
    let (mats, starts, pairs) = list_batch(&lists, &starts, &pairs)?;
    let e = run_detached(py, "list_pair_edges", None, |ctl| {
        similarity::list_pair_edges(&mats, starts, &pairs, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

/// Every pair `i < j` with cosine similarity `>= threshold`.
#[pyfunction]
#[pyo3(signature = (x, threshold, *, n_threads=None, progress=None))]
fn threshold_edges<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdges<'py>> {
    let xm = mat(&x, "X")?;
    let e = run_detached(py, "threshold_edges", progress.as_ref(), |ctl| {
        similarity::threshold_edges(xm, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

/// Every pair of a row of `a` and a row of `b` with cosine similarity
/// `>= threshold`, as `(rows of a, rows of b, similarity)`.
#[pyfunction]
#[pyo3(signature = (a, b, threshold, *, n_threads=None, progress=None))]
fn threshold_edges_between<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdges<'py>> {
    let am = mat(&a, "A")?;
    let bm = mat(&b, "B")?;
    let e = run_detached(py, "threshold_edges_between", progress.as_ref(), |ctl| {
        similarity::threshold_edges_between(am, bm, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

/// The undirected self-kNN edges with similarity `>= threshold`.
#[pyfunction]
#[pyo3(signature = (x, k, threshold, *, n_threads=None, progress=None))]
fn knn_edges<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    k: usize,
    threshold: f32,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdges<'py>> {
    let xm = mat(&x, "X")?;
    let e = run_detached(py, "knn_edges", progress.as_ref(), |ctl| {
        similarity::knn_edges(xm, k, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

/// [`ivf::Partition::build`], giving the pages of a memory-mapped `x` back
/// as the build finishes with them (see `pages`): the input and the lists'
/// copy of it are then never both resident.
fn build_releasing(
    x: simclust_core::MatRef<'_>,
    params: &ivf::PartitionParams,
    ctl: &simclust_core::parallel::Control,
) -> simclust_core::Result<ivf::Partition> {
    match pages::FileMapped::check(x.as_slice()) {
        Some(mapped) => ivf::Partition::build_with(x, params, ctl, &|rows: &[f32]| {
            mapped.release(rows);
        }),
        None => ivf::Partition::build(x, params, ctl),
    }
}

/// The rows split into lists by spherical k-means (an inverted file), for
/// partitioned graphs: approximate kNN and ε-graphs with measured recall,
/// and the certified exact ε-graph.
#[pyclass(frozen, module = "simclust._native")]
pub(crate) struct Partition {
    inner: ivf::Partition,
}

/// What a partitioned search computed, as a `dict` (recall `None` when not
/// measured).
fn stats_out<'py>(
    py: Python<'py>,
    n_lists: usize,
    stats: &ivf::SearchStats,
    recall: Option<f64>,
    recall_rows: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("n_lists", n_lists)?;
    d.set_item("list_pairs", stats.list_pairs)?;
    d.set_item("pairs_computed", stats.pairs_computed)?;
    d.set_item("pairs_total", stats.pairs_total)?;
    d.set_item("recall", recall)?;
    d.set_item("recall_rows", recall_rows)?;
    Ok(d)
}

type PyEdgesStats<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyDict>,
);

#[pymethods]
impl Partition {
    /// Trains `n_lists` lists on a seeded sample of `train_size` rows and
    /// assigns every row (defaults: `2 sqrt(N)` lists, 32 rows per list);
    /// with `certified`, also splits the lists into the cells a certified
    /// search needs.
    #[new]
    #[pyo3(signature = (x, n_lists=None, *, train_size=None, max_iter=20, seed=0, certified=true, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        n_lists: Option<usize>,
        train_size: Option<usize>,
        max_iter: usize,
        seed: u64,
        certified: bool,
        n_threads: Option<usize>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let xm = mat(&x, "X")?;
        let mut p = ivf::PartitionParams::for_rows(xm.n_rows());
        if let Some(l) = n_lists {
            p.n_lists = l;
            p.train_size = ivf::TRAIN_ROWS_PER_LIST * l;
        }
        if let Some(t) = train_size {
            p.train_size = t;
        }
        p.max_iter = max_iter;
        p.seed = seed;
        p.cells = certified;
        p.n_threads = n_threads;
        let inner = run_detached(py, "partition", progress.as_ref(), |ctl| {
            build_releasing(xm, &p, ctl)
        })?;
        Ok(Self { inner })
    }

    /// The partition of `x` into the lists of the given unit `centroids`,
    /// with each row's nearest lists `near` (`N x min(n_lists, 8)`) and its
    /// cosine `cos` to the nearest: what the constructor builds when its
    /// training and assignment gave these (a distributed run computes them
    /// as tasks: `partition_train_rows`, k-means, `partition_assign`).
    #[staticmethod]
    #[pyo3(signature = (x, centroids, near, cos, *, certified=true, n_threads=None))]
    fn from_assignment(
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        centroids: PyReadonlyArray2<'_, f32>,
        near: PyReadonlyArray2<'_, u32>,
        cos: PyReadonlyArray1<'_, f32>,
        certified: bool,
        n_threads: Option<usize>,
    ) -> PyResult<Self> {
        let xm = mat(&x, "X")?;
        let cm = mat(&centroids, "centroids")?;
        let mut p = ivf::PartitionParams::for_rows(xm.n_rows());
        p.n_lists = cm.n_rows();
        p.cells = certified;
        p.n_threads = n_threads;
        let (c, nr, cs) = (
            cm.as_slice().to_vec(),
            slice2(&near, "near")?.to_vec(),
            vec1(&cos, "cos")?.to_vec(),
        );
        let inner = run_detached(py, "partition", None, |ctl| {
            ivf::Partition::from_assignment(xm, &p, c, nr, cs, ctl)
        })?;
        Ok(Self { inner })
    }

    /// The lists' unit centroids, `n_lists x D`.
    #[getter]
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = &self.inner;
        to_py2(py, p.centroids.clone(), p.n_lists, p.d)
    }

    /// Number of lists.
    #[getter]
    fn n_lists(&self) -> usize {
        self.inner.n_lists
    }

    /// List sizes, in list order.
    #[getter]
    fn list_sizes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let o = &self.inner.offsets;
        to_py1(py, o.windows(2).map(|w| (w[1] - w[0]) as u64).collect())
    }

    /// The input row at each position: the rows of list `l` are
    /// `order[offsets[l]:offsets[l + 1]]`, `offsets` the cumulated
    /// `list_sizes`.
    #[getter]
    fn order<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        to_py1(py, self.inner.order.clone())
    }

    /// The list pairs `(i, j)`, `i <= j`, an approximate ε-graph probing
    /// `nprobe` lists compares, sorted, as two arrays.
    #[pyo3(signature = (nprobe, *, n_threads=None))]
    fn list_pairs<'py>(
        &self,
        py: Python<'py>,
        nprobe: usize,
        n_threads: Option<usize>,
    ) -> PyResult<PyPairs<'py>> {
        let part = &self.inner;
        let pairs = run_detached(py, "list_pairs", None, |_| {
            part.probed_list_pairs(nprobe, n_threads)
        })?;
        let (i, j) = pairs.into_iter().unzip();
        Ok((to_py1(py, i), to_py1(py, j)))
    }

    /// The boundaries (positions, `0..=N`) of the groups of whole panels a
    /// distributed certified search cuts the partition into: consecutive
    /// panels while they hold at most `max_rows` rows.
    fn certified_group_bounds<'py>(
        &self,
        py: Python<'py>,
        max_rows: usize,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let bounds = self
            .inner
            .certified_group_bounds(max_rows)
            .map_err(crate::errors::to_pyerr)?;
        Ok(to_py1(py, bounds.into_iter().map(|b| b as u64).collect()))
    }

    /// The group of the panels at positions `start..end` (panel
    /// boundaries) as `(first_cell, offsets, xs, order, cos, centroids,
    /// lists)`: copies of what a certified search reads of them.
    fn certified_group<'py>(
        &self,
        py: Python<'py>,
        start: usize,
        end: usize,
    ) -> PyResult<PyGroupOut<'py>> {
        let g = self
            .inner
            .certified_group(start, end)
            .map_err(crate::errors::to_pyerr)?;
        let (m, c, d) = (g.positions().len(), g.n_cells(), g.d);
        Ok((
            g.first_cell,
            to_py1(py, g.offsets.iter().map(|&o| o as u64).collect()),
            to_py2(py, g.xs.into_owned(), m, d)?,
            to_py1(py, g.order.into_owned()),
            to_py1(py, g.cos.into_owned()),
            to_py2(py, g.centroids.into_owned(), c, d)?,
            to_py1(py, g.lists.into_owned()),
        ))
    }

    /// The pair recall of an ε-graph over these rows (edges `src`, `dst` in
    /// input rows) on `recall_rows` seeded rows: `(recall, rows)`, `(None,
    /// 0)` when none are sampled.
    #[pyo3(signature = (src, dst, threshold, *, recall_rows=1000, seed=0, n_threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn pair_recall(
        &self,
        py: Python<'_>,
        src: PyReadonlyArray1<'_, u32>,
        dst: PyReadonlyArray1<'_, u32>,
        threshold: f32,
        recall_rows: usize,
        seed: u64,
        n_threads: Option<usize>,
    ) -> PyResult<(Option<f64>, usize)> {
        let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
        if s.len() != d.len() {
            return Err(crate::errors::ShapeError::new_err(format!(
                "src and dst must have the same length, got {} and {}",
                s.len(),
                d.len()
            )));
        }
        let part = &self.inner;
        run_detached(py, "pair_recall", None, |ctl| {
            let edges = s.iter().copied().zip(d.iter().copied());
            ivf::pair_recall(part, edges, threshold, recall_rows, seed, n_threads, ctl)
        })
    }

    /// The recall@k of kNN lists over these rows (`indices`, `similarities`:
    /// `N x k`, input rows) on `recall_rows` seeded rows: `(recall, rows)`,
    /// `(None, 0)` when none are sampled.
    #[pyo3(signature = (indices, similarities, *, recall_rows=1000, seed=0, n_threads=None))]
    fn knn_recall(
        &self,
        py: Python<'_>,
        indices: PyReadonlyArray2<'_, u32>,
        similarities: PyReadonlyArray2<'_, f32>,
        recall_rows: usize,
        seed: u64,
        n_threads: Option<usize>,
    ) -> PyResult<(Option<f64>, usize)> {
        let k = indices.shape()[1];
        if similarities.shape() != indices.shape() {
            return Err(crate::errors::ShapeError::new_err(format!(
                "indices and similarities must have the same shape, got {:?} and {:?}",
                indices.shape(),
                similarities.shape()
            )));
        }
        let nn = Neighbors {
            k,
            indices: slice2(&indices, "indices")?.to_vec(),
            similarities: slice2(&similarities, "similarities")?.to_vec(),
        };
        let part = &self.inner;
        run_detached(py, "knn_recall", None, |ctl| {
            ivf::measured_knn_recall(part, &nn, recall_rows, seed, n_threads, ctl)
        })
    }

    /// The undirected kNN graph (edges `>= threshold`) from an approximate
    /// search probing `nprobe` lists, with its recall@k measured on
    /// `recall_rows` seeded rows (0: not measured).
    #[pyo3(signature = (k, threshold, nprobe, *, recall_rows=1000, seed=0, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn knn_edges<'py>(
        &self,
        py: Python<'py>,
        k: usize,
        threshold: f32,
        nprobe: usize,
        recall_rows: usize,
        seed: u64,
        n_threads: Option<usize>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<PyEdgesStats<'py>> {
        let part = &self.inner;
        let found = run_detached(py, "knn_edges", progress.as_ref(), |ctl| {
            ivf::knn_edges(
                part,
                k,
                threshold,
                nprobe,
                recall_rows,
                seed,
                n_threads,
                ctl,
            )
        })?;
        knn_graph_out(py, part, found)
    }

    /// The neighbours an approximate kNN search for `k` looks for (at least
    /// 10, at most `N - 1`).
    fn knn_search_k(&self, k: usize) -> PyResult<usize> {
        self.inner.knn_search_k(k).map_err(crate::errors::to_pyerr)
    }

    /// Which rows probe which lists in an approximate kNN search with
    /// `nprobe`: `(offsets, members)`, list `l`'s probing rows (positions,
    /// ascending) `members[offsets[l]:offsets[l + 1]]`. Without
    /// `similarities`, every row's next `nprobe - 1` lists; with the `N x k`
    /// similarities of the lists after those (positions), the weakest rows'
    /// further lists.
    #[pyo3(signature = (nprobe, similarities=None, *, n_threads=None))]
    #[allow(clippy::type_complexity)]
    fn knn_probes<'py>(
        &self,
        py: Python<'py>,
        nprobe: usize,
        similarities: Option<PyReadonlyArray2<'py, f32>>,
        n_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>)> {
        let weak = match &similarities {
            Some(s) => Some((slice2(s, "similarities")?, s.shape()[1])),
            None => None,
        };
        let part = &self.inner;
        let p = run_detached(py, "knn_probes", None, |ctl| {
            part.knn_probes(nprobe, weak, n_threads, ctl)
        })?;
        let offsets = p.offsets.into_iter().map(|o| o as u64).collect();
        Ok((to_py1(py, offsets), to_py1(py, p.members)))
    }

    /// The kNN graph from the merged lists of an approximate search's parts
    /// (`indices`, `similarities`: `N x knn_search_k(k)`, positions) and the
    /// pairs they computed: NN-descent, the f64 similarities, the `k` best in
    /// input rows, the recall; as `knn_edges` gives it.
    #[pyo3(signature = (k, threshold, indices, similarities, pairs_computed, *, recall_rows=1000, seed=0, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn knn_finish<'py>(
        &self,
        py: Python<'py>,
        k: usize,
        threshold: f32,
        indices: PyReadonlyArray2<'py, u32>,
        similarities: PyReadonlyArray2<'py, f32>,
        pairs_computed: u64,
        recall_rows: usize,
        seed: u64,
        n_threads: Option<usize>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<PyEdgesStats<'py>> {
        let lists = (
            slice2(&indices, "indices")?.to_vec(),
            slice2(&similarities, "similarities")?.to_vec(),
        );
        let part = &self.inner;
        let found = run_detached(py, "knn_finish", progress.as_ref(), |ctl| {
            let (nn, stats) = part.knn_finish(
                part.knn_search_k(k)?,
                lists.0,
                lists.1,
                pairs_computed,
                n_threads,
                ctl,
            )?;
            ivf::knn_graph(
                part,
                (nn, stats),
                k,
                threshold,
                recall_rows,
                seed,
                n_threads,
                ctl,
            )
        })?;
        knn_graph_out(py, part, found)
    }

    /// The ε-graph at `threshold`: exact with `certified`, else from lists
    /// probing `nprobe` others, with its pair recall measured on
    /// `recall_rows` seeded rows (0: not measured; a certified graph's is 1).
    #[pyo3(signature = (threshold, *, certified, nprobe=1, recall_rows=1000, seed=0, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn threshold_edges<'py>(
        &self,
        py: Python<'py>,
        threshold: f32,
        certified: bool,
        nprobe: usize,
        recall_rows: usize,
        seed: u64,
        n_threads: Option<usize>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<PyEdgesStats<'py>> {
        let part = &self.inner;
        let probe = probe(certified, threshold, nprobe);
        let g = run_detached(py, "threshold_edges", progress.as_ref(), |ctl| {
            ivf::threshold_graph(
                Cow::Borrowed(part),
                threshold,
                probe,
                recall_rows,
                seed,
                n_threads,
                ctl,
            )
        })?;
        graph_out(py, g)
    }
}

/// A partitioned kNN graph as the `(src, dst, similarity, stats)` Python tuple.
fn knn_graph_out<'py>(
    py: Python<'py>,
    part: &ivf::Partition,
    (e, m): (EdgeList, ivf::MeasuredKnn),
) -> PyResult<PyEdgesStats<'py>> {
    let (s, d, w) = edges_out(py, e);
    let stats = stats_out(py, part.n_lists, &m.stats, m.recall, m.recall_rows)?;
    Ok((s, d, w, stats))
}

/// A partitioned ε-graph as the `(src, dst, similarity, stats)` Python tuple.
fn graph_out(py: Python<'_>, g: ivf::PartitionedGraph) -> PyResult<PyEdgesStats<'_>> {
    let stats = stats_out(py, g.n_lists, &g.stats, g.recall, g.recall_rows)?;
    let (s, d, w) = edges_out(py, g.edges);
    Ok((s, d, w, stats))
}

/// The exact search at `threshold` when `certified`, else lists probing
/// `nprobe` others.
fn probe(certified: bool, threshold: f32, nprobe: usize) -> ivf::Probe {
    if certified {
        ivf::Probe::Certified(threshold)
    } else {
        ivf::Probe::Nearest(nprobe)
    }
}

/// The ε-graph at `threshold` over a partition built for it (`n_lists`
/// lists trained on `train_size` rows) and released before the edges are
/// sorted: exact with `certified`, else from lists probing `nprobe`
/// others, with its pair recall measured on `recall_rows` seeded rows.
/// Once the partition holds its copy of the rows, the pages of a
/// memory-mapped `x` are given back (see `pages`).
#[pyfunction]
#[pyo3(signature = (x, threshold, *, certified, n_lists, train_size, nprobe=8, recall_rows=1000, seed=0, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn partitioned_threshold_edges<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    certified: bool,
    n_lists: usize,
    train_size: usize,
    nprobe: usize,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdgesStats<'py>> {
    let xm = mat(&x, "X")?;
    let params = ivf::PartitionParams {
        n_lists,
        train_size,
        seed,
        n_threads,
        cells: certified,
        ..ivf::PartitionParams::for_rows(xm.n_rows())
    };
    let probe = probe(certified, threshold, nprobe);
    let g = run_detached(py, "threshold_edges", progress.as_ref(), |ctl| {
        let part = build_releasing(xm, &params, ctl)?;
        ivf::threshold_graph(
            Cow::Owned(part),
            threshold,
            probe,
            recall_rows,
            seed,
            n_threads,
            ctl,
        )
    })?;
    graph_out(py, g)
}

/// A group of a certified search as Python gives it back: `(first_cell,
/// offsets, xs, order, cos, centroids, lists)`.
type PyGroup<'py> = (
    usize,
    PyReadonlyArray1<'py, u64>,
    PyReadonlyArray2<'py, f32>,
    PyReadonlyArray1<'py, u32>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray2<'py, f32>,
    PyReadonlyArray1<'py, u32>,
);

/// A group of a certified search handed to Python.
type PyGroupOut<'py> = (
    usize,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<u32>>,
);

/// A group from Python as the core's [`ivf::CellGroup`], borrowing its
/// arrays (the offsets converted); checked by the search.
fn cell_group<'a>(g: &'a PyGroup<'_>, what: &str) -> PyResult<ivf::CellGroup<'a>> {
    let xs = mat(&g.2, what)?;
    let offsets = usizes(&g.1, what)?;
    Ok(ivf::CellGroup {
        d: xs.n_cols(),
        first_cell: g.0,
        offsets: Cow::Owned(offsets),
        xs: Cow::Borrowed(xs.as_slice()),
        order: Cow::Borrowed(vec1(&g.3, what)?),
        cos: Cow::Borrowed(vec1(&g.4, what)?),
        centroids: Cow::Borrowed(slice2(&g.5, what)?),
        lists: Cow::Borrowed(vec1(&g.6, what)?),
    })
}

/// The certified ε-graph edges between groups `a` and `b` of one partition
/// (`b` after `a`), or within `a` (`b` None), as a certified search over
/// the whole partition finds them: `(src, dst, similarity, pairs_computed,
/// list_pairs)`, the edges unsorted in input rows, the list pairs distinct
/// as an `(m, 2)` array.
#[pyfunction]
#[pyo3(signature = (a, b, threshold, *, n_threads=None))]
#[allow(clippy::type_complexity)]
fn certified_group_pair_edges<'py>(
    py: Python<'py>,
    a: PyGroup<'py>,
    b: Option<PyGroup<'py>>,
    threshold: f32,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    u64,
    Bound<'py, PyArray2<u32>>,
)> {
    let ga = cell_group(&a, "group a")?;
    let gb = b.as_ref().map(|b| cell_group(b, "group b")).transpose()?;
    let found = run_detached(py, "certified_group_pair_edges", None, |ctl| {
        ivf::group_pair_edges(&ga, gb.as_ref(), threshold, n_threads, ctl)
    })?;
    let (s, d, w) = edges_out(py, found.edges);
    let m = found.list_pairs.len();
    let lists = found
        .list_pairs
        .into_iter()
        .flat_map(|(i, j)| [i, j])
        .collect();
    Ok((s, d, w, found.pairs_computed, to_py2(py, lists, m, 2)?))
}

/// The rows (of `n`, ascending) a partition of `n_lists` lists trains on.
#[pyfunction]
#[pyo3(signature = (n, n_lists, *, train_size=None, seed=0))]
fn partition_train_rows(
    py: Python<'_>,
    n: usize,
    n_lists: usize,
    train_size: Option<usize>,
    seed: u64,
) -> Bound<'_, PyArray1<i64>> {
    let mut p = ivf::PartitionParams::for_rows(n);
    p.n_lists = n_lists;
    p.train_size = train_size.unwrap_or(ivf::TRAIN_ROWS_PER_LIST * n_lists);
    p.seed = seed;
    to_py1(
        py,
        ivf::train_rows(n, &p)
            .into_iter()
            .map(|r| r as i64)
            .collect(),
    )
}

/// `(near, cos)`: each row's nearest lists among the unit `centroids` and its
/// cosine to the nearest, as a partition assigns them.
#[pyfunction]
#[pyo3(signature = (x, centroids, *, n_threads=None))]
#[allow(clippy::type_complexity)]
fn partition_assign<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    centroids: PyReadonlyArray2<'py, f32>,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<u32>>, Bound<'py, PyArray1<f32>>)> {
    let xm = mat(&x, "X")?;
    let cm = mat(&centroids, "centroids")?;
    if cm.n_cols() != xm.n_cols() {
        return Err(crate::errors::ShapeError::new_err(
            "centroids must have the columns of X",
        ));
    }
    let l = cm.n_rows();
    let (near, cos) = run_detached(py, "partition_assign", None, |ctl| {
        ivf::assign_rows(xm, cm.as_slice(), l, n_threads, ctl)
    })?;
    let m = near.len() / xm.n_rows().max(1);
    Ok((to_py2(py, near, xm.n_rows(), m)?, to_py1(py, cos)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(partition_train_rows, m)?)?;
    m.add_function(wrap_pyfunction!(partition_assign, m)?)?;
    m.add_class::<Partition>()?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(rows_are_unit, m)?)?;
    m.add_function(wrap_pyfunction!(pair_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(knn_query, m)?)?;
    m.add_function(wrap_pyfunction!(knn_between, m)?)?;
    m.add_function(wrap_pyfunction!(list_pair_edges, m)?)?;
    m.add_function(wrap_pyfunction!(threshold_edges, m)?)?;
    m.add_function(wrap_pyfunction!(threshold_edges_between, m)?)?;
    m.add_function(wrap_pyfunction!(knn_edges, m)?)?;
    m.add_function(wrap_pyfunction!(partitioned_threshold_edges, m)?)?;
    m.add_function(wrap_pyfunction!(certified_group_pair_edges, m)?)?;
    Ok(())
}
