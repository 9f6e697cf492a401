//! Summary statistics, including the Hogwild! sparsity statistics of Niu et al. (2011,
//! eq. 2.6), for a hypergraph whose hyperedges are the examples:
//!
//! * Ω = max_e |e|: the most coordinates one example touches;
//! * Δ = max_v |{e : v ∈ e}| / |E|: the largest fraction of examples that share one
//!   coordinate;
//! * ρ = max_e |{ê : ê ∩ e ≠ ∅}| / |E|: the largest fraction of examples that overlap
//!   a given one (itself included).
//!
//! ρ for sparse data is computed exactly by walking, for each example, the examples of
//! each of its features (through the transposed matrix) and counting the distinct ones.
//! Examples are visited in decreasing order of an upper bound
//! (1 + Σ_{j∈e}(deg_j − 1)), and the walk stops as soon as no unvisited example can beat
//! the best count found, so the exact value is usually cheap. When the walk would visit
//! more than a budget of entries, it stops early: ρ is then the best count found (a
//! lower bound, from the examples most likely to attain the maximum), `rho_exact` is
//! false and `rho_upper` bounds the true value from above. No randomness is involved,
//! so the figures are repeatable.

use rayon::prelude::*;

use super::{RatingsDataset, SparseDataset};

/// Default budget for the exact ρ walk: 2·10⁹ visited entries (a few seconds).
pub const DEFAULT_RHO_BUDGET: u64 = 2_000_000_000;

/// Statistics of a classification data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SparseStats {
    /// Examples.
    pub rows: usize,
    /// Features.
    pub columns: usize,
    /// Stored non-zeros.
    pub nnz: usize,
    /// nnz / (rows · columns).
    pub density: f64,
    /// Fraction of examples labelled +1.
    pub positive_fraction: f64,
    /// Mean non-zeros per example.
    pub mean_nnz_per_row: f64,
    /// Ω: most non-zeros in one example.
    pub omega: usize,
    /// Δ: largest fraction of examples sharing one feature.
    pub delta: f64,
    /// ρ: largest fraction of examples overlapping one example (exact, or a lower bound).
    pub rho: f64,
    /// True when `rho` is exact.
    pub rho_exact: bool,
    /// An upper bound on ρ (equal to `rho` when exact).
    pub rho_upper: f64,
    /// Examples whose overlap count was computed.
    pub rho_rows_examined: usize,
}

/// The structure by column: the row indices renumbered to the features in use when the
/// index range is far larger than the data (one index 4294967294 in a tiny file, so
/// memory follows the data, not the largest index), each feature's degree, and for each
/// feature the rows holding it (pointers and rows).
fn columns(d: &SparseDataset) -> (std::borrow::Cow<'_, [u32]>, Vec<u32>, Vec<usize>, Vec<u32>) {
    let (n, x) = (d.rows(), d.x());
    let indptr = x.indptr();
    let indptr = indptr.raw_storage();
    let (indices, m) = if d.cols() > 2 * x.nnz() + 1024 {
        let mut used = x.indices().to_vec();
        used.par_sort_unstable();
        used.dedup();
        let compact: Vec<u32> = x
            .indices()
            .par_iter()
            .map(|j| used.binary_search(j).unwrap_or(0) as u32)
            .collect();
        (std::borrow::Cow::Owned(compact), used.len())
    } else {
        (std::borrow::Cow::Borrowed(x.indices()), d.cols())
    };
    let mut deg = vec![0u32; m];
    for &j in indices.iter() {
        deg[j as usize] += 1;
    }
    let mut col_ptr = vec![0usize; m + 1];
    for j in 0..m {
        col_ptr[j + 1] = col_ptr[j] + deg[j] as usize;
    }
    let mut fill = col_ptr.clone();
    let mut col_rows = vec![0u32; indices.len()];
    for r in 0..n {
        for &j in &indices[indptr[r]..indptr[r + 1]] {
            col_rows[fill[j as usize]] = r as u32;
            fill[j as usize] += 1;
        }
    }
    (indices, deg, col_ptr, col_rows)
}

/// Computes [`SparseStats`], spending at most `rho_budget` entry visits on ρ.
pub fn sparse_stats(d: &SparseDataset, rho_budget: u64) -> SparseStats {
    let n = d.rows();
    let m = d.cols();
    let x = d.x();
    let indptr = x.indptr();
    let indptr = indptr.raw_storage();
    let (indices, deg, col_ptr, col_rows) = columns(d);
    let omega = (0..n).map(|r| indptr[r + 1] - indptr[r]).max().unwrap_or(0);
    let max_deg = deg.iter().copied().max().unwrap_or(0) as usize;
    let row_feats = |r: usize| &indices[indptr[r]..indptr[r + 1]];
    // Lower bound for every row: its most shared feature (or itself alone).
    let mut best = (0..n)
        .map(|r| {
            row_feats(r)
                .iter()
                .map(|&j| deg[j as usize] as usize)
                .max()
                .unwrap_or(1)
        })
        .max()
        .unwrap_or(0);
    let upper = |r: usize| -> (usize, u64) {
        let f = row_feats(r);
        let work: u64 = f.iter().map(|&j| u64::from(deg[j as usize])).sum();
        let ub = if f.is_empty() {
            1
        } else {
            (work as usize + 1).saturating_sub(f.len())
        };
        (ub.min(n), work)
    };
    let mut order: Vec<(usize, u64, u32)> = (0..n)
        .map(|r| {
            let (ub, w) = upper(r);
            (ub, w, r as u32)
        })
        .collect();
    order.par_sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));

    let mut spent = 0u64;
    let mut examined = 0usize;
    let mut exact = true;
    let mut upper_left = 0usize;
    const BATCH: usize = 64;
    let mut pos = 0;
    while pos < order.len() {
        if order[pos].0 <= best || best >= n {
            break;
        }
        let end = (pos + BATCH).min(order.len());
        let batch: Vec<_> = order[pos..end]
            .iter()
            .filter(|o| o.0 > best)
            .copied()
            .collect();
        let work: u64 = batch.iter().map(|o| o.1).sum();
        if spent + work > rho_budget {
            exact = false;
            upper_left = order[pos].0;
            break;
        }
        spent += work;
        examined += batch.len();
        let found = batch
            .par_iter()
            .map_init(
                || (vec![u32::MAX; n], 0u32),
                |(stamp, _), &(_, _, r)| {
                    let mut count = 0usize;
                    for &j in row_feats(r as usize) {
                        let j = j as usize;
                        for &e in &col_rows[col_ptr[j]..col_ptr[j + 1]] {
                            let s = &mut stamp[e as usize];
                            if *s != r {
                                *s = r;
                                count += 1;
                            }
                        }
                    }
                    count.max(1)
                },
            )
            .max()
            .unwrap_or(0);
        best = best.max(found);
        pos = end;
    }
    let nf = n.max(1) as f64;
    let rows_positive = d.y().iter().filter(|&&y| y > 0.0).count();
    SparseStats {
        rows: n,
        columns: m,
        nnz: d.nnz(),
        density: d.nnz() as f64 / (n as f64 * m.max(1) as f64),
        positive_fraction: rows_positive as f64 / nf,
        mean_nnz_per_row: d.nnz() as f64 / nf,
        omega,
        delta: max_deg as f64 / nf,
        rho: best as f64 / nf,
        rho_exact: exact,
        rho_upper: if exact {
            best as f64 / nf
        } else {
            upper_left.max(best) as f64 / nf
        },
        rho_rows_examined: examined,
    }
}

/// Statistics of a ratings data set. For matrix factorization a rating touches one user
/// vector and one item vector, so Ω = 2, Δ is the largest user or item degree over the
/// number of ratings, and ρ = max over ratings of (deg(u) + deg(i) − #ratings of the
/// same pair) / |E|, computed exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RatingsStats {
    /// Number of ratings.
    pub ratings: usize,
    /// Distinct users.
    pub users: usize,
    /// Distinct items.
    pub items: usize,
    /// Smallest rating.
    pub min_rating: f32,
    /// Largest rating.
    pub max_rating: f32,
    /// Mean rating.
    pub mean_rating: f64,
    /// ratings / (users · items).
    pub density: f64,
    /// Ratings of the same (user, item) pair beyond the first.
    pub duplicate_pairs: usize,
    /// Ω = 2 (a user vector and an item vector).
    pub omega: usize,
    /// Δ.
    pub delta: f64,
    /// ρ (exact).
    pub rho: f64,
    /// Always true for ratings.
    pub rho_exact: bool,
}

/// Computes [`RatingsStats`].
pub fn ratings_stats(d: &RatingsDataset) -> RatingsStats {
    let n = d.len();
    let mut du = vec![0u32; d.n_users()];
    let mut di = vec![0u32; d.n_items()];
    for k in 0..n {
        du[d.users[k] as usize] += 1;
        di[d.items[k] as usize] += 1;
    }
    let mut keys: Vec<u64> = (0..n)
        .map(|k| (u64::from(d.users[k]) << 32) | u64::from(d.items[k]))
        .collect();
    keys.par_sort_unstable();
    let mut best = 0usize;
    let mut dups = 0usize;
    for run in keys.chunk_by(|a, b| a == b) {
        let (u, i) = ((run[0] >> 32) as usize, (run[0] & 0xffff_ffff) as usize);
        dups += run.len() - 1;
        best = best.max(du[u] as usize + di[i] as usize - run.len());
    }
    let (lo, hi) = d
        .ratings
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
    let max_deg = du.iter().chain(&di).copied().max().unwrap_or(0) as f64;
    let nf = n.max(1) as f64;
    RatingsStats {
        ratings: n,
        users: d.n_users(),
        items: d.n_items(),
        min_rating: lo,
        max_rating: hi,
        mean_rating: d.ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / nf,
        density: n as f64 / (d.n_users() as f64 * d.n_items() as f64).max(1.0),
        duplicate_pairs: dups,
        omega: 2,
        delta: max_deg / nf,
        rho: best as f64 / nf,
        rho_exact: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LibsvmOptions, libsvm};

    /// Brute force ρ straight from the definition.
    fn brute_rho(d: &SparseDataset) -> usize {
        (0..d.rows())
            .map(|a| {
                (0..d.rows())
                    .filter(|&b| a == b || d.row(a).0.iter().any(|j| d.row(b).0.contains(j)))
                    .count()
            })
            .max()
            .unwrap()
    }

    #[test]
    fn stats_match_the_definitions() {
        let text = "+1 1:1 2:1\n-1 2:1\n-1 3:1\n+1 4:1 5:1 6:1\n-1 6:1\n-1\n";
        let d = libsvm::parse(text.as_bytes(), &LibsvmOptions::default()).unwrap();
        let s = sparse_stats(&d, u64::MAX);
        assert_eq!(s.omega, 3);
        assert_eq!(s.delta, 2.0 / 6.0);
        assert_eq!(s.rho, brute_rho(&d) as f64 / 6.0);
        assert!(s.rho_exact);
        assert_eq!(s.positive_fraction, 2.0 / 6.0);
    }

    #[test]
    fn tiny_budget_gives_bounds() {
        let mut text = String::new();
        for r in 0..300 {
            text.push_str(&format!(
                "+1 {}:1 {}:1 {}:1\n",
                r % 7 + 1,
                r % 11 + 10,
                r % 13 + 30
            ));
        }
        let d = libsvm::parse(text.as_bytes(), &LibsvmOptions::default()).unwrap();
        let exact = sparse_stats(&d, u64::MAX);
        assert_eq!(exact.rho, brute_rho(&d) as f64 / 300.0);
        let rough = sparse_stats(&d, 10);
        assert!(!rough.rho_exact);
        assert!(rough.rho <= exact.rho && exact.rho <= rough.rho_upper);
    }

    #[test]
    fn ratings_rho_counts_shared_users_and_items() {
        let text = "1 1 5\n1 2 4\n2 1 3\n3 3 1\n1 1 2\n";
        let d = crate::data::ratings::parse(text.as_bytes(), &Default::default()).unwrap();
        let s = ratings_stats(&d);
        // Rating (1,1) overlaps (1,2), (2,1) and its duplicate: 4 of 5.
        assert_eq!(s.rho, 4.0 / 5.0);
        assert_eq!(s.duplicate_pairs, 1);
        assert_eq!(s.delta, 3.0 / 5.0);
    }
}
