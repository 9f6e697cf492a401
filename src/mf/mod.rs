//! Matrix factorization: biased MF trained by SGD, AdaGrad (vectorized kernels) or any
//! other optimizer of [`crate::optim`] (per coordinate) under the sequential,
//! Hogwild!, locked and block-scheduled (FPSG) schemes.
//!
//! Model (ALGORITHMS.md §9.1): r̂ = μ + b_u + b_i + p_u·q_i, loss Σ (r − r̂)² + λ(‖p_u‖² +
//! ‖q_i‖² + b_u² + b_i²). Training works on standardized ratings (r − μ)/σ, with μ and σ
//! the mean and standard deviation of the training ratings, and the model multiplies
//! back: the same learning rate, L2 strength and initial scale then fit ratings on
//! 1–5, 0.5–4 or −10–10 (tested). Predictions are clipped to the training range.
//!
//! L2 ([`MfL2Form`]): `plain` applies λ to both rows at every rating (Koren's form, the
//! default); `degree` is Hogwild!'s separable form (§3.2): a user with d_u ratings gets
//! λ·d̄/d_u per rating, d̄ the mean user degree (items alike), so that a user of average
//! degree is regularized as in the plain form while the total per row is the same for
//! every row.
//!
//! Schemes: `sequential` (one thread, the reference); `hogwild` (threads on shared
//! atomic factor rows, lock-free, each reading a rating's two rows, updating a private
//! copy with the vectorized kernel and storing them back; concurrent updates of a row
//! may be lost, by design); `locked` (one global lock around every rating's update);
//! `block` (FPSG, see [`blocks`](self) below: conflict-free, no parameter locks). With
//! one thread, `hogwild` follows the same order as `sequential` and gives the same
//! model bit for bit.

mod blocks;
pub mod kernel;
mod model;
mod store;

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

pub use kernel::{Entry, Rule};
pub use model::{MfMetrics, MfModel, Recommendation};

use crate::data::RatingsDataset;
use crate::engine::{MfEngine, MfScheme};
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerKind};
use crate::schedule::Schedule;
use kernel::{AUX, G_BIAS, G_FACTORS, LAMBDA};
use store::Table;

/// The update rule of matrix factorization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MfOptimizer {
    /// Plain SGD (vectorized kernel).
    Sgd,
    /// AdaGrad with one accumulator per factor row, as LIBMF (vectorized kernel).
    AdaGrad,
    /// Any other per-coordinate optimizer of [`crate::optim`] (momentum, NAG, Adadelta,
    /// RMSprop, Adam, AdaMax, Nadam, AdamW, FTRL), applied to every factor and bias
    /// with its own state (a scalar loop over the factors).
    Other(OptimizerKind),
}

impl MfOptimizer {
    /// The optimizer called `name` (`sgd` and `adagrad` get the vectorized kernels).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "sgd" => MfOptimizer::Sgd,
            "adagrad" => MfOptimizer::AdaGrad,
            other => MfOptimizer::Other(OptimizerKind::from_name(other)?),
        })
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            MfOptimizer::Sgd => "sgd",
            MfOptimizer::AdaGrad => "adagrad",
            MfOptimizer::Other(k) => k.name(),
        }
    }

    /// The default learning rate, in standardized units (measured on MovieLens u1:
    /// see the README).
    pub fn default_lr(&self) -> f32 {
        match self {
            MfOptimizer::Sgd => DEFAULT_LR_SGD,
            MfOptimizer::AdaGrad => DEFAULT_LR_ADAGRAD,
            MfOptimizer::Other(k) => match k {
                OptimizerKind::Momentum(_) | OptimizerKind::Nag(_) => 0.003,
                OptimizerKind::Adadelta(_) => 1.0,
                OptimizerKind::RmsProp(_) => 0.003,
                OptimizerKind::AdaMax(_) => 0.01,
                OptimizerKind::Ftrl(_) => 0.1,
                OptimizerKind::AdaGrad(_) => DEFAULT_LR_ADAGRAD,
                OptimizerKind::Sgd(_) => DEFAULT_LR_SGD,
                OptimizerKind::Adam(_) | OptimizerKind::NAdam(_) | OptimizerKind::AdamW(_) => 0.001,
            },
        }
    }
}

/// How L2 is applied per rating (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfL2Form {
    /// λ on both rows at every rating.
    #[default]
    Plain,
    /// Hogwild!'s degree-scaled λ·d̄/d.
    Degree,
}

/// Default number of factors.
pub const DEFAULT_RANK: usize = 32;
/// Default AdaGrad learning rate (standardized units).
pub const DEFAULT_LR_ADAGRAD: f32 = 0.05;
/// Default SGD learning rate (standardized units).
pub const DEFAULT_LR_SGD: f32 = 0.03;
/// Default L2 strength (standardized units).
pub const DEFAULT_L2: f32 = 0.07;
/// Largest magnitude of a trained parameter (standardized units, where trained values
/// are of order 1): a model beyond it has diverged, and a model file beyond it is refused.
pub const MAX_PARAM: f32 = 1e6;

/// Most optimizer-state tables any optimizer keeps beside the factors (for the memory
/// estimate).
const STATE_SLOTS_MAX: u64 = 3;
/// Most blocks per side of the FPSG grid (the scheduler scans the blocks left under
/// its lock, so the grid is kept small).
pub const MAX_BLOCKS: usize = 256;
/// Ratings per chunk handed out to threads (hogwild, locked, sequential).
const CHUNK: usize = 256;

/// Matrix-factorization settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MfConfig {
    /// Factors per user and item.
    pub rank: usize,
    /// Update rule.
    #[serde(skip)]
    pub optimizer: MfOptimizer,
    /// Learning rate; `None` for the rule's default.
    pub lr: Option<f32>,
    /// Learning-rate schedule; `None` for constant.
    pub schedule: Option<Schedule>,
    /// Epochs.
    pub epochs: usize,
    /// L2 strength λ; `None` for [`DEFAULT_L2`].
    pub l2: Option<f32>,
    /// L2 form.
    pub l2_form: MfL2Form,
    /// Standard deviation of the initial factors (standardized units).
    pub init_std: f32,
    /// Row- and column-blocks of the FPSG grid; 0 chooses (see [`MfConfig::grid_for`]).
    pub blocks: usize,
    /// Stop after this many epochs without a better validation RMSE (keeps the best).
    pub early_stop: Option<usize>,
    /// Seed of the initialization and of every ordering.
    pub seed: u64,
    /// Scheme, threads and pinning.
    pub engine: MfEngine,
}

impl Default for MfConfig {
    fn default() -> Self {
        MfConfig {
            rank: DEFAULT_RANK,
            optimizer: MfOptimizer::AdaGrad,
            lr: None,
            schedule: None,
            // SPEC.md's `--epochs` default, the same for every model.
            epochs: 10,
            l2: None,
            l2_form: MfL2Form::Plain,
            init_std: 0.01,
            blocks: 0,
            early_stop: None,
            seed: 42,
            engine: MfEngine::default(),
        }
    }
}

impl MfConfig {
    /// The learning rate used.
    pub fn effective_lr(&self) -> f32 {
        self.lr.unwrap_or(self.optimizer.default_lr())
    }

    /// The L2 strength used.
    pub fn effective_l2(&self) -> f32 {
        self.l2.unwrap_or(DEFAULT_L2)
    }

    /// Blocks per side of the FPSG grid for `threads` threads: the configured number,
    /// else max(2·threads + 1, 8); never fewer than threads + 1 (FPSG's minimum, so a
    /// free block always exists for a thread that finishes).
    pub fn grid_for(&self, threads: usize) -> usize {
        match self.blocks {
            0 => (2 * threads + 1).clamp(8, MAX_BLOCKS),
            b => b.max(threads + 1),
        }
    }

    /// The name of the rule.
    pub fn optimizer_name(&self) -> &'static str {
        self.optimizer.name()
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad one.
    pub fn check(&self) -> Result<()> {
        if self.rank == 0 || self.rank > 4096 {
            return Err(Error::config(
                "rank",
                format!("must be between 1 and 4096, got {}", self.rank),
            ));
        }
        crate::error::check_training(self.lr, self.epochs, self.l2, self.early_stop)?;
        crate::error::check_non_negative("init_std", self.init_std)?;
        self.engine.check()?;
        if let MfOptimizer::Other(k) = &self.optimizer {
            k.check()?;
        }
        let threads = self.engine.effective_threads();
        if self.engine.scheme == MfScheme::Block && self.blocks != 0 && self.blocks <= threads {
            return Err(Error::config(
                "blocks",
                format!(
                    "{} per side is too few for {threads} threads: block scheduling needs at least threads + 1 = {}",
                    self.blocks,
                    threads + 1
                ),
            ));
        }
        if self.blocks > MAX_BLOCKS {
            return Err(Error::config(
                "blocks",
                format!("at most {MAX_BLOCKS} per side, got {}", self.blocks),
            ));
        }
        if self.engine.scheme == MfScheme::Block && self.engine.effective_threads() >= MAX_BLOCKS {
            return Err(Error::config(
                "threads",
                format!(
                    "the block scheme runs at most {} threads (a grid of at most {MAX_BLOCKS} blocks per side)",
                    MAX_BLOCKS - 1
                ),
            ));
        }
        if let Some(s) = &self.schedule {
            s.check()?;
            if *s == Schedule::Bottou {
                return Err(Error::config(
                    "schedule",
                    "bottou's per-update decay is for linear models; mf takes a per-epoch schedule",
                ));
            }
        }
        Ok(())
    }
}

/// One epoch's figures (the `epoch` event of the JSON report).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MfEpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Training time of this epoch (no evaluation).
    pub seconds: f64,
    /// Learning rate used.
    pub lr: f32,
    /// RMSE of the training ratings, each measured just before its update.
    pub train_rmse: f64,
    /// Validation RMSE after the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_rmse: Option<f64>,
    /// Validation MAE after the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
    /// Ratings trained on.
    pub updates: u64,
    /// Ratings per second of training time.
    pub ratings_per_sec: f64,
    /// What this epoch communicated, across MPI ranks (`ranks`, `comm_bytes`,
    /// `comm_seconds`; the `distributed` feature).
    #[serde(flatten)]
    pub comm: Option<crate::train::CommStats>,
}

/// The end of a run (the `done` event of the JSON report).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MfDoneReport {
    /// Always `mf`.
    pub model: &'static str,
    /// Update rule.
    pub optimizer: &'static str,
    /// Scheme name.
    pub scheme: &'static str,
    /// Threads used.
    pub threads: usize,
    /// More threads than cores (timings then say nothing about scaling).
    pub oversubscribed: bool,
    /// Epochs run.
    pub epochs: usize,
    /// Total training time (no parsing, no evaluation).
    pub train_seconds: f64,
    /// Validation RMSE of the returned model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_rmse: Option<f64>,
    /// Validation MAE of the returned model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the progress callback stopped the run (key present only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_caller: bool,
    /// Epoch whose model is returned.
    pub best_epoch: usize,
    /// Base learning rate.
    pub lr: f32,
    /// L2 strength.
    pub l2: f32,
    /// L2 form.
    pub l2_form: MfL2Form,
    /// Factors.
    pub rank: usize,
    /// Blocks per side of the FPSG grid (block scheme only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// Mean μ and standard deviation σ used to standardize the ratings.
    pub rating_mean: f32,
    /// See `rating_mean`.
    pub rating_scale: f32,
    /// What the run communicated over all epochs, across MPI ranks.
    #[serde(flatten)]
    pub comm: Option<crate::train::CommStats>,
}

/// What [`fit`] reports while it runs.
#[derive(Debug)]
pub enum MfProgress<'a> {
    /// Ratings trained so far in the current epoch (reported every 50 ms or so).
    Ratings {
        /// 0-based epoch.
        epoch: usize,
        /// Ratings done in it.
        done: usize,
    },
    /// An epoch finished.
    Epoch(&'a MfEpochReport),
}

/// A trained model and its history.
#[derive(Debug, Clone)]
pub struct MfOutcome {
    /// The model (the best epoch's under early stopping, else the last).
    pub model: MfModel,
    /// One report per epoch.
    pub epochs: Vec<MfEpochReport>,
    /// The summary.
    pub done: MfDoneReport,
}

/// The four parameter tables.
#[derive(Debug)]
struct Tables {
    uf: Table,
    ua: Table,
    itf: Table,
    ia: Table,
    k: usize,
}

// SAFETY: `rows` hands out the rows of user `u` and item `i` from four distinct tables,
// so the slices never overlap. Exclusivity against other threads is the caller's
// contract of `kernel::pass`, which every use below upholds (one thread; or the global
// lock; or the block scheduler's disjoint row- and column-blocks).
unsafe impl kernel::RowSource for Tables {
    #[inline(always)]
    unsafe fn rows(&self, u: u32, i: u32) -> (&mut [f32], &mut [f32], &mut [f32], &mut [f32]) {
        let (u, i) = (u as usize, i as usize);
        // SAFETY: in range and exclusive by the caller's contract (see above).
        unsafe {
            (
                self.uf.row_mut(u),
                self.ua.row_mut(u),
                self.itf.row_mut(i),
                self.ia.row_mut(i),
            )
        }
    }
}

impl Tables {
    /// Hogwild! pass: every rating's rows are read with relaxed atomic loads into
    /// private buffers, updated with the vectorized kernel, and stored back with
    /// relaxed atomic stores. Races with other threads lose updates (allowed).
    fn shared_pass(&self, entries: &[Entry], lr: f32, rule: Rule, buf: &mut [f32]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.shared_pass_avx2(entries, lr, rule, buf) };
        }
        self.shared_pass_body(entries, lr, rule, buf)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn shared_pass_avx2(&self, entries: &[Entry], lr: f32, rule: Rule, buf: &mut [f32]) -> f64 {
        self.shared_pass_body(entries, lr, rule, buf)
    }

    #[inline(always)]
    fn shared_pass_body(&self, entries: &[Entry], lr: f32, rule: Rule, buf: &mut [f32]) -> f64 {
        let k = self.k;
        let (p, rest) = buf.split_at_mut(k);
        let (q, rest) = rest.split_at_mut(k);
        let (pa, qa) = rest.split_at_mut(AUX);
        let qa = &mut qa[..AUX];
        let mut se = 0.0f64;
        for en in entries {
            let (u, i) = (en.u as usize, en.i as usize);
            self.uf.load_row(u, p);
            self.ua.load_row(u, pa);
            self.itf.load_row(i, q);
            self.ia.load_row(i, qa);
            let e = match rule {
                Rule::Sgd => kernel::sgd_update(p, pa, q, qa, en.r, lr),
                Rule::AdaGrad => kernel::adagrad_update(p, pa, q, qa, en.r, lr),
            };
            self.uf.store_row(u, p);
            self.ua.store_row(u, pa);
            self.itf.store_row(i, q);
            self.ia.store_row(i, qa);
            se += f64::from(e * e);
        }
        se
    }
}

/// One update rule bound to the tables: the exclusive (plain memory) and shared
/// (relaxed atomics, Hogwild!) passes over a run of ratings. `t0` is the global step
/// number of the first rating (optimizers with bias corrections use it).
trait Pass: Sync {
    /// Scratch floats the shared pass needs per thread.
    fn scratch(&self) -> usize;
    /// Trains on `entries` through plain `&mut` rows.
    ///
    /// # Safety
    /// As [`kernel::pass`]: the indices are in range and the rows they name are the
    /// caller's alone for the duration of the call.
    unsafe fn exclusive(&self, entries: &[Entry], lr: f32, t0: u64) -> f64;
    /// Trains on `entries` through relaxed atomic loads and stores (races allowed).
    fn shared(&self, entries: &[Entry], lr: f32, t0: u64, buf: &mut [f32]) -> f64;
}

/// SGD or row-wise AdaGrad with the vectorized kernels.
struct Fast<'a> {
    t: &'a Tables,
    rule: Rule,
}

impl Pass for Fast<'_> {
    fn scratch(&self) -> usize {
        2 * self.t.k + 2 * AUX
    }
    unsafe fn exclusive(&self, entries: &[Entry], lr: f32, _t0: u64) -> f64 {
        // SAFETY: the caller's contract is `kernel::pass`'s.
        unsafe { kernel::pass(self.t, entries, lr, self.rule, true) }
    }
    fn shared(&self, entries: &[Entry], lr: f32, _t0: u64, buf: &mut [f32]) -> f64 {
        self.t.shared_pass(entries, lr, self.rule, buf)
    }
}

/// Optimizer state for [`MfOptimizer::Other`]: `STATE` slots per factor and bias.
#[derive(Debug)]
struct StateTables {
    us: Table,
    is: Table,
}

/// Any per-coordinate optimizer, through [`kernel::generic_update`].
struct Generic<'a, O: Optimizer> {
    t: &'a Tables,
    s: &'a StateTables,
    o: O,
}

impl<O: Optimizer> Pass for Generic<'_, O> {
    fn scratch(&self) -> usize {
        2 * (self.t.k + AUX + (self.t.k + 1) * O::STATE)
    }
    unsafe fn exclusive(&self, entries: &[Entry], lr: f32, t0: u64) -> f64 {
        let mut se = 0.0f64;
        for (j, en) in entries.iter().enumerate() {
            let ctx = self.o.ctx(lr, t0 + j as u64);
            let (u, i) = (en.u as usize, en.i as usize);
            // SAFETY: the caller guarantees the indices are in range and the rows of
            // user u and item i (in all six tables) are its alone; the six rows come
            // from six distinct tables, so they do not overlap.
            let e = unsafe {
                kernel::generic_update(
                    &self.o,
                    &ctx,
                    self.t.uf.row_mut(u),
                    self.t.ua.row_mut(u),
                    self.s.us.row_mut(u),
                    self.t.itf.row_mut(i),
                    self.t.ia.row_mut(i),
                    self.s.is.row_mut(i),
                    en.r,
                )
            };
            se += f64::from(e * e);
        }
        se
    }
    fn shared(&self, entries: &[Entry], lr: f32, t0: u64, buf: &mut [f32]) -> f64 {
        let (k, w) = (self.t.k, (self.t.k + 1) * O::STATE);
        let (p, rest) = buf.split_at_mut(k);
        let (q, rest) = rest.split_at_mut(k);
        let (pa, rest) = rest.split_at_mut(AUX);
        let (qa, rest) = rest.split_at_mut(AUX);
        let (ps, rest) = rest.split_at_mut(w);
        let qs = &mut rest[..w];
        let mut se = 0.0f64;
        for (j, en) in entries.iter().enumerate() {
            let ctx = self.o.ctx(lr, t0 + j as u64);
            let (u, i) = (en.u as usize, en.i as usize);
            self.t.uf.load_row(u, p);
            self.t.ua.load_row(u, pa);
            self.s.us.load_row(u, ps);
            self.t.itf.load_row(i, q);
            self.t.ia.load_row(i, qa);
            self.s.is.load_row(i, qs);
            let e = kernel::generic_update(&self.o, &ctx, p, pa, ps, q, qa, qs, en.r);
            self.t.uf.store_row(u, p);
            self.t.ua.store_row(u, pa);
            self.s.us.store_row(u, ps);
            self.t.itf.store_row(i, q);
            self.t.ia.store_row(i, qa);
            self.s.is.store_row(i, qs);
            se += f64::from(e * e);
        }
        se
    }
}

/// Trains biased MF on `train`, evaluating on `valid` (matched by original ids) after
/// each epoch when given; `progress` receives the ratings done during an epoch and
/// every epoch's report.
///
/// # Errors
/// [`Error::Config`] for bad settings, empty data, or early stopping without validation
/// data; [`Error::Diverged`] when the training error becomes NaN or infinite.
///
/// `progress` may return `()` or a [`std::ops::ControlFlow`]: `ControlFlow::Break(())`
/// stops the run at the end of the current epoch (`done.stopped_by_caller`).
pub fn fit<R: crate::Flow>(
    train: &RatingsDataset,
    valid: Option<&RatingsDataset>,
    cfg: &MfConfig,
    mut progress: impl FnMut(MfProgress<'_>) -> R,
) -> Result<MfOutcome> {
    let stop = std::cell::Cell::new(false);
    let mut report = |p: MfProgress<'_>| {
        if progress(p).is_break() {
            stop.set(true);
        }
    };
    fit_dyn(train, valid, cfg, &mut report, &stop, None)
}

/// Matrix factorization across the ranks of an MPI job (the `distributed` module),
/// DSGD's strata (Gemulla et al. 2011): every rank holds the ratings and the same
/// initial factors; users and items fall in `ranks` blocks each, and an epoch is
/// `ranks` strata: in stratum s, rank r trains on the ratings of user block r and item
/// block (r + s) mod ranks, so no two ranks touch the same user or item rows, and the
/// changed rows are exchanged between strata.
pub(crate) trait Strata: Sync {
    /// This rank and the number of ranks.
    fn place(&self) -> (usize, usize);
    /// Sums `v` over the ranks, in place.
    fn sum(&self, v: &mut [f32]);
    /// Sums `v` over the ranks, in place.
    fn sum_f64(&self, v: &mut [f64]);
    /// What was communicated since the last call (reset by the call).
    fn stats(&self) -> crate::train::CommStats;
}

/// [`fit`] across ranks with DSGD's strata (see [`Strata`]); one thread per rank.
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(crate) fn fit_strata(
    train: &RatingsDataset,
    valid: Option<&RatingsDataset>,
    cfg: &MfConfig,
    strata: &dyn Strata,
    progress: &mut dyn FnMut(MfProgress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<MfOutcome> {
    if !matches!(cfg.optimizer, MfOptimizer::Sgd | MfOptimizer::AdaGrad) {
        return Err(Error::config(
            "optimizer",
            "matrix factorization across ranks runs sgd or adagrad",
        ));
    }
    if cfg.early_stop.is_some() {
        return Err(Error::config("early_stop", "is not supported across ranks"));
    }
    fit_dyn(train, valid, cfg, progress, stop, Some(strata))
}

/// The body of [`fit`], not generic over the caller's callback.
#[inline(never)]
fn fit_dyn(
    train: &RatingsDataset,
    valid: Option<&RatingsDataset>,
    cfg: &MfConfig,
    progress: &mut dyn FnMut(MfProgress<'_>),
    stop: &std::cell::Cell<bool>,
    strata: Option<&dyn Strata>,
) -> Result<MfOutcome> {
    check_inputs(train, valid, cfg)?;
    let (n, k) = (train.len(), cfg.rank);
    let (nu, ni) = (train.n_users(), train.n_items());
    let (mean, scale, min_rating, max_rating) = standardization(&train.ratings);

    let (entries, t) = init_tables(train, cfg, mean, scale)?;
    let l2 = cfg.effective_l2();

    // Across ranks: one thread per rank, on the calling thread (it exchanges).
    let threads = if strata.is_some() {
        1
    } else {
        cfg.engine.effective_threads()
    };
    let scheme = if strata.is_some() {
        MfScheme::Sequential
    } else {
        cfg.engine.scheme
    };
    let pin = cfg.engine.pin && !cfg.engine.oversubscribed() && threads > 1;
    let nb = cfg.grid_for(threads);
    let grid =
        (scheme == MfScheme::Block).then(|| blocks::Grid::new(&entries, nu, ni, nb, cfg.seed));
    let chunks = n.div_ceil(CHUNK);
    let order: Vec<u32> = (0..chunks as u32).collect();

    let (rated_offsets, rated_items) = rated_lists(train);
    let meta = serde_json::json!({
        "optimizer": cfg.optimizer_name(),
        "scheme": scheme.name(),
        "rank": k,
        "l2": l2,
        "l2_form": cfg.l2_form,
        "lr": cfg.effective_lr(),
        "epochs": cfg.epochs,
        "train_ratings": n,
    });
    let stats = (mean, scale, min_rating, max_rating);
    let snapshot = |t: &Tables| params_model(t, k, stats);
    let valid_map = valid.map(|v| model::Resolved::new(v, &train.user_ids, &train.item_ids));

    let states = state_tables(cfg, nu, ni);
    let pass = make_pass(cfg, &t, states.as_ref());
    let base_lr = cfg.effective_lr();
    let plan = crate::driver::Plan {
        epochs: cfg.epochs,
        early_stop: cfg.early_stop,
        schedule: cfg.schedule.unwrap_or(Schedule::Constant),
        base_lr,
        tol: None,
    };
    let task = Mf {
        pass: pass.as_ref(),
        tables: &t,
        snapshot: &snapshot,
        entries: &entries,
        grid: grid.as_ref(),
        scheme,
        threads,
        seed: cfg.seed,
        order: Mutex::new(order),
        lock: Mutex::new(()),
        done: AtomicUsize::new(0),
        valid: valid_map.as_ref(),
        scale,
        l2: cfg.effective_l2(),
        strata: strata.map(|x| (x, my_strata(&entries, x.place()))),
    };
    let place = crate::driver::Placement {
        inline: scheme == MfScheme::Sequential || threads == 1,
        pin,
    };
    let (driven, reports) =
        crate::driver::run_task(&task, &plan, stop, place, &mut |ev| match ev {
            crate::driver::Event::Done { epoch, done } => {
                progress(MfProgress::Ratings { epoch, done })
            }
            crate::driver::Event::Epoch(rep) => progress(MfProgress::Epoch(rep)),
        })?;
    let last = driven.best.is_none().then(|| snapshot(&t));
    let summary = Summary {
        strata,
        scheme,
        threads,
        nb,
        mean,
        scale,
        base_lr,
        l2,
        oversubscribed: cfg.engine.oversubscribed() && scheme != MfScheme::Sequential,
    };
    let ids = (rated_offsets, rated_items, meta);
    finish(
        train,
        cfg,
        valid_map.as_ref(),
        driven,
        reports,
        last,
        ids,
        &summary,
    )
}

/// The shuffled, standardized rating entries and the factor tables: seeded N(0, init²)
/// factors, biases 0, AdaGrad accumulators 1 and each row's L2 strength (plain, or
/// Hogwild!'s degree-scaled form).
fn init_tables(
    train: &RatingsDataset,
    cfg: &MfConfig,
    mean: f32,
    scale: f32,
) -> Result<(Vec<Entry>, Tables)> {
    let (n, k) = (train.len(), cfg.rank);
    let (nu, ni) = (train.n_users(), train.n_items());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let mut entries: Vec<Entry> = (0..n)
        .map(|j| Entry {
            u: train.users[j],
            i: train.items[j],
            r: (train.ratings[j] - mean) / scale,
        })
        .collect();
    entries.shuffle(&mut rng);

    let mut du = vec![0u32; nu];
    let mut di = vec![0u32; ni];
    for (&u, &i) in train.users.iter().zip(&train.items) {
        du[u as usize] += 1;
        di[i as usize] += 1;
    }
    let l2 = cfg.effective_l2();
    let row_l2 = |deg: u32, mean_deg: f64| match cfg.l2_form {
        MfL2Form::Plain => l2,
        MfL2Form::Degree => (f64::from(l2) * mean_deg / f64::from(deg.max(1))) as f32,
    };
    let (mdu, mdi) = (n as f64 / nu as f64, n as f64 / ni as f64);
    let normal =
        Normal::new(0.0f32, cfg.init_std).map_err(|e| Error::config("init_std", e.to_string()))?;
    let t = Tables {
        uf: Table::new(nu, k, |_, _| normal.sample(&mut rng)),
        ua: Table::new(nu, AUX, |r, c| aux_init(c, row_l2(du[r], mdu))),
        itf: Table::new(ni, k, |_, _| normal.sample(&mut rng)),
        ia: Table::new(ni, AUX, |r, c| aux_init(c, row_l2(di[r], mdi))),
        k,
    };

    Ok((entries, t))
}

/// What the summary of an mf run reports besides the epochs.
struct Summary<'a> {
    /// The exchange across ranks, when there is one.
    strata: Option<&'a dyn Strata>,
    scheme: MfScheme,
    threads: usize,
    nb: usize,
    mean: f32,
    scale: f32,
    base_lr: f32,
    l2: f32,
    oversubscribed: bool,
}

/// The returned model (the best epoch's under early stopping, else `last`), refused
/// when a parameter blew up, with its ids, rated lists and metadata, and the summary.
#[allow(clippy::too_many_arguments)]
fn finish(
    train: &RatingsDataset,
    cfg: &MfConfig,
    valid_map: Option<&model::Resolved<'_>>,
    driven: crate::driver::Driven<MfModel>,
    reports: Vec<MfEpochReport>,
    last: Option<MfModel>,
    (rated_offsets, rated_items, meta): (Vec<u64>, Vec<u32>, serde_json::Value),
    sm: &Summary<'_>,
) -> Result<MfOutcome> {
    let (total, stopped_early) = (driven.train_seconds, driven.stopped_early);
    let (mut model, best_epoch) = match driven.best {
        Some((_, e, m)) => (m, e),
        None => (
            last.expect("the last model when no best was kept"),
            reports.len(),
        ),
    };
    // Parameters can blow up in the last updates of an epoch whose error sum stayed
    // finite; such a model is refused rather than saved (its file would not load).
    if [
        &model.user_bias,
        &model.item_bias,
        &model.user_factors,
        &model.item_factors,
    ]
    .iter()
    .any(|v| v.iter().any(|x| !x.is_finite() || x.abs() > MAX_PARAM))
    {
        return Err(Error::Diverged {
            epoch: best_epoch,
            lr: driven.scheduler.rate(best_epoch.saturating_sub(1)),
            l2: f64::from(cfg.effective_l2()),
            what: "the factors are",
        });
    }
    model.user_ids = train.user_ids.clone();
    model.item_ids = train.item_ids.clone();
    model.rated_offsets = rated_offsets;
    model.rated_items = rated_items;
    model.meta = meta;
    let (test_rmse, test_mae) = match valid_map {
        Some(v) => {
            let MfMetrics {
                rmse: r, mae: a, ..
            } = v.metrics(&model);
            (Some(r), Some(a))
        }
        None => (None, None),
    };
    let done = MfDoneReport {
        model: "mf",
        optimizer: cfg.optimizer_name(),
        scheme: sm.scheme.name(),
        threads: sm.threads,
        oversubscribed: sm.oversubscribed,
        epochs: reports.len(),
        train_seconds: total,
        test_rmse,
        test_mae,
        stopped_early,
        stopped_by_caller: driven.stopped_by_caller,
        best_epoch,
        lr: sm.base_lr,
        l2: sm.l2,
        l2_form: cfg.l2_form,
        rank: cfg.rank,
        blocks: (sm.scheme == MfScheme::Block).then_some(sm.nb),
        rating_mean: sm.mean,
        rating_scale: sm.scale,
        comm: sm.strata.map(|x| {
            reports
                .iter()
                .filter_map(|r| r.comm)
                .fold(x.stats(), crate::train::CommStats::plus)
        }),
    };
    Ok(MfOutcome {
        model,
        epochs: reports,
        done,
    })
}

/// The state tables of an optimizer without its own kernel (one row of
/// (rank + 1) × its state slots per user and item), or `None`.
fn state_tables(cfg: &MfConfig, nu: usize, ni: usize) -> Option<StateTables> {
    match cfg.optimizer {
        MfOptimizer::Other(kind) => {
            let w = (cfg.rank + 1) * crate::with_optimizer!(kind, o => state_slots(&o));
            Some(StateTables {
                us: Table::new(nu, w, |_, _| 0.0),
                is: Table::new(ni, w, |_, _| 0.0),
            })
        }
        _ => None,
    }
}

/// The update rule over the tables: the vectorized SGD or AdaGrad kernel, or the
/// generic per-coordinate update of any other optimizer.
fn make_pass<'a>(
    cfg: &MfConfig,
    t: &'a Tables,
    states: Option<&'a StateTables>,
) -> Box<dyn Pass + 'a> {
    match cfg.optimizer {
        MfOptimizer::Sgd => Box::new(Fast { t, rule: Rule::Sgd }),
        MfOptimizer::AdaGrad => Box::new(Fast {
            t,
            rule: Rule::AdaGrad,
        }),
        MfOptimizer::Other(kind) => {
            let s = states.expect("state tables built for this optimizer");
            crate::with_optimizer!(kind, o => Box::new(Generic { t, s, o }) as Box<dyn Pass>)
        }
    }
}

/// Refuses what training cannot use: bad settings, empty or implicit data, early
/// stopping without validation data, inconsistent columns; and what would not fit in
/// memory (the threads' stacks, the factors and their state).
fn check_inputs(
    train: &RatingsDataset,
    valid: Option<&RatingsDataset>,
    cfg: &MfConfig,
) -> Result<()> {
    cfg.check()?;
    if train.is_empty() {
        return Err(Error::config("data", "the training file has no ratings"));
    }
    if train.implicit {
        return Err(Error::config(
            "data",
            "the training file lists (user, item) pairs without ratings (implicit feedback); matrix factorization here fits explicit ratings (implicit feedback would need negative sampling, which wildsgd does not do)",
        ));
    }
    if cfg.early_stop.is_some() && valid.is_none() {
        return Err(Error::config(
            "early_stop",
            "needs validation data (`valid`)",
        ));
    }
    if valid.is_some_and(|v| v.implicit) {
        return Err(Error::config(
            "test",
            "the validation file lists (user, item) pairs without ratings; RMSE needs ratings",
        ));
    }
    let (n, k) = (train.len(), cfg.rank);
    let (nu, ni) = (train.n_users(), train.n_items());
    if train.users.len() != n
        || train.items.len() != n
        || train.users.iter().any(|&u| u as usize >= nu)
        || train.items.iter().any(|&i| i as usize >= ni)
    {
        return Err(Error::config(
            "data",
            "users, items and ratings must have one entry per rating, each id below the number of user (item) ids",
        ));
    }
    crate::memory::check_threads(cfg.engine.effective_threads())?;
    // Factors and their optimizer state, for users and items, with padding.
    let per_row = 4 * (k as u64 + 16) * (2 + STATE_SLOTS_MAX);
    crate::memory::check(
        format!("factors of rank {k} for {nu} users and {ni} items"),
        crate::memory::bytes_of(&[(nu + ni) as u64, per_row]),
        "lower `rank` (or raise `max_memory`)",
    )?;
    Ok(())
}

/// The parameters alone as a model (evaluation needs no ids, rated lists or metadata;
/// the returned model gets those once, at the end); `stats` = (mean, scale, min, max)
/// of the ratings.
fn params_model(t: &Tables, k: usize, stats: (f32, f32, f32, f32)) -> MfModel {
    let (mean, scale, min_rating, max_rating) = stats;
    let ua = t.ua.to_vec();
    let ia = t.ia.to_vec();
    MfModel {
        rank: k,
        mean,
        scale,
        min_rating,
        max_rating,
        user_bias: ua.chunks_exact(AUX).map(|c| c[0]).collect(),
        item_bias: ia.chunks_exact(AUX).map(|c| c[0]).collect(),
        user_factors: t.uf.to_vec(),
        item_factors: t.itf.to_vec(),
        user_ids: Vec::new(),
        item_ids: Vec::new(),
        rated_offsets: Vec::new(),
        rated_items: Vec::new(),
        meta: serde_json::Value::Null,
    }
}

/// The ratings' mean and standard deviation (1 when they are all equal), and their
/// range: training runs on (r − mean) / scale.
fn standardization(ratings: &[f32]) -> (f32, f32, f32, f32) {
    let n = ratings.len().max(1) as f64;
    let mean = ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / n;
    let var = ratings
        .iter()
        .map(|&r| (f64::from(r) - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = if var.sqrt() > 1e-6 { var.sqrt() } else { 1.0 };
    let (mean, scale) = (mean as f32, scale as f32);
    let min_rating = ratings.iter().copied().fold(f32::INFINITY, f32::min);
    let max_rating = ratings.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (mean, scale, min_rating, max_rating)
}

/// The items each user rated in training, as offsets (users + 1) and sorted dense item
/// indices (what `recommend` leaves out).
fn rated_lists(train: &RatingsDataset) -> (Vec<u64>, Vec<u32>) {
    let nu = train.n_users();
    let mut rated: Vec<(u32, u32)> = train
        .users
        .iter()
        .copied()
        .zip(train.items.iter().copied())
        .collect();
    rated.sort_unstable();
    rated.dedup();
    let mut rated_offsets = vec![0u64; nu + 1];
    for &(u, _) in &rated {
        rated_offsets[u as usize + 1] += 1;
    }
    for u in 0..nu {
        rated_offsets[u + 1] += rated_offsets[u];
    }
    let rated_items: Vec<u32> = rated.iter().map(|&(_, i)| i).collect();
    (rated_offsets, rated_items)
}

/// `O::STATE`, for a value whose type the optimizer macro chose.
fn state_slots<O: Optimizer>(_: &O) -> usize {
    O::STATE
}

/// Initial extra slots of a row: bias 0, AdaGrad accumulators 1 (as LIBMF), λ.
fn aux_init(slot: usize, lambda: f32) -> f32 {
    match slot {
        G_FACTORS | G_BIAS => 1.0,
        LAMBDA => lambda,
        _ => 0.0,
    }
}

/// Matrix factorization as a task of the engine: the rating entries (shuffled chunks,
/// or the FPSG grid), the update rule over the factor tables, the validation ratings.
struct Mf<'a> {
    pass: &'a dyn Pass,
    tables: &'a Tables,
    snapshot: &'a (dyn Fn(&Tables) -> MfModel + Sync),
    entries: &'a [Entry],
    grid: Option<&'a blocks::Grid>,
    scheme: MfScheme,
    threads: usize,
    seed: u64,
    /// The chunk order, reshuffled every epoch (chunk schemes).
    order: Mutex<Vec<u32>>,
    /// The `locked` scheme's one lock.
    lock: Mutex<()>,
    /// Ratings done in the current epoch.
    done: AtomicUsize,
    valid: Option<&'a model::Resolved<'a>>,
    scale: f32,
    l2: f32,
    /// Across ranks: the exchange and this rank's ratings of each stratum.
    strata: Option<(&'a dyn Strata, Vec<Vec<Entry>>)>,
}

/// Rank `r`'s ratings of each of the `p` strata, in the entries' (shuffled) order:
/// stratum s holds the ratings of users u ≡ r and items i ≡ r + s (mod p).
fn my_strata(entries: &[Entry], (r, p): (usize, usize)) -> Vec<Vec<Entry>> {
    let mut out = vec![Vec::new(); p];
    for e in entries {
        if e.u as usize % p == r {
            out[(e.i as usize % p + p - r) % p].push(*e);
        }
    }
    out
}

/// Sums the changes of `table` since `before` over the ranks, and applies the sum: a
/// row changed by one rank only (DSGD's strata) ends with that rank's value everywhere.
fn merge_changes(table: &Table, before: &[f32], x: &dyn Strata) {
    let mut d: Vec<f32> = table
        .to_vec()
        .iter()
        .zip(before)
        .map(|(a, b)| a - b)
        .collect();
    x.sum(&mut d);
    table.set_all(before.iter().zip(&d).map(|(b, d)| b + d));
}

/// What every worker gets for an epoch.
#[derive(Clone)]
struct MfJob {
    lr: f32,
    /// Global step number of the epoch's first rating.
    t_base: u64,
    /// Chunk order (chunk schemes).
    order: Arc<Vec<u32>>,
    /// The epoch's block scheduler (block scheme).
    sched: Option<Arc<blocks::Scheduler>>,
}

impl crate::driver::Task for Mf<'_> {
    /// The worker's number and its scratch buffer.
    type Worker = (usize, Vec<f32>);
    type Job = MfJob;
    /// The worker's sum of squared errors.
    type Part = f64;
    type Kept = MfModel;
    type Report = MfEpochReport;

    fn workers(&self) -> Vec<(usize, Vec<f32>)> {
        (0..self.threads)
            .map(|w| (w, vec![0.0f32; self.pass.scratch()]))
            .collect()
    }

    fn job(&self, epoch: usize, lr: f32) -> MfJob {
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let mut erng = Xoshiro256PlusPlus::seed_from_u64(self.seed.wrapping_add(1 + epoch as u64));
        order.shuffle(&mut erng);
        self.done.store(0, Relaxed);
        MfJob {
            lr,
            t_base: (epoch * self.entries.len()) as u64 + 1,
            order: Arc::new(order.clone()),
            sched: self.grid.map(|g| {
                Arc::new(blocks::Scheduler::new(
                    g,
                    self.seed ^ ((epoch as u64) << 20),
                ))
            }),
        }
    }

    fn work(&self, worker: &mut (usize, Vec<f32>), job: MfJob, tick: &mut dyn FnMut(usize)) -> f64 {
        if let Some((x, mine)) = &self.strata {
            return self.strata_epoch(*x, mine, &job, tick);
        }
        match (&job.sched, self.grid) {
            (Some(sched), Some(g)) => self.blocks(sched, g, &job, tick),
            _ => self.chunks(worker, &job, tick),
        }
    }

    fn done(&self) -> usize {
        self.done.load(Relaxed)
    }

    fn end_epoch(
        &self,
        epoch: usize,
        lr: f32,
        keep: bool,
        parts: Vec<f64>,
        seconds: f64,
    ) -> Result<(crate::driver::Epoch<MfModel>, MfEpochReport)> {
        let mut se = [parts.iter().sum::<f64>()];
        if let Some((x, _)) = &self.strata {
            x.sum_f64(&mut se);
        }
        let se = se[0];
        let n = self.entries.len();
        if !se.is_finite() {
            return Err(Error::Diverged {
                epoch: epoch + 1,
                lr,
                l2: f64::from(self.l2),
                what: "the training error is",
            });
        }
        let train_rmse = (se / n as f64).sqrt() * f64::from(self.scale);
        let (test_rmse, test_mae, snap) = match self.valid {
            Some(v) => {
                let m = (self.snapshot)(self.tables);
                let MfMetrics { rmse, mae, .. } = v.metrics(&m);
                (Some(rmse), Some(mae), keep.then_some(m))
            }
            None => (None, None, None),
        };
        let rep = MfEpochReport {
            epoch: epoch + 1,
            seconds,
            lr,
            train_rmse,
            test_rmse,
            test_mae,
            updates: n as u64,
            ratings_per_sec: n as f64 / seconds.max(1e-12),
            comm: self.strata.as_ref().map(|(x, _)| x.stats()),
        };
        let ep = crate::driver::Epoch {
            seconds,
            train: train_rmse,
            valid: test_rmse,
            objective: None,
            gap: None,
            model: snap,
        };
        Ok((ep, rep))
    }
}

impl Mf<'_> {
    /// One epoch of DSGD across ranks (see [`Strata`]): this rank's ratings of each
    /// stratum in turn, the item rows exchanged after each stratum, the user rows after
    /// the last.
    fn strata_epoch(
        &self,
        x: &dyn Strata,
        mine: &[Vec<Entry>],
        job: &MfJob,
        tick: &mut dyn FnMut(usize),
    ) -> f64 {
        let t = self.tables;
        let users = (t.uf.to_vec(), t.ua.to_vec());
        let (mut se, mut done) = (0.0, 0usize);
        for stratum in mine {
            let items = (t.itf.to_vec(), t.ia.to_vec());
            // SAFETY: one thread per rank (the run is inline), so these rows are this
            // thread's alone; the indices come from the training data the tables were
            // sized for.
            se += unsafe {
                self.pass
                    .exclusive(stratum, job.lr, job.t_base + done as u64)
            };
            done += stratum.len();
            merge_changes(&t.itf, &items.0, x);
            merge_changes(&t.ia, &items.1, x);
            self.done.store(done, Relaxed);
            tick(done);
        }
        merge_changes(&t.uf, &users.0, x);
        merge_changes(&t.ua, &users.1, x);
        se
    }

    /// The chunk at position `c` of the entries.
    fn chunk(&self, c: u32) -> &[Entry] {
        let s = c as usize * CHUNK;
        &self.entries[s..(s + CHUNK).min(self.entries.len())]
    }

    /// A worker's share of the shuffled chunks under the sequential, hogwild or locked
    /// scheme.
    fn chunks(
        &self,
        (w, buf): &mut (usize, Vec<f32>),
        job: &MfJob,
        tick: &mut dyn FnMut(usize),
    ) -> f64 {
        let (pass, lr, order) = (self.pass, job.lr, &job.order[..]);
        // Step number of the first rating of the chunk at position `n` of the order.
        let t0 = |n: usize| job.t_base + (n * CHUNK) as u64;
        let range = *w * order.len() / self.threads..(*w + 1) * order.len() / self.threads;
        let mut se = 0.0;
        for n in range {
            let c = self.chunk(order[n]);
            match self.scheme {
                MfScheme::Sequential => {
                    // SAFETY: one thread; indices come from the training data the tables
                    // were sized for.
                    se += unsafe { pass.exclusive(c, lr, t0(n)) };
                }
                MfScheme::Locked => {
                    for (j, en) in c.iter().enumerate() {
                        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                        // SAFETY: every access to the tables in this scheme happens under
                        // `lock`; indices are in range.
                        se += unsafe {
                            pass.exclusive(std::slice::from_ref(en), lr, t0(n) + j as u64)
                        };
                    }
                }
                _ => se += pass.shared(c, lr, t0(n), buf),
            }
            let done = self.done.fetch_add(c.len(), Relaxed) + c.len();
            if n % 256 == 255 {
                tick(done);
            }
        }
        se
    }

    /// A worker's blocks of the epoch's grid, taken from the scheduler until none is left.
    fn blocks(
        &self,
        sched: &blocks::Scheduler,
        g: &blocks::Grid,
        job: &MfJob,
        tick: &mut dyn FnMut(usize),
    ) -> f64 {
        let mut se = 0.0;
        let mut prev = None;
        while let Some(b) = sched.next(prev) {
            let held = blocks::Held { sched, block: b };
            let n = self.done.fetch_add(g.blocks[b].len(), Relaxed);
            // SAFETY: the scheduler gives this thread a block whose row-block and
            // column-block no running block shares, so its users' and items' rows are
            // this thread's alone until it returns the block (through the scheduler's
            // mutex, which orders this thread's accesses before the next owner's).
            se += unsafe {
                self.pass
                    .exclusive(&g.blocks[b], job.lr, job.t_base + n as u64)
            };
            tick(n + g.blocks[b].len());
            prev = Some(held.block);
        }
        se
    }
}
