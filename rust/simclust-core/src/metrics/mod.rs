//! Cluster geometry: exact intra-cluster, centroid, inter-cluster and
//! silhouette metrics for any labelling.
//!
//! A labelling gives each row a cluster id `>= 0` or [`NOISE`] (`-1`).
//! Noise rows belong to no cluster: they are excluded from every statistic
//! (they are still validated: NaN/Inf rows, and for cosine zero rows, are
//! errors). Cluster ids
//! need not be `0..K`: gaps are allowed, and clusters are reported in
//! ascending id order (a cluster's *slot* is its rank in that order).
//!
//! Every kernel starts from a [`Gathered`] labelling: the clustered rows,
//! L2-normalised for cosine (as they are for the other measures) and
//! addressed cluster by cluster as one contiguous range of positions. The rows are not copied as a whole: each task gathers the
//! few rows it multiplies into its own buffer (a tile of a cluster, a
//! segment of a centroid sum), so the metrics of a million-row run need no
//! second copy of the data. A [`Grouping`] (the validated labelling and the
//! rows' unit factors) can be kept and viewed again over the same rows.
//!
//! * [`intra_stats`]: exact statistics over all unordered pairs of members
//!   (blocked GEMM within each cluster; never an `n^2` matrix), and
//!   [`linkage`] over all cross pairs of two clusters.
//! * [`edge_stats`]: the same statistics over given graph edges only.
//! * [`centroid_stats`]: centroids (unit for cosine, plain means otherwise),
//!   each row's value to its centroid, per-cluster mean/min/max and the medoid.
//! * [`Measure`]: what every metric measures: cosine similarity of the
//!   normalised rows (the default, [`Gathered::new`]), or the inner product
//!   or Euclidean distance of the rows as they are ([`Gathered::with_measure`]);
//!   all through the same GEMM tiles, never an `n^2` matrix.
//! * [`centroid_similarity_matrix`], [`nearest_clusters`]: centroid cosine
//!   similarities between clusters.
//! * [`centroid_matrix`], [`nearest_centroids`]: the same in any measure.
//! * [`silhouette`]: the exact cosine silhouette (`1 - cos` distances), or
//!   the exact Euclidean one (all pairs, `O(n^2 D)`);
//!   [`davies_bouldin`], [`calinski_harabasz`] on the rows as the measure
//!   reads them (normalised for cosine).
//!
//! All results are bit-identical for any thread count: work is cut into
//! fixed tiles or segments and partial results are reduced in a fixed order.

mod centroid;
mod clusters;
mod edges;
mod inter;
mod intra;
mod kernel;
mod measure;
mod silhouette;

pub use centroid::centroid_stats_with;
pub use centroid::{calinski_harabasz, centroid_stats, davies_bouldin, CentroidStats};
pub use clusters::{Clusters, Gathered, Grouping, NOISE};
pub use edges::{edge_stats, EdgeStats};
pub use inter::{
    centroid_matrix, centroid_similarity_matrix, nearest_centroids, nearest_clusters,
    NearestClusters,
};
pub use intra::{intra_shift, intra_stats, linkage, pair_sums, PairStats};
pub use kernel::Acc as PairSums;
pub use measure::Measure;
pub use silhouette::{silhouette, Overestimate, Silhouette};
