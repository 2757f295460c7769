//! Bindings of the parts of `simclust_core::ivf::knn` that a distributed run
//! hands to tasks: a chunk's own-list pairs, rows probing a chunk's lists,
//! and the merge of their lists (the driver's share is on `Partition`).

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use simclust_core::ivf::{self, Floors, KnnMerge, KnnPart, ListRows, QueryRows};
use simclust_core::similarity;

use crate::arrays::{mat, slice2, to_py1, to_py2, usizes, vec1};
use crate::detach::run_detached;
use crate::errors::ShapeError;

/// A part's lists as Python gets them: `(rows, idx, sims, pairs_computed)`.
type PyPart<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray2<u32>>,
    Bound<'py, PyArray2<f32>>,
    u64,
);

fn part_out(py: Python<'_>, p: KnnPart) -> PyResult<PyPart<'_>> {
    let (m, k) = (p.rows.len(), p.k);
    Ok((
        to_py1(py, p.rows),
        to_py2(py, p.idx, m, k)?,
        to_py2(py, p.sims, m, k)?,
        p.pairs_computed,
    ))
}

/// A chunk's rows `x` normalised as the partition normalises them, the
/// lists' rows from position `start` (list `i` is rows `bounds[i]..bounds[i + 1]`).
fn unit_lists<'a>(
    x: simclust_core::MatRef<'_>,
    bounds: &'a [usize],
    start: usize,
    xs: &'a mut Vec<f32>,
    n_threads: Option<usize>,
) -> simclust_core::Result<ListRows<'a>> {
    *xs = similarity::normalize_rows(x, "x", n_threads)?;
    Ok(ListRows {
        start,
        bounds,
        xs,
        d: x.n_cols(),
    })
}

/// A chunk's own-list pairs: the rows `x` of consecutive lists (list `i` is
/// rows `bounds[i]:bounds[i + 1]`, normalised as the partition normalises
/// them), the first at position `start`. `(rows, idx, sims, pairs_computed)`.
#[pyfunction]
#[pyo3(signature = (x, bounds, start, k, *, n_threads=None))]
fn knn_own_lists<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    bounds: PyReadonlyArray1<'py, u64>,
    start: usize,
    k: usize,
    n_threads: Option<usize>,
) -> PyResult<PyPart<'py>> {
    let xm = mat(&x, "x")?;
    let bounds = usizes(&bounds, "bounds")?;
    let part = run_detached(py, "knn_own_lists", None, |ctl| {
        let mut xs = Vec::new();
        let lists = unit_lists(xm, &bounds, start, &mut xs, n_threads)?;
        ivf::own_lists_part(&lists, k, n_threads, ctl)
    })?;
    part_out(py, part)
}

/// Rows probing a chunk's lists (`x`, `bounds`, `start` as for
/// `knn_own_lists`): the query rows `q` at `positions` (ascending), list
/// `i`'s probing rows `members[offsets[i]:offsets[i + 1]]` (indices into
/// `positions`), the floors (`k`-th similarity and position of the merged
/// lists) of the chunk's rows and of the queries.
#[pyfunction]
#[pyo3(signature = (x, bounds, start, q, positions, offsets, members, floors, query_floors, k, *, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn knn_probe_lists<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    bounds: PyReadonlyArray1<'py, u64>,
    start: usize,
    q: PyReadonlyArray2<'py, f32>,
    positions: PyReadonlyArray1<'py, u32>,
    offsets: PyReadonlyArray1<'py, u64>,
    members: PyReadonlyArray1<'py, u32>,
    floors: (PyReadonlyArray1<'py, f32>, PyReadonlyArray1<'py, u32>),
    query_floors: (PyReadonlyArray1<'py, f32>, PyReadonlyArray1<'py, u32>),
    k: usize,
    n_threads: Option<usize>,
) -> PyResult<PyPart<'py>> {
    let xm = mat(&x, "x")?;
    let qm = mat(&q, "q")?;
    if qm.n_cols() != xm.n_cols() {
        return Err(ShapeError::new_err("q must have the columns of x"));
    }
    let bounds = usizes(&bounds, "bounds")?;
    let offsets = usizes(&offsets, "offsets")?;
    let (positions, members) = (vec1(&positions, "positions")?, vec1(&members, "members")?);
    let list_floors = Floors {
        sims: vec1(&floors.0, "floors")?,
        idx: vec1(&floors.1, "floors")?,
    };
    let query_floors = Floors {
        sims: vec1(&query_floors.0, "query_floors")?,
        idx: vec1(&query_floors.1, "query_floors")?,
    };
    let part = run_detached(py, "knn_probe_lists", None, |ctl| {
        let mut xs = Vec::new();
        let lists = unit_lists(xm, &bounds, start, &mut xs, n_threads)?;
        let qs = similarity::normalize_rows(qm, "q", n_threads)?;
        let queries = QueryRows {
            positions,
            xs: &qs,
            offsets: &offsets,
            members,
        };
        ivf::probe_part(
            &lists,
            list_floors,
            &queries,
            query_floors,
            k,
            n_threads,
            ctl,
        )
    })?;
    part_out(py, part)
}

/// The union of parts' lists over `n` rows, `k` best per row:
/// `(idx, sims)`, `n x k`, best first (row `rows[i]` offered `idx[i]`,
/// `sims[i]`; a row may repeat).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn knn_merge<'py>(
    py: Python<'py>,
    n: usize,
    k: usize,
    rows: PyReadonlyArray1<'py, u32>,
    idx: PyReadonlyArray2<'py, u32>,
    sims: PyReadonlyArray2<'py, f32>,
) -> PyResult<(Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<f32>>)> {
    let (r, i, s) = (
        vec1(&rows, "rows")?,
        slice2(&idx, "idx")?,
        slice2(&sims, "sims")?,
    );
    let (idx, sims) = run_detached(py, "knn_merge", None, |_| {
        let mut merged = KnnMerge::new(n, k)?;
        merged.add(r, i, s)?;
        Ok(merged.into_lists())
    })?;
    Ok((to_py2(py, idx, n, k)?, to_py2(py, sims, n, k)?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn_own_lists, m)?)?;
    m.add_function(wrap_pyfunction!(knn_probe_lists, m)?)?;
    m.add_function(wrap_pyfunction!(knn_merge, m)?)?;
    Ok(())
}
