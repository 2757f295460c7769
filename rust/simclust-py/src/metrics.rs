//! Bindings of `simclust_core::metrics`. Column-like results are returned as
//! a `dict` of numpy arrays; the keys that hold values of the labelling's
//! measure are neutral (`mean`, `min`, `max`, `std`, `value`, `row_value`,
//! `nearest_value`): the Python layer names them after its distance
//! (`sim_mean` for cosine, `dist_mean` for Euclidean, ...).

use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::OnceLock;

use simclust_core::metrics::{self, CentroidStats, Gathered, Grouping, Measure, PairStats};
use simclust_core::search::{Method, Plan, Record};
use simclust_core::MatRef;

use crate::arrays::{mat, to_py1, to_py2, vec1};
use crate::detach::run_detached;
use crate::pages;

/// Builds the result `dict` from `(column, array)` pairs.
struct Columns<'py> {
    py: Python<'py>,
    dict: Bound<'py, PyDict>,
}

impl<'py> Columns<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            py,
            dict: PyDict::new(py),
        }
    }

    fn add<T: Element>(self, name: &str, v: Vec<T>) -> PyResult<Self> {
        self.dict.set_item(name, to_py1(self.py, v))?;
        Ok(self)
    }
}

fn ids_and_sizes(g: &Gathered) -> (Vec<i64>, Vec<u64>) {
    let cl = &g.clusters;
    (
        cl.ids().to_vec(),
        (0..cl.k()).map(|c| cl.size(c) as u64).collect(),
    )
}

/// `(cluster ids, K x K matrix)`.
type IdsAndMatrix<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray2<f32>>);

/// A labelling with its rows validated and grouped by cluster once; every
/// metric of a run reads the same rows (the array is kept, never copied:
/// each kernel gathers the rows it works on). The centroid statistics are
/// computed on first use and kept.
#[pyclass(frozen, module = "simclust._native")]
pub(crate) struct Labelling {
    x: Py<PyArray2<f32>>,
    grouping: Grouping,
    n_threads: Option<usize>,
    plan: Plan,
    centroids: OnceLock<CentroidStats>,
}

/// What a nearest-cluster search did, as a `dict` (`None` when it had
/// fewer than two clusters to search).
fn record_out<'py>(py: Python<'py>, r: Option<&Record>) -> PyResult<Bound<'py, PyAny>> {
    let Some(r) = r else {
        return Ok(py.None().into_bound(py));
    };
    let d = PyDict::new(py);
    d.set_item("method", r.method.name())?;
    d.set_item("auto", r.auto)?;
    d.set_item("exact_work", r.exact_work)?;
    d.set_item("recall", r.recall)?;
    d.set_item("recall_rows", r.recall_rows)?;
    d.set_item("n_lists", r.n_lists)?;
    d.set_item("nprobe", r.nprobe)?;
    d.set_item("pairs_computed", r.pairs_computed)?;
    d.set_item("pairs_total", r.pairs_total)?;
    Ok(d.into_any())
}

impl Labelling {
    /// The kept array, borrowed read-only for one call.
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<PyReadonlyArray2<'py, f32>> {
        self.x.bind(py).try_readonly().map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "the labelling's rows are being written elsewhere: {e}"
            ))
        })
    }

    /// The rows seen through the labelling (`arr`: the kept array, borrowed
    /// read-only for the call).
    fn view<'a>(&'a self, arr: &'a PyReadonlyArray2<'_, f32>) -> PyResult<Gathered<'a>> {
        let xm = mat(arr, "X")?;
        Gathered::view(xm, &self.grouping).map_err(crate::errors::to_pyerr)
    }

    /// The centroid statistics, computed once.
    fn centroids(&self, g: &Gathered) -> simclust_core::Result<&CentroidStats> {
        if let Some(st) = self.centroids.get() {
            return Ok(st);
        }
        let st = metrics::centroid_stats(g, self.n_threads)?;
        Ok(self.centroids.get_or_init(|| st))
    }

    /// Slots of the given cluster ids (all clusters when `None`), ascending.
    fn slots(&self, clusters: Option<&[i64]>) -> simclust_core::Result<Vec<usize>> {
        let cl = &self.grouping.clusters;
        match clusters {
            None => Ok((0..cl.k()).collect()),
            Some(ids) => {
                let mut slots = ids
                    .iter()
                    .map(|&id| cl.slot_of_id(id).ok_or_else(|| unknown_cluster(id)))
                    .collect::<simclust_core::Result<Vec<usize>>>()?;
                slots.sort_unstable();
                slots.dedup();
                Ok(slots)
            }
        }
    }

    /// The unit centroids of `slots`, packed row by row.
    fn packed_centroids(&self, g: &Gathered, slots: &[usize]) -> simclust_core::Result<Vec<f32>> {
        let (st, d) = (self.centroids(g)?, g.d);
        Ok(slots
            .iter()
            .flat_map(|&c| st.centroids[c * d..(c + 1) * d].iter().copied())
            .collect())
    }
}

fn unknown_cluster(id: i64) -> simclust_core::Error {
    simclust_core::Error::Parameter(format!(
        "cluster {id} does not exist: no row has that label"
    ))
}

#[pymethods]
impl Labelling {
    /// Validates `x` (every row: NaN/Inf rows, and for `measure="cosine"`
    /// zero rows, are errors naming the rows) and `labels`, and groups the
    /// rows; every metric measures in `measure` (`"cosine"` of the
    /// normalised rows, `"dot"` or `"euclidean"` of the rows as they are).
    /// Nearest-cluster searches follow `search` (`"auto"`, `"exact"` or
    /// `"ivf"`), `nprobe` and `recall_rows`.
    #[new]
    #[pyo3(signature = (x, labels, *, measure="cosine", n_threads=None, search="auto", nprobe=8, recall_rows=1000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        labels: PyReadonlyArray1<'_, i64>,
        measure: &str,
        n_threads: Option<usize>,
        search: &str,
        nprobe: usize,
        recall_rows: usize,
    ) -> PyResult<Self> {
        let measure = Measure::parse(measure).map_err(crate::errors::to_pyerr)?;
        let method = Method::parse(search).map_err(crate::errors::to_pyerr)?;
        if nprobe == 0 {
            return Err(crate::errors::to_pyerr(simclust_core::Error::Parameter(
                "nprobe must be >= 1, got 0".into(),
            )));
        }
        let plan = Plan {
            method,
            nprobe,
            recall_rows,
            ..Plan::default()
        };
        let xm = mat(&x, "X")?;
        let lab = vec1(&labels, "labels")?;
        let grouping = run_detached(py, "group", None, |_| {
            Grouping::with_measure(xm, lab, measure, n_threads)
        })?;
        Ok(Self {
            x: (*x).clone().unbind(),
            grouping,
            n_threads,
            plan,
            centroids: OnceLock::new(),
        })
    }

    /// The measure: `"cosine"`, `"dot"` or `"euclidean"`.
    #[getter]
    fn measure(&self) -> &'static str {
        self.grouping.measure().name()
    }

    /// Number of rows of the input.
    #[getter]
    fn n_rows(&self) -> usize {
        self.grouping.clusters.n_rows()
    }

    /// Cluster ids, ascending.
    #[getter]
    fn cluster_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        to_py1(py, self.grouping.clusters.ids().to_vec())
    }

    /// Exact all-pairs statistics per cluster.
    #[pyo3(signature = (*, progress=None))]
    fn intra_stats<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        let pairs = run_detached(py, "intra_stats", progress.as_ref(), |ctl| {
            metrics::intra_stats(g, n_threads, ctl)
        })?;
        let (ids, sizes) = ids_and_sizes(g);
        let col = |f: fn(&PairStats) -> f64| pairs.iter().map(f).collect::<Vec<f64>>();
        Ok(Columns::new(py)
            .add("cluster", ids)?
            .add("size", sizes)?
            .add("n_pairs", pairs.iter().map(|s| s.n_pairs).collect())?
            .add("mean", col(|s| s.mean))?
            .add("min", col(|s| f64::from(s.min)))?
            .add("max", col(|s| f64::from(s.max)))?
            .add("std", col(|s| s.std))?
            .dict)
    }

    /// Statistics of the measure over the graph edges inside each cluster
    /// (each undirected edge once).
    fn edge_stats<'py>(
        &self,
        py: Python<'py>,
        src: PyReadonlyArray1<'py, u32>,
        dst: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        let e = run_detached(py, "edge_stats", None, |_| {
            metrics::edge_stats(g, s, d, n_threads)
        })?;
        Ok(Columns::new(py)
            .add("cluster", g.clusters.ids().to_vec())?
            .add("n_edges", e.iter().map(|s| s.n_edges).collect())?
            .add("mean", e.iter().map(|s| s.mean).collect())?
            .add("min", e.iter().map(|s| f64::from(s.min)).collect())?
            .add("max", e.iter().map(|s| f64::from(s.max)).collect())?
            .dict)
    }

    /// Centroid statistics per cluster and per row, each cluster's nearest
    /// cluster (with the record of that search under `"search"`) and the
    /// centroids (`K x D`, or `0 x D` without `with_centroids`; unit
    /// centroids for cosine, the means for the other measures).
    #[pyo3(signature = (*, with_centroids=true, progress=None))]
    fn centroid_stats<'py>(
        &self,
        py: Python<'py>,
        with_centroids: bool,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads, plan) = (&view, self.n_threads, &self.plan);
        let data = mat(&arr, "X")?.as_slice();
        let (st, (nn, record)) = run_detached(py, "centroid_stats", progress.as_ref(), |ctl| {
            let st = self.centroids(g)?;
            // the nearest-cluster search reads only the centroids
            pages::release_if_file_mapped(data);
            let nn = metrics::nearest_centroids(
                MatRef::new(&st.centroids, g.clusters.k(), g.d)?,
                g.measure,
                Some(1),
                plan,
                n_threads,
                ctl,
            )?;
            Ok((st, nn))
        })?;
        let (ids, sizes) = ids_and_sizes(g);
        let k = ids.len();
        let mut nearest = vec![-1_i64; k];
        let mut nearest_value = vec![f32::NAN; k];
        for ((&a, &b), &s) in nn.from.iter().zip(&nn.to).zip(&nn.value) {
            nearest[a as usize] = ids[b as usize];
            nearest_value[a as usize] = s;
        }
        let cols = Columns::new(py)
            .add("cluster", ids)?
            .add("size", sizes)?
            .add("mean", st.sim_mean.clone())?
            .add("min", st.sim_min.clone())?
            .add("max", st.sim_max.clone())?
            .add("medoid", st.medoid.clone())?
            .add("nearest_cluster", nearest)?
            .add("nearest_value", nearest_value)?
            .add("row_value", st.row_similarity.clone())?;
        let centroids = if with_centroids {
            to_py2(py, st.centroids.clone(), k, g.d)?
        } else {
            to_py2(py, Vec::new(), 0, g.d)?
        };
        cols.dict.set_item("centroids", centroids)?;
        cols.dict
            .set_item("search", record_out(py, record.as_ref())?)?;
        Ok(cols.dict)
    }

    /// The long inter-cluster frame among `clusters` (all when `None`): each
    /// one's `top_m` nearest (all when `None`) in the measure between centroids.
    #[pyo3(signature = (clusters=None, top_m=None, *, progress=None))]
    fn inter_centroid<'py>(
        &self,
        py: Python<'py>,
        clusters: Option<PyReadonlyArray1<'py, i64>>,
        top_m: Option<usize>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let wanted = clusters.as_ref().map(|c| vec1(c, "clusters")).transpose()?;
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads, plan) = (&view, self.n_threads, &self.plan);
        let data = mat(&arr, "X")?.as_slice();
        let (slots, (nn, record)) = run_detached(py, "inter_centroid", progress.as_ref(), |ctl| {
            let slots = self.slots(wanted)?;
            let packed = self.packed_centroids(g, &slots)?;
            // the nearest-cluster search reads only the centroids
            pages::release_if_file_mapped(data);
            let packed = MatRef::new(&packed, slots.len(), g.d)?;
            let nn = metrics::nearest_centroids(packed, g.measure, top_m, plan, n_threads, ctl)?;
            Ok((slots, nn))
        })?;
        let ids = g.clusters.ids();
        let id = |c: u32| ids[slots[c as usize]];
        let cols = Columns::new(py)
            .add("cluster_a", nn.from.iter().map(|&c| id(c)).collect())?
            .add("cluster_b", nn.to.iter().map(|&c| id(c)).collect())?
            .add("value", nn.value)?;
        cols.dict
            .set_item("search", record_out(py, record.as_ref())?)?;
        Ok(cols.dict)
    }

    /// `(cluster ids, K x K matrix of the measure between centroids)` over
    /// `clusters` (all when `None`).
    #[pyo3(signature = (clusters=None))]
    fn centroid_matrix<'py>(
        &self,
        py: Python<'py>,
        clusters: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<IdsAndMatrix<'py>> {
        let wanted = clusters.as_ref().map(|c| vec1(c, "clusters")).transpose()?;
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        let (slots, m) = run_detached(py, "centroid_matrix", None, |_| {
            let slots = self.slots(wanted)?;
            let packed = self.packed_centroids(g, &slots)?;
            let m = metrics::centroid_matrix(&packed, slots.len(), g.d, g.measure, n_threads)?;
            Ok((slots, m))
        })?;
        let ids: Vec<i64> = slots.iter().map(|&c| g.clusters.ids()[c]).collect();
        let k = ids.len();
        Ok((to_py1(py, ids), to_py2(py, m, k, k)?))
    }

    /// Exact linkage statistics over all cross pairs of the given cluster pairs.
    #[pyo3(signature = (cluster_a, cluster_b, *, progress=None))]
    fn linkage<'py>(
        &self,
        py: Python<'py>,
        cluster_a: PyReadonlyArray1<'py, i64>,
        cluster_b: PyReadonlyArray1<'py, i64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (ca, cb) = (
            vec1(&cluster_a, "cluster_a")?,
            vec1(&cluster_b, "cluster_b")?,
        );
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        let st = run_detached(py, "cluster_linkage", progress.as_ref(), |ctl| {
            if ca.len() != cb.len() {
                return Err(simclust_core::Error::Shape(format!(
                    "cluster_a and cluster_b must have the same length, got {} and {}",
                    ca.len(),
                    cb.len()
                )));
            }
            let slot = |id: i64| g.clusters.slot_of_id(id).ok_or_else(|| unknown_cluster(id));
            let pairs = ca
                .iter()
                .zip(cb)
                .map(|(&a, &b)| Ok((slot(a)?, slot(b)?)))
                .collect::<simclust_core::Result<Vec<_>>>()?;
            metrics::linkage(g, &pairs, n_threads, ctl)
        })?;
        Columns::new(py)
            .add("cluster_a", ca.to_vec())?
            .add("cluster_b", cb.to_vec())?
            .add("n_pairs", st.iter().map(|s| s.n_pairs).collect())?
            .add("mean", st.iter().map(|s| s.mean).collect())?
            .add("min", st.iter().map(|s| s.min).collect())?
            .add("max", st.iter().map(|s| s.max).collect())
            .map(|c| c.dict)
    }

    /// Silhouette (cosine, or Euclidean for `measure="euclidean"`; an error
    /// for `"dot"`): `({"silhouette": per row, "cluster", "size",
    /// "silhouette_mean": per cluster, "search": how b was searched},
    /// overall mean)`.
    #[pyo3(signature = (*, progress=None))]
    fn silhouette<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyDict>, f64)> {
        let arr = self.rows(py)?;
        let data = mat(&arr, "X")?.as_slice();
        // rows read back from a mapped file are given back as the metric streams
        let mapped = pages::FileMapped::check(data);
        let release = move || {
            if let Some(m) = mapped {
                m.release(data);
            }
        };
        let view = self.view(&arr)?.with_release(&release);
        let (g, n_threads, plan) = (&view, self.n_threads, &self.plan);
        let (s, record) = run_detached(py, "silhouette", progress.as_ref(), |ctl| {
            // the means are the cached centroids (shared with the centroid metrics)
            let st = self.centroids(g)?;
            g.release_rows();
            let out = metrics::silhouette(g, st, plan, n_threads, ctl);
            g.release_rows();
            out
        })?;
        let (ids, sizes) = ids_and_sizes(g);
        let cols = Columns::new(py)
            .add("cluster", ids)?
            .add("size", sizes)?
            .add("silhouette_mean", s.cluster_mean)?
            .add("silhouette", s.row)?;
        let search = record_out(py, Some(&record))?;
        if let Some(o) = s.overestimate {
            search.set_item("overestimate_mean", o.mean)?;
            search.set_item("overestimate_max", o.max)?;
        }
        cols.dict.set_item("search", search)?;
        Ok((cols.dict, s.mean))
    }

    /// Davies–Bouldin score of the rows as the measure reads them (noise excluded).
    fn davies_bouldin(&self, py: Python<'_>) -> PyResult<f64> {
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        run_detached(py, "davies_bouldin", None, |ctl| {
            metrics::davies_bouldin(g, n_threads, ctl)
        })
    }

    /// Calinski–Harabasz score of the rows as the measure reads them (noise excluded).
    fn calinski_harabasz(&self, py: Python<'_>) -> PyResult<f64> {
        let arr = self.rows(py)?;
        let view = self.view(&arr)?;
        let (g, n_threads) = (&view, self.n_threads);
        run_detached(py, "calinski_harabasz", None, |_| {
            metrics::calinski_harabasz(g, n_threads)
        })
    }
}

// ------------------------------------------------------------------ the
// distributed plan's per-task calls: each builds a `Gathered` over the rows
// of its task and runs the native kernels on it (no second copy of a kernel).

/// The measure named `measure`, as a Python error when unknown.
fn measure_of(measure: &str) -> PyResult<Measure> {
    Measure::parse(measure).map_err(crate::errors::to_pyerr)
}

/// Per cluster of `labels` over the rows of `x` (ascending ids, noise
/// excluded): `(ids, sizes, sums, sq)`, the sum of its rows as the measure
/// reads them (`K x D` f64, normalised rows for cosine) and of their
/// squared norms, as the native metrics sum them.
#[pyfunction]
#[pyo3(signature = (x, labels, *, measure="cosine", n_threads=None))]
#[allow(clippy::type_complexity)]
fn cluster_sums<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    measure: &str,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let (xm, lab, m) = (
        mat(&x, "X")?,
        vec1(&labels, "labels")?,
        measure_of(measure)?,
    );
    let (g, sums, sq) = run_detached(py, "cluster_sums", None, |_| {
        let g = Gathered::with_measure(xm, lab, m, n_threads)?;
        let (mut sums, mut sq) = (Vec::with_capacity(g.clusters.k() * g.d), Vec::new());
        for c in 0..g.clusters.k() {
            let (s, q) = g.cluster_moments(c);
            sums.extend(s);
            sq.push(q);
        }
        Ok((g, sums, sq))
    })?;
    let (ids, sizes) = ids_and_sizes(&g);
    let k = ids.len();
    Ok((
        to_py1(py, ids),
        to_py1(py, sizes),
        to_py2(py, sums, k, g.d)?,
        to_py1(py, sq),
    ))
}

/// The partial aggregate `(n, s1, s2, min, max)` of the values of all
/// unordered pairs of the rows of `a` (`b = None`), or of all pairs `a x
/// b`, their deviations summed around `shift`: the native intra-cluster
/// tiles (blocks of 1,024 rows from each array's first row).
#[pyfunction]
#[pyo3(signature = (a, b=None, shift=0.0, *, measure="cosine", n_threads=None))]
fn pair_sums<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: Option<PyReadonlyArray2<'py, f32>>,
    shift: f32,
    measure: &str,
    n_threads: Option<usize>,
) -> PyResult<(u64, f64, f64, f32, f32)> {
    let m = measure_of(measure)?;
    let am = mat(&a, "A")?;
    let bm = b.as_ref().map(|b| mat(b, "B")).transpose()?;
    let acc = run_detached(py, "pair_sums", None, |ctl| {
        let (ra, d) = (am.n_rows(), am.n_cols());
        let (rows, labels, job): (std::borrow::Cow<'_, [f32]>, Vec<i64>, _) = match bm {
            None => (am.as_slice().into(), vec![0; ra], (0, 0, shift)),
            Some(bm) => {
                if bm.n_cols() != d {
                    return Err(simclust_core::Error::Shape(format!(
                        "A has {d} columns but B has {}",
                        bm.n_cols()
                    )));
                }
                let rows = [am.as_slice(), bm.as_slice()].concat();
                let mut labels = vec![0; ra];
                labels.resize(ra + bm.n_rows(), 1);
                (rows.into(), labels, (0, 1, shift))
            }
        };
        let n = labels.len();
        let g = Gathered::with_measure(MatRef::new(&rows, n, d)?, &labels, m, n_threads)?;
        if g.clusters.k() < if job.1 == 0 { 1 } else { 2 } {
            return Ok(metrics::PairSums::EMPTY);
        }
        Ok(metrics::pair_sums(&g, &[job], n_threads, ctl)?[0])
    })?;
    Ok((acc.n, acc.s1, acc.s2, acc.min, acc.max))
}

/// The shift a cluster's pair deviations are summed around
/// (`simclust_core::metrics::intra_shift`): from its `n` rows' sum `sum` (f64,
/// as the measure reads them) and squared norms' sum `sq`.
#[pyfunction]
#[pyo3(signature = (sum, sq, n, *, measure="cosine"))]
fn intra_shift(sum: PyReadonlyArray1<'_, f64>, sq: f64, n: u64, measure: &str) -> PyResult<f32> {
    Ok(metrics::intra_shift(
        measure_of(measure)?,
        n,
        vec1(&sum, "sum")?,
        sq,
    ))
}

/// Partial aggregates `(n, s1, s2, min, max)` (as `pair_sums` returns them,
/// all around `shift`) merged in the given order into the statistics
/// `(n_pairs, mean, std, min, max)` (`PairStats::from_sums`; NaN without pairs).
#[pyfunction]
fn pair_stats(parts: Vec<(u64, f64, f64, f32, f32)>, shift: f32) -> (u64, f64, f64, f64, f64) {
    let mut total = metrics::PairSums::EMPTY;
    for (n, s1, s2, min, max) in parts {
        total.merge(&metrics::PairSums {
            n,
            s1,
            s2,
            min,
            max,
        });
    }
    let st = PairStats::from_sums(&total, f64::from(shift));
    (
        st.n_pairs,
        st.mean,
        st.std,
        f64::from(st.min),
        f64::from(st.max),
    )
}

/// Centroid statistics of the clusters of `labels` over the rows of `x`
/// (ascending ids, noise excluded), as `Labelling.centroid_stats` without
/// the nearest-cluster search: `cluster`, `size`, `mean`, `min`, `max`,
/// `medoid` (row of `x`), `row_value` (per row of `x`) and `centroids`
/// (`K x D` f32). With `sums` (`K x D`) and `sizes` (`K`), each cluster's
/// centroid is formed from those totals (a whole cluster's, when `x` holds
/// a part of it) and the statistics are over the rows of `x`.
#[pyfunction]
#[pyo3(signature = (x, labels, *, measure="cosine", sums=None, sizes=None, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn centroid_part<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    measure: &str,
    sums: Option<PyReadonlyArray2<'py, f64>>,
    sizes: Option<PyReadonlyArray1<'py, u64>>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let (xm, lab, m) = (
        mat(&x, "X")?,
        vec1(&labels, "labels")?,
        measure_of(measure)?,
    );
    let totals = match (&sums, &sizes) {
        (Some(s), Some(z)) => Some((crate::arrays::slice2(s, "sums")?, vec1(z, "sizes")?)),
        (None, None) => None,
        _ => {
            return Err(crate::errors::ParameterError::new_err(
                "sums and sizes go together: give both or neither",
            ))
        }
    };
    let (g, st) = run_detached(py, "centroid_part", None, |_| {
        let g = Gathered::with_measure(xm, lab, m, n_threads)?;
        let st = metrics::centroid_stats_with(&g, totals, n_threads)?;
        Ok((g, st))
    })?;
    let (ids, sizes) = ids_and_sizes(&g);
    let k = ids.len();
    let cols = Columns::new(py)
        .add("cluster", ids)?
        .add("size", sizes)?
        .add("mean", st.sim_mean)?
        .add("min", st.sim_min)?
        .add("max", st.sim_max)?
        .add("medoid", st.medoid)?
        .add("row_value", st.row_similarity)?;
    cols.dict
        .set_item("centroids", to_py2(py, st.centroids, k, g.d)?)?;
    Ok(cols.dict)
}

/// Each centroid's `top_m` nearest others (all when `None`) in `measure`:
/// `{"from", "to": row indices, "value", "search": the record}`, searched
/// as `Labelling`'s nearest-cluster searches are (`search`, `nprobe`,
/// `recall_rows`). Rows with a non-finite value (undefined centroids) are
/// neither sources nor neighbours.
#[pyfunction]
#[pyo3(signature = (centroids, top_m=None, *, measure="cosine", search="auto", nprobe=8, recall_rows=1000, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn nearest_centroids<'py>(
    py: Python<'py>,
    centroids: PyReadonlyArray2<'py, f32>,
    top_m: Option<usize>,
    measure: &str,
    search: &str,
    nprobe: usize,
    recall_rows: usize,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let m = measure_of(measure)?;
    let method = Method::parse(search).map_err(crate::errors::to_pyerr)?;
    if nprobe == 0 {
        return Err(crate::errors::ParameterError::new_err(
            "nprobe must be >= 1, got 0",
        ));
    }
    let plan = Plan {
        method,
        nprobe,
        recall_rows,
        ..Plan::default()
    };
    let cm = mat(&centroids, "centroids")?;
    let (nn, record) = run_detached(py, "nearest_centroids", progress.as_ref(), |ctl| {
        metrics::nearest_centroids(cm, m, top_m, &plan, n_threads, ctl)
    })?;
    let cols = Columns::new(py)
        .add("from", nn.from)?
        .add("to", nn.to)?
        .add("value", nn.value)?;
    cols.dict
        .set_item("search", record_out(py, record.as_ref())?)?;
    Ok(cols.dict)
}

/// The dense `K x K` matrix of `measure` between the rows of `centroids`.
#[pyfunction]
#[pyo3(signature = (centroids, *, measure="cosine", n_threads=None))]
fn centroid_matrix<'py>(
    py: Python<'py>,
    centroids: PyReadonlyArray2<'py, f32>,
    measure: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let m = measure_of(measure)?;
    let cm = mat(&centroids, "centroids")?;
    let (k, d) = (cm.n_rows(), cm.n_cols());
    let out = run_detached(py, "centroid_matrix", None, |_| {
        metrics::centroid_matrix(cm.as_slice(), k, d, m, n_threads)
    })?;
    to_py2(py, out, k, k)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Labelling>()?;
    m.add_function(wrap_pyfunction!(cluster_sums, m)?)?;
    m.add_function(wrap_pyfunction!(pair_sums, m)?)?;
    m.add_function(wrap_pyfunction!(intra_shift, m)?)?;
    m.add_function(wrap_pyfunction!(pair_stats, m)?)?;
    m.add_function(wrap_pyfunction!(centroid_part, m)?)?;
    m.add_function(wrap_pyfunction!(nearest_centroids, m)?)?;
    m.add_function(wrap_pyfunction!(centroid_matrix, m)?)?;
    Ok(())
}
