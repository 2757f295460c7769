//! Cosine similarity kernels: normalisation, exact kNN and ε-graphs.
//!
//! All kernels work on L2-normalised rows (see [`normalize_rows`]) so that a
//! dot product is the cosine similarity. The pairwise work is cut into fixed
//! tiles of [`BLOCK`] x [`BLOCK`] rows; each tile is one single-threaded GEMM
//! (the `gemm` crate's packed, SIMD-dispatched kernel) followed by a fused
//! scan (top-k update or threshold filter) while the tile is hot in cache.
//! Tiles are handed to the pool's threads dynamically, but every pair is
//! computed in exactly one tile whose shape does not depend on the thread
//! count, and every reduction is order-independent (a top-k under a total
//! order, or a sort), so results are bit-identical for any thread count.

mod amx;
pub(crate) mod exact;
mod graph;
pub(crate) mod int16;
mod knn;
mod lists;
pub(crate) mod normalize;
mod screen;
pub(crate) mod topk;

pub use crate::tiles::BLOCK;
pub use exact::pair_similarities;
pub(crate) use graph::{check_threshold, edges_from_neighbors};

/// Whether the exact self-kNN screens with the bf16 AMX kernel here.
pub(crate) fn amx_usable() -> bool {
    amx::Amx::detect().is_some()
}
pub use graph::{knn_edges, threshold_edges, threshold_edges_between, EdgeList};
pub(crate) use knn::{check_rows_fit_u32, refine_lists};
pub use knn::{knn, knn_between, knn_query, Neighbors};
pub use lists::list_pair_edges;
pub(crate) use normalize::check_non_empty;
pub use normalize::{normalize_rows, rows_are_unit};
pub(crate) use screen::{finish, ExactRows, Shortlist};
pub(crate) use topk::TopK;
