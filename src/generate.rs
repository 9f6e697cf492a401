//! Seeded synthetic data for benchmarks at any scale.
//!
//! * [`SparseGenConfig`]: classification rows whose feature frequencies follow a power
//!   law (feature of popularity rank k drawn with probability ∝ 1/k^a), like the
//!   document frequencies of words in text. Each row holds `nnz_per_row` distinct
//!   features with positive tf-idf-like values, scaled to unit L2 norm as RCV1's rows
//!   are. Popularity ranks are mapped to feature ids through a seeded permutation, so
//!   hot features are scattered over the index range as in real data. Labels are the
//!   sign of a hidden weight vector (standard normal entries) times the row, each
//!   flipped with probability `noise`. Defaults are shaped like RCV1: 47,236 features,
//!   75 non-zeros per row, exponent 0.6 (the most frequent feature is in about 30% of
//!   the rows).
//! * [`RatingsGenConfig`]: low-rank ratings r = p_u·q_i + N(0, noise²) with p_u, q_i
//!   drawn from N(0, 1/√rank) per entry, each (user, item) pair present with probability
//!   `density`, like the Hogwild! paper's synthetic "Jumbo" matrix.
//!
//! Rows (and users) are generated in blocks, each from its own RNG seeded by
//! (seed, block), so the output depends on the seed only, not on the thread count.

use std::io::Write;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Binomial, Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows or users generated per parallel block.
const BLOCK: usize = 2048;

fn block_rng(seed: u64, stream: u64, block: u64) -> Xoshiro256PlusPlus {
    // SplitMix-style mixing so neighbouring blocks get unrelated streams.
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ block.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Xoshiro256PlusPlus::seed_from_u64(z ^ (z >> 31))
}

/// Parameters of synthetic sparse classification data.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseGenConfig {
    /// Number of rows.
    pub rows: usize,
    /// Number of features.
    pub features: usize,
    /// Distinct non-zeros in every row.
    pub nnz_per_row: usize,
    /// Power-law exponent a of feature popularity (probability ∝ 1/rank^a); 0 is uniform.
    pub exponent: f64,
    /// Probability that a label is flipped.
    pub noise: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for SparseGenConfig {
    fn default() -> Self {
        SparseGenConfig {
            rows: 100_000,
            features: 47_236,
            nnz_per_row: 75,
            exponent: 0.6,
            noise: 0.05,
            seed: 1,
        }
    }
}

impl SparseGenConfig {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first parameter out of range.
    pub fn check(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(Error::config("rows", "must be at least 1"));
        }
        if self.features == 0 || self.features > u32::MAX as usize {
            return Err(Error::config(
                "features",
                "must be between 1 and 4294967295",
            ));
        }
        if self.nnz_per_row == 0 {
            return Err(Error::config(
                "nnz_per_row",
                "must be at least 1 (a row without features has a random label)",
            ));
        }
        if self.nnz_per_row > self.features {
            return Err(Error::config(
                "nnz_per_row",
                format!(
                    "{} is more than the {} features",
                    self.nnz_per_row, self.features
                ),
            ));
        }
        if !(self.exponent.is_finite() && self.exponent >= 0.0 && self.exponent <= 10.0) {
            return Err(Error::config("exponent", "must be a number in [0, 10]"));
        }
        if !(0.0..=0.5).contains(&self.noise) {
            return Err(Error::config("noise", "must be a probability in [0, 0.5]"));
        }
        Ok(())
    }

    /// Writes the data as LIBSVM text (1-based indices, `+1`/`-1` labels). `progress`
    /// is called with the number of rows written so far.
    ///
    /// # Errors
    /// [`Error::Config`] for bad parameters; the writer's I/O error otherwise.
    pub fn write<W: Write>(
        &self,
        mut w: W,
        mut progress: impl FnMut(usize),
    ) -> Result<std::io::Result<()>> {
        self.check()?;
        let window = rayon::current_num_threads() * 4;
        let text = (self.nnz_per_row as u64 * 12 + 4) * 2 + 8 * self.nnz_per_row as u64;
        crate::memory::check(
            format!(
                "generating {} features with {} non-zeros per row",
                self.features, self.nnz_per_row
            ),
            crate::memory::bytes_of(&[self.features as u64, 28]).saturating_add(
                crate::memory::bytes_of(&[(window * BLOCK.min(self.rows)) as u64, text]),
            ),
            "the planted model and the rows in flight are kept in memory: lower `features` or `nnz_per_row`",
        )?;
        let mut rng = block_rng(self.seed, 0, u64::MAX);
        let normal = Normal::new(0.0f32, 1.0).expect("valid normal");
        let weights: Vec<f32> = (0..self.features)
            .map(|_| normal.sample(&mut rng))
            .collect();
        let mut ids: Vec<u32> = (0..self.features as u32).collect();
        ids.shuffle(&mut rng);
        let popularity: Vec<f64> = (1..=self.features)
            .map(|k| (k as f64).powf(-self.exponent))
            .collect();
        let alias = WeightedAliasIndex::new(popularity)
            .map_err(|e| Error::config("exponent", e.to_string()))?;

        let blocks = self.rows.div_ceil(BLOCK);
        // Generate a bounded window of blocks in parallel, then write them in order.
        let mut done = 0usize;
        for first in (0..blocks).step_by(window) {
            let texts: Vec<Vec<u8>> = (first..(first + window).min(blocks))
                .into_par_iter()
                .map(|b| self.block_text(b, &weights, &ids, &alias))
                .collect();
            for t in texts {
                if let Err(e) = w.write_all(&t) {
                    return Ok(Err(e));
                }
            }
            done = ((first + window) * BLOCK).min(self.rows);
            progress(done);
        }
        debug_assert_eq!(done, self.rows);
        Ok(w.flush())
    }

    fn block_text(
        &self,
        block: usize,
        weights: &[f32],
        ids: &[u32],
        alias: &WeightedAliasIndex<f64>,
    ) -> Vec<u8> {
        let mut rng = block_rng(self.seed, 1, block as u64);
        let rows = BLOCK.min(self.rows - block * BLOCK);
        let k = self.nnz_per_row;
        let mut out = Vec::with_capacity(rows * (k * 12 + 4));
        let mut feats: Vec<u32> = Vec::with_capacity(k);
        let mut vals: Vec<f32> = Vec::with_capacity(k);
        let mut ib = itoa::Buffer::new();
        let mut fb = ryu::Buffer::new();
        for _ in 0..rows {
            feats.clear();
            let mut draws = 0usize;
            while feats.len() < k {
                let f = if draws < 64 * k + 64 {
                    ids[alias.sample(&mut rng)]
                } else {
                    // Heavy-tailed and nearly full rows: finish uniformly.
                    rng.random_range(0..self.features as u32)
                };
                draws += 1;
                if let Err(pos) = feats.binary_search(&f) {
                    feats.insert(pos, f);
                }
            }
            vals.clear();
            vals.extend((0..k).map(|_| rng.random_range(0.1f32..1.0)));
            let norm = vals
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            // Four significant digits keep files small; the label uses the written values.
            for v in &mut vals {
                *v = round_sig(*v / norm);
            }
            let margin: f32 = feats
                .iter()
                .zip(&vals)
                .map(|(&f, &v)| weights[f as usize] * v)
                .sum();
            let mut positive = margin >= 0.0;
            if rng.random_bool(self.noise) {
                positive = !positive;
            }
            out.extend_from_slice(if positive { b"+1" } else { b"-1" });
            for (&f, &v) in feats.iter().zip(&vals) {
                out.push(b' ');
                out.extend_from_slice(ib.format(f + 1).as_bytes());
                out.push(b':');
                out.extend_from_slice(fb.format_finite(v).as_bytes());
            }
            out.push(b'\n');
        }
        out
    }
}

fn round_sig(v: f32) -> f32 {
    if v == 0.0 {
        return 0.0;
    }
    let scale = 10f32.powi(3 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// Parameters of synthetic low-rank ratings.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingsGenConfig {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Rank of the hidden factors.
    pub rank: usize,
    /// Probability that a (user, item) pair is rated.
    pub density: f64,
    /// Standard deviation of the Gaussian noise added to each rating.
    pub noise: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for RatingsGenConfig {
    fn default() -> Self {
        RatingsGenConfig {
            users: 10_000,
            items: 5_000,
            rank: 10,
            density: 0.01,
            noise: 0.1,
            seed: 1,
        }
    }
}

impl RatingsGenConfig {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first parameter out of range.
    pub fn check(&self) -> Result<()> {
        if self.users == 0 || self.users > u32::MAX as usize {
            return Err(Error::config("users", "must be between 1 and 4294967295"));
        }
        if self.items == 0 || self.items > u32::MAX as usize {
            return Err(Error::config("items", "must be between 1 and 4294967295"));
        }
        if self.rank == 0 || self.rank > 10_000 {
            return Err(Error::config("rank", "must be between 1 and 10000"));
        }
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(Error::config("density", "must be in (0, 1]"));
        }
        if !(0.0..=1e6).contains(&self.noise) {
            return Err(Error::config(
                "noise",
                format!(
                    "must be a standard deviation between 0 and 1e6, got {}",
                    self.noise
                ),
            ));
        }
        if (self.users as f64) * (self.items as f64) * self.density < 1.0 {
            return Err(Error::config(
                "density",
                format!(
                    "{} users x {} items x {} is less than one expected rating",
                    self.users, self.items, self.density
                ),
            ));
        }
        if self.items.saturating_mul(self.rank) > 1 << 31 {
            return Err(Error::config(
                "items",
                "items × rank must stay below 2^31 (the item factors are kept in memory)",
            ));
        }
        Ok(())
    }

    /// Writes the ratings as tab-separated `user item rating` lines, 1-based ids.
    /// `progress` is called with the number of users written so far.
    ///
    /// # Errors
    /// [`Error::Config`] for bad parameters; the writer's I/O error otherwise.
    pub fn write<W: Write>(
        &self,
        mut w: W,
        mut progress: impl FnMut(usize),
    ) -> Result<std::io::Result<()>> {
        self.check()?;
        let window = rayon::current_num_threads() * 4;
        // Per user in flight: about items × density ratings of ~24 bytes of text, their
        // sampled indices, and the user's factors.
        let per_user =
            (self.items as f64 * self.density * 1.2 + 64.0) * 32.0 + 4.0 * self.rank as f64;
        crate::memory::check(
            format!(
                "generating ratings for {} items (rank {}, density {})",
                self.items, self.rank, self.density
            ),
            crate::memory::bytes_of(&[self.items as u64, self.rank as u64, 4]).saturating_add(
                crate::memory::bytes_of(&[
                    (window * BLOCK.min(self.users)) as u64,
                    per_user as u64,
                ]),
            ),
            "the item factors and the users in flight are kept in memory: lower `items`, `rank` or `density`",
        )?;
        let sd = (1.0 / (self.rank as f64).sqrt()) as f32;
        let factor = Normal::new(0.0f32, sd.sqrt()).expect("valid normal");
        let mut rng = block_rng(self.seed, 2, u64::MAX);
        let q: Vec<f32> = (0..self.items * self.rank)
            .map(|_| factor.sample(&mut rng))
            .collect();
        let blocks = self.users.div_ceil(BLOCK);
        for first in (0..blocks).step_by(window) {
            let texts: Vec<Vec<u8>> = (first..(first + window).min(blocks))
                .into_par_iter()
                .map(|b| self.block_text(b, &q, factor))
                .collect();
            for t in texts {
                if let Err(e) = w.write_all(&t) {
                    return Ok(Err(e));
                }
            }
            progress(((first + window) * BLOCK).min(self.users));
        }
        Ok(w.flush())
    }

    fn block_text(&self, block: usize, q: &[f32], factor: Normal<f32>) -> Vec<u8> {
        let mut rng = block_rng(self.seed, 3, block as u64);
        let noise = Normal::new(0.0f32, self.noise as f32).expect("valid normal");
        let binom = Binomial::new(self.items as u64, self.density).expect("checked density");
        let users = BLOCK.min(self.users - block * BLOCK);
        let mut out = Vec::new();
        let mut p = vec![0f32; self.rank];
        let mut ib = itoa::Buffer::new();
        let mut fb = ryu::Buffer::new();
        for u in 0..users {
            p.iter_mut().for_each(|x| *x = factor.sample(&mut rng));
            let k = binom.sample(&mut rng) as usize;
            let mut items = rand::seq::index::sample(&mut rng, self.items, k).into_vec();
            items.sort_unstable();
            let user = block * BLOCK + u + 1;
            for i in items {
                let qi = &q[i * self.rank..(i + 1) * self.rank];
                let r: f32 =
                    p.iter().zip(qi).map(|(a, b)| a * b).sum::<f32>() + noise.sample(&mut rng);
                out.extend_from_slice(ib.format(user).as_bytes());
                out.push(b'\t');
                out.extend_from_slice(ib.format(i + 1).as_bytes());
                out.push(b'\t');
                out.extend_from_slice(fb.format_finite((r * 1e4).round() / 1e4).as_bytes());
                out.push(b'\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LibsvmOptions, libsvm, ratings, stats};

    #[test]
    fn sparse_is_seeded_and_power_law() {
        let cfg = SparseGenConfig {
            rows: 5000,
            features: 2000,
            nnz_per_row: 20,
            ..Default::default()
        };
        let mut a = Vec::new();
        cfg.write(&mut a, |_| {}).unwrap().unwrap();
        let mut b = Vec::new();
        cfg.write(&mut b, |_| {}).unwrap().unwrap();
        assert_eq!(a, b);
        let d = libsvm::parse(&a, &LibsvmOptions::default()).unwrap();
        assert_eq!(d.rows(), 5000);
        assert_eq!(d.nnz(), 5000 * 20);
        let s = stats::sparse_stats(&d, 0);
        // The most popular feature is far more frequent than uniform (20/2000 = 1%).
        assert!(s.delta > 0.05, "delta {}", s.delta);
        assert!(s.positive_fraction > 0.2 && s.positive_fraction < 0.8);
        let other = SparseGenConfig { seed: 2, ..cfg };
        let mut c = Vec::new();
        other.write(&mut c, |_| {}).unwrap().unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn ratings_have_the_requested_density() {
        let cfg = RatingsGenConfig {
            users: 3000,
            items: 500,
            rank: 5,
            density: 0.05,
            ..Default::default()
        };
        let mut a = Vec::new();
        cfg.write(&mut a, |_| {}).unwrap().unwrap();
        let d = ratings::parse(&a, &Default::default()).unwrap();
        let expected = 3000.0 * 500.0 * 0.05;
        assert!(
            (d.len() as f64 - expected).abs() < expected * 0.05,
            "{}",
            d.len()
        );
        assert_eq!(stats::ratings_stats(&d).duplicate_pairs, 0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let cfg = SparseGenConfig {
            nnz_per_row: 10,
            features: 5,
            ..Default::default()
        };
        assert!(cfg.write(Vec::new(), |_| {}).is_err());
        let cfg = RatingsGenConfig {
            density: 0.0,
            ..Default::default()
        };
        assert!(cfg.write(Vec::new(), |_| {}).is_err());
    }
}
