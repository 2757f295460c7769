//! Bindings of `simclust_core::metrics`. Column-like results are returned as
//! a `dict` of numpy arrays keyed by the frame column they become.

use numpy::{Element, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use simclust_core::metrics::{self, Gathered, PairStats};

use crate::arrays::{mat, to_py1, to_py2, vec1};
use crate::detach::run_detached;

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

/// Exact all-pairs statistics per cluster, plus edge-only statistics when
/// `src`/`dst` are given.
#[pyfunction]
#[pyo3(signature = (x, labels, src=None, dst=None, *, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn intra_stats<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    src: Option<PyReadonlyArray1<'py, u32>>,
    dst: Option<PyReadonlyArray1<'py, u32>>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let edges = match (&src, &dst) {
        (Some(s), Some(d)) => Some((vec1(s, "src")?, vec1(d, "dst")?)),
        _ => None,
    };
    let (g, pairs, edge) = run_detached(py, "intra_stats", progress.as_ref(), |ctl| {
        let g = Gathered::new(xm, lab, n_threads)?;
        let pairs = metrics::intra_stats(&g, n_threads, ctl)?;
        let edge = match edges {
            Some((s, d)) => Some(metrics::edge_stats(&g, s, d, n_threads)?),
            None => None,
        };
        Ok((g, pairs, edge))
    })?;
    let (ids, sizes) = ids_and_sizes(&g);
    let k = ids.len();
    let col = |f: fn(&PairStats) -> f64| pairs.iter().map(f).collect::<Vec<f64>>();
    let (n_edges, e_mean, e_min, e_max) = match edge {
        Some(e) => (
            e.iter().map(|s| s.n_edges).collect(),
            e.iter().map(|s| s.mean).collect(),
            e.iter().map(|s| f64::from(s.min)).collect(),
            e.iter().map(|s| f64::from(s.max)).collect(),
        ),
        None => (
            vec![0_u64; k],
            vec![f64::NAN; k],
            vec![f64::NAN; k],
            vec![f64::NAN; k],
        ),
    };
    Ok(Columns::new(py)
        .add("cluster", ids)?
        .add("size", sizes)?
        .add("n_pairs", pairs.iter().map(|s| s.n_pairs).collect())?
        .add("sim_mean", col(|s| s.mean))?
        .add("sim_min", col(|s| f64::from(s.min)))?
        .add("sim_max", col(|s| f64::from(s.max)))?
        .add("sim_std", col(|s| s.std))?
        .add("n_edges", n_edges)?
        .add("edge_sim_mean", e_mean)?
        .add("edge_sim_min", e_min)?
        .add("edge_sim_max", e_max)?
        .dict)
}

/// Centroid statistics per cluster and per row, the unit centroids and
/// each cluster's nearest cluster.
#[pyfunction]
#[pyo3(signature = (x, labels, *, n_threads=None))]
fn centroid_stats<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let (g, st, nn) = run_detached(py, "centroid_stats", None, |ctl| {
        let g = Gathered::new(xm, lab, n_threads)?;
        let st = metrics::centroid_stats(&g, n_threads)?;
        let nn =
            metrics::nearest_clusters(&st.centroids, g.clusters.k(), g.d, Some(1), n_threads, ctl)?;
        Ok((g, st, nn))
    })?;
    let (ids, sizes) = ids_and_sizes(&g);
    let k = ids.len();
    let mut nearest = vec![-1_i64; k];
    let mut nearest_sim = vec![f32::NAN; k];
    for ((&a, &b), &s) in nn.from.iter().zip(&nn.to).zip(&nn.similarity) {
        nearest[a as usize] = ids[b as usize];
        nearest_sim[a as usize] = s;
    }
    let d = g.d;
    let cols = Columns::new(py)
        .add("cluster", ids)?
        .add("size", sizes)?
        .add("centroid_sim_mean", st.sim_mean)?
        .add("centroid_sim_min", st.sim_min)?
        .add("centroid_sim_max", st.sim_max)?
        .add("medoid", st.medoid)?
        .add("nearest_cluster", nearest)?
        .add("nearest_cluster_similarity", nearest_sim)?
        .add("centroid_similarity", st.row_similarity)?;
    cols.dict
        .set_item("centroids", to_py2(py, st.centroids, k, d)?)?;
    Ok(cols.dict)
}

/// The long inter-cluster frame: each cluster's `top_m` nearest clusters
/// (all when `None`) by centroid cosine similarity.
#[pyfunction]
#[pyo3(signature = (x, labels, top_m=None, *, n_threads=None, progress=None))]
fn inter_centroid<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    top_m: Option<usize>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let (ids, nn) = run_detached(py, "inter_centroid", progress.as_ref(), |ctl| {
        let g = Gathered::new(xm, lab, n_threads)?;
        let st = metrics::centroid_stats(&g, n_threads)?;
        let nn =
            metrics::nearest_clusters(&st.centroids, g.clusters.k(), g.d, top_m, n_threads, ctl)?;
        Ok((g.clusters.ids().to_vec(), nn))
    })?;
    Columns::new(py)
        .add(
            "cluster_a",
            nn.from.iter().map(|&c| ids[c as usize]).collect(),
        )?
        .add(
            "cluster_b",
            nn.to.iter().map(|&c| ids[c as usize]).collect(),
        )?
        .add("centroid_similarity", nn.similarity)
        .map(|c| c.dict)
}

/// `(cluster ids, K x K matrix)`.
type IdsAndMatrix<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray2<f32>>);

/// `(cluster ids, K x K centroid cosine similarity matrix)`.
#[pyfunction]
#[pyo3(signature = (x, labels, *, n_threads=None))]
fn centroid_similarity_matrix<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    n_threads: Option<usize>,
) -> PyResult<IdsAndMatrix<'py>> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let (ids, m) = run_detached(py, "centroid_similarity_matrix", None, |_| {
        let g = Gathered::new(xm, lab, n_threads)?;
        let st = metrics::centroid_stats(&g, n_threads)?;
        let k = g.clusters.k();
        let m = metrics::centroid_similarity_matrix(&st.centroids, k, g.d, n_threads)?;
        Ok((g.clusters.ids().to_vec(), m))
    })?;
    let k = ids.len();
    Ok((to_py1(py, ids), to_py2(py, m, k, k)?))
}

/// Exact linkage statistics over all cross pairs of the given cluster pairs.
#[pyfunction]
#[pyo3(signature = (x, labels, cluster_a, cluster_b, *, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn cluster_linkage<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    cluster_a: PyReadonlyArray1<'py, i64>,
    cluster_b: PyReadonlyArray1<'py, i64>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let (ca, cb) = (
        vec1(&cluster_a, "cluster_a")?,
        vec1(&cluster_b, "cluster_b")?,
    );
    let st = run_detached(py, "cluster_linkage", progress.as_ref(), |ctl| {
        if ca.len() != cb.len() {
            return Err(simclust_core::Error::Shape(format!(
                "cluster_a and cluster_b must have the same length, got {} and {}",
                ca.len(),
                cb.len()
            )));
        }
        let g = Gathered::new(xm, lab, n_threads)?;
        let slot = |id: i64| {
            g.clusters.slot_of_id(id).ok_or_else(|| {
                simclust_core::Error::Parameter(format!(
                    "cluster {id} does not exist: no row has that label"
                ))
            })
        };
        let pairs = ca
            .iter()
            .zip(cb)
            .map(|(&a, &b)| Ok((slot(a)?, slot(b)?)))
            .collect::<simclust_core::Result<Vec<_>>>()?;
        metrics::linkage(&g, &pairs, n_threads, ctl)
    })?;
    Columns::new(py)
        .add("cluster_a", ca.to_vec())?
        .add("cluster_b", cb.to_vec())?
        .add("n_pairs", st.iter().map(|s| s.n_pairs).collect())?
        .add("sim_mean", st.iter().map(|s| s.mean).collect())?
        .add("sim_min", st.iter().map(|s| s.min).collect())?
        .add("sim_max", st.iter().map(|s| s.max).collect())
        .map(|c| c.dict)
}

/// Exact cosine silhouette: `({"silhouette": per row, "cluster", "size",
/// "silhouette_mean": per cluster}, overall mean)`.
#[pyfunction]
#[pyo3(signature = (x, labels, *, n_threads=None, progress=None))]
fn silhouette<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, f64)> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    let (g, s) = run_detached(py, "silhouette", progress.as_ref(), |ctl| {
        let g = Gathered::new(xm, lab, n_threads)?;
        let s = metrics::silhouette(&g, n_threads, ctl)?;
        Ok((g, s))
    })?;
    let (ids, sizes) = ids_and_sizes(&g);
    let cols = Columns::new(py)
        .add("cluster", ids)?
        .add("size", sizes)?
        .add("silhouette_mean", s.cluster_mean)?
        .add("silhouette", s.row)?;
    Ok((cols.dict, s.mean))
}

/// Davies–Bouldin score of the normalised rows (noise excluded).
#[pyfunction]
#[pyo3(signature = (x, labels, *, n_threads=None))]
fn davies_bouldin(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f32>,
    labels: PyReadonlyArray1<'_, i64>,
    n_threads: Option<usize>,
) -> PyResult<f64> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    run_detached(py, "davies_bouldin", None, |ctl| {
        metrics::davies_bouldin(&Gathered::new(xm, lab, n_threads)?, n_threads, ctl)
    })
}

/// Calinski–Harabasz score of the normalised rows (noise excluded).
#[pyfunction]
#[pyo3(signature = (x, labels, *, n_threads=None))]
fn calinski_harabasz(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f32>,
    labels: PyReadonlyArray1<'_, i64>,
    n_threads: Option<usize>,
) -> PyResult<f64> {
    let xm = mat(&x, "X")?;
    let lab = vec1(&labels, "labels")?;
    run_detached(py, "calinski_harabasz", None, |_| {
        metrics::calinski_harabasz(&Gathered::new(xm, lab, n_threads)?, n_threads)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(intra_stats, m)?)?;
    m.add_function(wrap_pyfunction!(centroid_stats, m)?)?;
    m.add_function(wrap_pyfunction!(inter_centroid, m)?)?;
    m.add_function(wrap_pyfunction!(centroid_similarity_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(cluster_linkage, m)?)?;
    m.add_function(wrap_pyfunction!(silhouette, m)?)?;
    m.add_function(wrap_pyfunction!(davies_bouldin, m)?)?;
    m.add_function(wrap_pyfunction!(calinski_harabasz, m)?)?;
    Ok(())
}
