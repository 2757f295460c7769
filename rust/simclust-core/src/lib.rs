//! `simclust-core`: the numerics of simclust, in pure Rust.
//!
//! Everything here works on plain row-major `f32` slices ([`MatRef`]) and
//! returns owned vectors, so it links without Python (`cargo test`) and the
//! PyO3 layer (`simclust-py`) only converts arrays and maps errors.
//!
//! * [`similarity`]: L2 normalisation, exact cosine kNN (blocked GEMM with a
//!   fused top-k, symmetric for self-search), ε-graphs and kNN edge lists.
//! * [`unionfind`]: connected components, the threshold sweep and the
//!   per-component bridge similarity (single linkage).
//! * [`parallel`]: the owned rayon pools and the cancel/progress [`Control`].
//! * [`kmeans`]: spherical and Euclidean k-means; [`metrics`]: cluster
//!   geometry (intra, centroid, inter, silhouette) for any labelling.
//! * [`ivf`]: partitioned graphs (rows split into lists by spherical
//!   k-means): approximate kNN and ε-graphs with measured recall, and the
//!   certified exact ε-graph.
//! * [`search`]: the one rule choosing exact or partitioned search, and a
//!   self-kNN that follows it and records its measured recall.
//! * [`memory`]: allocation checks (an error, never an abort).
//! * `tiles`: the tile GEMM and task runners shared by all kernels.
//! * [`simd`]: the run-time SIMD choice (`SIMCLUST_SIMD=portable` forces the
//!   portable paths on any CPU).
//!
//! Every kernel is deterministic: the same input gives bit-identical output
//! for any thread count, because blocks and reductions have a fixed order.

pub mod error;
pub mod ivf;
pub mod kmeans;
pub mod matrix;
pub mod memory;
pub mod metrics;
pub mod parallel;
pub mod search;
pub mod simd;
pub mod similarity;
pub(crate) mod tiles;
pub mod unionfind;

#[cfg(test)]
mod testdata;

pub use error::{Error, Result};
pub use matrix::MatRef;
pub use parallel::Control;

/// The label of noise / unassigned rows in every labelling (`-1`, as
/// scikit-learn's): noise rows belong to no cluster.
pub const NOISE: i64 = -1;

/// A row in no cluster, in the compact per-row cluster tables (`u32` slots)
/// the kernels build from a labelling.
pub(crate) const NO_SLOT: u32 = u32::MAX;
