//! Exact or partitioned: the one rule that picks how a set of vectors is
//! searched, and a self-kNN that follows it and says what it did.
//!
//! Brute force costs `N^2 D / 2` multiply-adds. [`auto_exact`] keeps it
//! while that is at most [`AUTO_EXACT_WORK`] (or `N < 1000`); above, the
//! search is partitioned ([`crate::ivf`]) and its recall is measured on a
//! seeded sample against brute force, so an approximate answer always says
//! how approximate it is ([`Record::recall`]). The graph builder and the
//! nearest-cluster searches of the metrics share this rule.

use crate::error::{Error, Result};
use crate::ivf::{self, Partition, PartitionParams};
use crate::matrix::MatRef;
use crate::parallel::Control;
use crate::similarity::{self, Neighbors};

/// Multiply-adds of brute force up to which `auto` searches exactly (about
/// a minute on two cores).
pub const AUTO_EXACT_WORK: f64 = 8e12;

/// Below this many vectors `auto` is always exact.
pub const AUTO_EXACT_ROWS: usize = 1000;

/// The multiply-adds of an exact self-search over `n` rows of dimension `d`.
pub fn exact_work(n: usize, d: usize) -> f64 {
    (n as f64) * (n as f64) * (d as f64) / 2.0
}

/// Whether `auto` searches `n` rows of dimension `d` by brute force.
///
/// ```
/// assert!(simclust_core::search::auto_exact(100_000, 384));
/// assert!(!simclust_core::search::auto_exact(1_000_000, 384));
/// ```
pub fn auto_exact(n: usize, d: usize) -> bool {
    resolve(Method::Auto, n, exact_work(n, d)).0 == Method::Exact
}

/// The method `method` stands for on a search over `n` vectors whose brute
/// force costs `work` multiply-adds (`Auto`: exact while `work` is at most
/// [`AUTO_EXACT_WORK`] or `n` below [`AUTO_EXACT_ROWS`]), and whether `auto`
/// chose it.
pub fn resolve(method: Method, n: usize, work: f64) -> (Method, bool) {
    match method {
        Method::Auto if n < AUTO_EXACT_ROWS || work <= AUTO_EXACT_WORK => (Method::Exact, true),
        Method::Auto => (Method::Ivf, true),
        m => (m, false),
    }
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact while small ([`auto_exact`]), else [`Method::Ivf`].
    Auto,
    /// Brute force over every pair.
    Exact,
    /// Partitioned into lists, each compared with its `nprobe` nearest.
    Ivf,
}

impl Method {
    /// `"auto"`, `"exact"` or `"ivf"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Exact => "exact",
            Method::Ivf => "ivf",
        }
    }

    /// The method named `name` (as [`Method::name`]).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "auto" => Ok(Method::Auto),
            "exact" => Ok(Method::Exact),
            "ivf" => Ok(Method::Ivf),
            other => Err(Error::Parameter(format!(
                "search must be 'auto', 'exact' or 'ivf', got {other:?}"
            ))),
        }
    }
}

/// A search method with its knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The method (`Auto` is resolved per search by its size).
    pub method: Method,
    /// Lists each list is compared with (partitioned search).
    pub nprobe: usize,
    /// Seeded rows the recall of a partitioned search is measured on.
    pub recall_rows: usize,
    /// Seed of the partition and of the recall sample.
    pub seed: u64,
}

impl Default for Plan {
    /// `auto`, `nprobe` 8, recall on 1,000 rows, seed 0.
    fn default() -> Self {
        Self {
            method: Method::Auto,
            nprobe: 8,
            recall_rows: 1000,
            seed: 0,
        }
    }
}

/// What a search did.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `Exact` or `Ivf` (never `Auto`).
    pub method: Method,
    /// Whether `auto` chose it.
    pub auto: bool,
    /// Multiply-adds brute force takes (or would have taken).
    pub exact_work: f64,
    /// Recall@k against brute force on the sampled rows (1 when exact).
    pub recall: f64,
    /// Rows the recall was measured on (0 when exact).
    pub recall_rows: usize,
    /// Lists of the partition (0 when exact).
    pub n_lists: usize,
    /// Lists each list was compared with (0 when exact).
    pub nprobe: usize,
    /// Row pairs whose similarity was computed.
    pub pairs_computed: u64,
    /// All row pairs, `N (N - 1) / 2`.
    pub pairs_total: u64,
}

impl Record {
    /// The record of a brute-force search over `pairs_total` pairs costing
    /// `work` multiply-adds (`auto`: whether `auto` chose it): every pair
    /// computed, recall 1.
    pub fn exact(auto: bool, work: f64, pairs_total: u64) -> Self {
        Self {
            method: Method::Exact,
            auto,
            exact_work: work,
            recall: 1.0,
            recall_rows: 0,
            n_lists: 0,
            nprobe: 0,
            pairs_computed: pairs_total,
            pairs_total,
        }
    }
}

/// Each row's `k` most similar other rows (cosine), by brute force or over
/// a partition as `plan` says, with a [`Record`] of what was done.
///
/// The lists are in input row order, most similar first, ties by the lower
/// row. A partitioned search may find fewer than `k` rows for a row: the
/// missing entries are `u32::MAX` with similarity `-inf`.
///
/// ```
/// use simclust_core::{search::{self, Method, Plan}, Control, MatRef};
/// let x = [1.0_f32, 0.0, 0.9, 0.1, 0.0, 1.0];
/// let plan = Plan { method: Method::Auto, ..Plan::default() };
/// let (nn, rec) = search::self_knn(MatRef::new(&x, 3, 2)?, 1, &plan, None, &Control::new())?;
/// assert_eq!(nn.indices, vec![1, 0, 1]);
/// assert_eq!((rec.method, rec.recall), (Method::Exact, 1.0));
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn self_knn(
    x: MatRef<'_>,
    k: usize,
    plan: &Plan,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Neighbors, Record)> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let work = exact_work(n, d);
    let pairs_total = (n as u64) * (n as u64).saturating_sub(1) / 2;
    let (method, auto) = resolve(plan.method, n, work);
    if method == Method::Exact {
        let nn = similarity::knn(x, k, n_threads, ctl)?;
        return Ok((nn, Record::exact(auto, work, pairs_total)));
    }
    if plan.nprobe == 0 {
        return Err(Error::Parameter("nprobe must be >= 1, got 0".into()));
    }
    let params = PartitionParams {
        seed: plan.seed,
        n_threads,
        cells: false,
        ..PartitionParams::for_rows(n)
    };
    let part = Partition::build(x, &params, ctl)?;
    let m = ivf::knn_measured(
        &part,
        k,
        plan.nprobe,
        plan.recall_rows,
        plan.seed,
        n_threads,
        ctl,
    )?;
    let stats = m.stats;
    let record = Record {
        method,
        auto,
        exact_work: work,
        recall: m.recall.unwrap_or(1.0),
        recall_rows: m.recall_rows,
        n_lists: part.n_lists,
        nprobe: plan.nprobe.min(part.n_lists),
        pairs_computed: stats.pairs_computed,
        pairs_total: stats.pairs_total,
    };
    Ok((m.nn, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::clustered;

    #[test]
    fn auto_rule() {
        assert!(auto_exact(999, 1_000_000));
        assert!(auto_exact(100_000, 384));
        assert!(!auto_exact(300_000, 384));
        assert_eq!(Method::parse("ivf").ok(), Some(Method::Ivf));
        assert!(Method::parse("brute").is_err());
    }

    #[test]
    fn ivf_self_knn_measures_its_recall_and_matches_exact_where_it_finds() -> Result<()> {
        let (n, d) = (3000, 16);
        let x = clustered(n, d, 12, 0.2, 7);
        let xm = MatRef::new(&x, n, d)?;
        let ctl = Control::new();
        let exact = Plan {
            method: Method::Exact,
            ..Plan::default()
        };
        let ivf = Plan {
            method: Method::Ivf,
            recall_rows: n,
            ..Plan::default()
        };
        let (e, er) = self_knn(xm, 3, &exact, Some(2), &ctl)?;
        let (a, ar) = self_knn(xm, 3, &ivf, Some(2), &ctl)?;
        let (a1, _) = self_knn(xm, 3, &ivf, Some(1), &ctl)?;
        assert_eq!(a, a1, "thread count changed the partitioned search");
        assert_eq!((er.method, er.recall), (Method::Exact, 1.0));
        assert_eq!(ar.method, Method::Ivf);
        assert!(ar.pairs_computed < ar.pairs_total);
        // recall measured on every row equals the recall counted here: both
        // searches list the one exact similarity of a pair, so a listed
        // neighbour is found when it reaches the exact 3rd (equal: a tie)
        let mut found = 0;
        for r in 0..n {
            let kth = e.similarities[r * 3 + 2];
            let (ai, asim) = (
                &a.indices[r * 3..r * 3 + 3],
                &a.similarities[r * 3..r * 3 + 3],
            );
            found += asim.iter().filter(|&&s| s >= kth).count();
            // a pair listed by both has the same similarity, bit for bit
            for (j, s) in ai.iter().zip(asim) {
                if let Some(q) = e.indices[r * 3..r * 3 + 3].iter().position(|i| i == j) {
                    assert_eq!(s.to_bits(), e.similarities[r * 3 + q].to_bits());
                }
            }
        }
        let direct = found as f64 / (3 * n) as f64;
        assert!(
            (ar.recall - direct).abs() < 1e-12,
            "{} vs {direct}",
            ar.recall
        );
        assert!(ar.recall > 0.9, "recall {}", ar.recall);
        Ok(())
    }

    #[test]
    fn exact_search_has_recall_one_and_the_ivf_lists_its_values() -> Result<()> {
        // clusters, a cloud far tighter than float32 screening can rank,
        // 40 exact copies of one row and 30 scaled copies of another
        let (n, d, k) = (2500, 24, 8);
        let mut x = clustered(n, d, 10, 0.3, 11);
        let cloud = clustered(200, d, 2, 1e-6, 12);
        x[..200 * d].copy_from_slice(&cloud);
        let base: Vec<f32> = x[300 * d..302 * d].to_vec();
        for i in 0..40 {
            let r = 400 + 7 * i;
            x[r * d..(r + 1) * d].copy_from_slice(&base[..d]);
        }
        for i in 0..30 {
            let r = 1000 + 11 * i;
            for p in 0..d {
                x[r * d + p] = (1.0 + i as f32 * 0.5) * base[d + p];
            }
        }
        let xm = MatRef::new(&x, n, d)?;
        let ctl = Control::new();
        let e = similarity::knn(xm, k, Some(2), &ctl)?;
        let params = PartitionParams {
            n_threads: Some(2),
            ..PartitionParams::for_rows(n)
        };
        let part = Partition::build(xm, &params, &ctl)?;
        let all: Vec<u32> = (0..n as u32).collect();
        for threads in [1, 2] {
            assert_eq!(ivf::knn_recall(&part, &e, &all, Some(threads), &ctl)?, 1.0);
        }
        // the partitioned search lists the exact value of every pair it finds
        let (a, _) = ivf::knn(&part, k, 4, Some(2), &ctl)?;
        let mut shared = 0;
        for r in 0..n {
            let want = &e.indices[r * k..(r + 1) * k];
            for (j, s) in a.indices[r * k..(r + 1) * k]
                .iter()
                .zip(&a.similarities[r * k..(r + 1) * k])
            {
                if let Some(q) = want.iter().position(|i| i == j) {
                    assert_eq!(s.to_bits(), e.similarities[r * k + q].to_bits());
                    shared += 1;
                }
            }
        }
        assert!(shared > n * k / 2, "{shared} pairs in common");
        // the copies of row 300: similarity exactly 1, the lowest other
        // copies first
        let copies: Vec<u32> = std::iter::once(300)
            .chain((0..40).map(|i| (400 + 7 * i) as u32))
            .collect();
        for &row in &copies {
            crate::testdata::assert_lists_copies(&e, row as usize, &copies);
        }
        Ok(())
    }
}
