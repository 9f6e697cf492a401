//! Training linear models: configuration, the epoch loop, early stopping and reports.
//!
//! The objective is (1/n)·Σ loss(y·(w·x + b)) + (λ/2)·‖w‖² + λ1·‖w‖₁ (the bias is an
//! ordinary coordinate and is regularized too, as LIBLINEAR's `-B 1` does), so that
//! λ = 1/(C·n) against LIBLINEAR's C. The default λ is 1/n (C = 1).
//!
//! **L2 under sparse updates** ([`L2Form`]):
//! * `lazy` (default): the exact form. The weights are kept as w = s·v with one global
//!   scale s; each update multiplies s by (1 − η λ), which shrinks every coordinate at
//!   O(1) cost (the Bottou / Vowpal Wabbit trick, ALGORITHMS.md §2.11b). For SGD this
//!   is exactly dense L2-regularized SGD. For the other optimizers it is weight decay
//!   decoupled from the adaptive step (as AdamW does).
//! * `degree`: Hogwild!'s separable form (§2.11a, §3.2): an example adds the gradient
//!   λ·(n/d_j)·w_j to each coordinate j it touches, where d_j is the number of training
//!   rows holding feature j. Its expectation over the examples is the dense λ·w. It
//!   needs no shared scale, which is why the lock-free engine uses it.
//!
//! **L1** is applied by truncation: after each update of a touched coordinate its
//! weight moves toward zero by η·λ1·(n/d_j) and is clipped at zero (Langford, Li &
//! Zhang's truncated gradient, degree-scaled like the L2 form above).

mod dual;
mod exact;
mod kernel;
#[cfg(feature = "distributed")]
pub(crate) use kernel::degree_scale;
mod order;
mod saga;

use std::sync::Arc;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use dual::DualWrites;
pub use order::Order;
pub use saga::step_size as saga_step_size;

use crate::data::SparseDataset;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};
use crate::model::{LinearModel, LossKind};
use crate::optim::{Optimizer, OptimizerKind};
use crate::params::SharedParams;
use crate::schedule::Schedule;
use kernel::{BatchScratch, Kernel, LossSum, Step};

use crate::engine::{EngineConfig, Replication, Scheme};

/// How L2 regularization is applied under sparse updates (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L2Form {
    /// Exact, through a global weight scale.
    #[default]
    Lazy,
    /// Hogwild!'s degree-scaled per-touch form.
    Degree,
}

/// How the model is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Solver {
    /// Stochastic updates of the primal weights by [`TrainConfig::optimizer`] (SGD and
    /// the other optimizers), under the learning rate and schedule.
    #[default]
    Primal,
    /// Dual coordinate descent (LIBLINEAR's `-s 7`, `-s 3`; PASSCoDe on several
    /// threads): no learning rate; converges to the exact optimum, with the duality gap
    /// as a certificate (see the `dual` module docs). L2 only.
    DualCd {
        /// How the threads write the shared weights.
        writes: DualWrites,
    },
    /// SAGA in its sparse lock-free form ASAGA (the `saga` module docs): a constant step
    /// (`lr`, by default 1/(3·L) from the data), linear convergence to the exact
    /// optimum. Smooth losses (logistic, squared), L2 only.
    Saga,
}

/// Training parameters. Build with struct update syntax from `Default` and check with
/// [`TrainConfig::check`] (done by [`fit`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainConfig {
    /// The loss.
    pub loss: LossKind,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerKind,
    /// Base learning rate; `None` takes the optimizer's [`OptimizerKind::default_lr`]
    /// for the training data's scale.
    pub lr: Option<f32>,
    /// Learning-rate schedule; `None` takes the default: `inv-time` (k = 1) for SGD,
    /// Momentum and NAG, `constant` for the adaptive optimizers (which already decay).
    pub schedule: Option<Schedule>,
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per update: 1 is SGD, B a mini-batch, 0 the whole data set (batch GD).
    pub batch_size: usize,
    /// L2 strength λ; `None` is 1/n (LIBLINEAR's C = 1).
    pub l2: Option<f64>,
    /// L1 strength λ1.
    pub l1: f64,
    /// How L2 is applied.
    pub l2_form: L2Form,
    /// Fit a bias.
    pub bias: bool,
    /// Example order.
    pub order: Order,
    /// Gradient noise η_noise (0 = off); variance η_noise/(1+t)^γ at update t.
    pub grad_noise: f32,
    /// Annealing exponent γ of the gradient noise (0.55, Neelakantan et al. 2015).
    pub grad_noise_gamma: f32,
    /// Stop after this many epochs without a better validation loss, keeping the best
    /// model; needs validation data.
    pub early_stop: Option<usize>,
    /// Seed for shuffling and noise; with one thread a run is bit-for-bit repeatable.
    pub seed: u64,
    /// The solver: stochastic primal updates with `optimizer`, or dual coordinate descent.
    pub solver: Solver,
    /// Polyak–Ruppert averaging of the iterates from this epoch on (default 1: after the
    /// first epoch; 0: from the start; fractions allowed): the model evaluated, reported and returned is the average
    /// (averaged SGD, ALGORITHMS.md §12.2). With several threads it runs on the shared
    /// parameters (no replicas) with compare-and-swap writes, so that no update escapes
    /// the average. `None`: the last iterate. For the primal solver without delayed
    /// gradients only: dual coordinate descent converges without it, and `delay` and
    /// `delay-tolerant` ignore it (`done.averaged` says whether a run averaged).
    pub average: Option<f64>,
    /// Stop before `epochs` once converged: the duality gap at most `tol`·P for dual
    /// coordinate descent, else the regularized training objective P decreasing by at
    /// most `tol`·P over an epoch (see the `epoch` report's `objective`). `None` runs
    /// every epoch.
    pub tol: Option<f64>,
    /// The parallel engine: scheme, threads, replication, delay.
    pub engine: EngineConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            loss: LossKind::Logistic,
            optimizer: OptimizerKind::default(),
            lr: None,
            schedule: None,
            epochs: 10,
            batch_size: 1,
            l2: None,
            l1: 0.0,
            l2_form: L2Form::Lazy,
            bias: true,
            order: Order::Shuffle,
            grad_noise: 0.0,
            grad_noise_gamma: 0.55,
            early_stop: None,
            seed: 42,
            solver: Solver::Primal,
            average: Some(1.0),
            tol: None,
            engine: EngineConfig::default(),
        }
    }
}

impl TrainConfig {
    /// The learning rate actually used on `data`.
    pub fn effective_lr(&self, data: &SparseDataset) -> f32 {
        self.lr.unwrap_or_else(|| {
            let sq: f64 = data
                .x()
                .data()
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum();
            let mean = sq / data.rows().max(1) as f64 + f64::from(u8::from(self.bias));
            self.optimizer.default_lr(mean as f32)
        })
    }

    /// The schedule actually used.
    pub fn effective_schedule(&self) -> Schedule {
        self.schedule.unwrap_or(if self.optimizer.is_adaptive() {
            Schedule::Constant
        } else {
            Schedule::Bottou
        })
    }

    /// The name of what trains: the optimizer's, or `dual-cd`.
    pub fn method_name(&self) -> &'static str {
        match self.solver {
            Solver::Primal => self.optimizer.name(),
            Solver::DualCd { .. } => "dual-cd",
            Solver::Saga => "saga",
        }
    }

    /// λ for `n` training rows.
    pub fn effective_l2(&self, n: usize) -> f64 {
        self.l2.unwrap_or(1.0 / n.max(1) as f64)
    }

    /// Checks every parameter.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first parameter out of range.
    pub fn check(&self) -> Result<()> {
        crate::error::check_training(self.lr, self.epochs, self.l2, self.early_stop)?;
        crate::error::check_non_negative("l1", self.l1)?;
        crate::error::check_non_negative("grad_noise", self.grad_noise)?;
        crate::error::check_non_negative("grad_noise_gamma", self.grad_noise_gamma)?;
        self.optimizer.check()?;
        self.engine.check()?;
        if let Some(tol) = self.tol {
            crate::error::check_positive("tol", tol)?;
        }
        if let Some(a) = self.average {
            crate::error::check_non_negative("average", a)?;
        }
        match self.solver {
            Solver::Primal => {}
            Solver::DualCd { .. } => self.check_exact("dual coordinate descent")?,
            Solver::Saga => self.check_exact("saga")?,
        }
        if self.engine.scheme == Scheme::DelayTolerant
            && !matches!(self.optimizer, OptimizerKind::AdaGrad(_))
        {
            return Err(Error::config(
                "scheme",
                "delay-tolerant is AdaGrad's AdaptiveRevision: use it with `optimizer` adagrad",
            ));
        }
        if self.engine.scheme == Scheme::DelayTolerant && (self.l1 > 0.0 || self.grad_noise > 0.0) {
            return Err(Error::config(
                "scheme",
                "delay-tolerant (AdaptiveRevision) supports L2 only: drop `l1` and `grad_noise`",
            ));
        }
        if self.engine.scheme == Scheme::DelayTolerant
            && self.effective_schedule() == Schedule::Bottou
        {
            return Err(Error::config(
                "schedule",
                "delay-tolerant (AdaptiveRevision) adapts its own rates: use a per-epoch schedule",
            ));
        }
        if (self.engine.delay > 0 || self.engine.scheme == Scheme::DelayTolerant)
            && self.batch_size != 1
        {
            return Err(Error::config(
                "delay",
                "delayed gradients work with `batch_size` 1",
            ));
        }
        self.effective_schedule().check()
    }
}

impl TrainConfig {
    /// What the exact solvers (`what`: dual coordinate descent, saga) cannot take.
    fn check_exact(&self, what: &str) -> Result<()> {
        let bad = |name, why: &str| Err(Error::config(name, format!("{why} ({what})")));
        let saga = self.solver == Solver::Saga;
        if (self.lr.is_some() && !saga) || self.schedule.is_some_and(|s| s != Schedule::Constant) {
            return bad(
                "lr",
                if saga {
                    "takes a constant step: no schedule"
                } else {
                    "takes no learning rate or schedule"
                },
            );
        }
        if saga && self.loss == LossKind::Hinge {
            return bad("loss", "needs a smooth loss: logistic or squared");
        }
        if self.l2 == Some(0.0) {
            return bad("l2", "needs L2 regularization (λ > 0)");
        }
        if self.l1 > 0.0 || self.grad_noise > 0.0 {
            return bad("l1", "is for L2 only, without L1 or gradient noise");
        }
        if self.batch_size != 1 {
            return bad("batch_size", "updates one example at a time");
        }
        if self.order != Order::Shuffle {
            return bad("order", "visits the examples in random order");
        }
        if !matches!(self.engine.scheme, Scheme::Sequential | Scheme::Hogwild) {
            return bad("scheme", "runs sequential or hogwild (lock-free)");
        }
        if self.engine.delay > 0 || self.engine.lossless {
            return bad(
                "delay",
                "has no delay and writes with compare-and-swap by default",
            );
        }
        Ok(())
    }
}

/// The regularized training objective of `model` on `data`:
/// P(w) = (1/n)·Σ loss(y·(w·x + b)) + (λ/2)·(‖w‖² + b²) + λ1·‖w‖₁, the quantity every
/// solver minimizes (the bias regularized as LIBLINEAR's `-B 1`).
pub fn objective(model: &LinearModel, data: &SparseDataset, l2: f64, l1: f64) -> f64 {
    let scores = model.scores(data);
    let n = data.rows().max(1) as f64;
    let loss: f64 = scores
        .iter()
        .zip(data.y())
        .map(|(&z, &y)| f64::from(model.loss.loss(z, y)))
        .sum();
    loss / n + penalty(model, l2, l1)
}

/// The penalty of [`objective`]: (λ/2)·(‖w‖² + b²) + λ1·‖w‖₁.
pub(crate) fn penalty(model: &LinearModel, l2: f64, l1: f64) -> f64 {
    let abs: f64 = model.weights.iter().map(|w| f64::from(w.abs())).sum();
    0.5 * l2 * model.squared_norm() + l1 * abs
}

/// One epoch's figures (the `epoch` event of the JSON report).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Training time of this epoch (no evaluation).
    pub seconds: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Mean loss of the examples before each was trained on (progressive validation);
    /// for dual coordinate descent, the mean loss after the epoch.
    pub train_loss: f64,
    /// The regularized training objective P(w) after the epoch (see [`objective`]).
    pub objective: f64,
    /// The duality gap P(w) − D(α) ≥ P(w) − P(w*) after the epoch (dual coordinate
    /// descent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duality_gap: Option<f64>,
    /// Validation loss after the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    /// Validation accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Validation ROC AUC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_auc: Option<f64>,
    /// Parameter updates made (examples for SGD, batches otherwise).
    pub updates: u64,
    /// Non-zeros processed.
    pub nnz: u64,
    /// Non-zeros per second of training time.
    pub nnz_per_sec: f64,
    /// What this epoch communicated, in a run across MPI ranks (the `distributed`
    /// feature): `ranks`, `comm_bytes`, `comm_seconds`.
    #[serde(flatten)]
    pub comm: Option<CommStats>,
}

/// What a run across MPI ranks communicated (the `distributed` feature), as this rank
/// saw it: per epoch in [`EpochReport::comm`], over the run in [`DoneReport::comm`].
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct CommStats {
    /// The distributed scheme (`average`, `easgd`, `downpour`, `delay-tolerant`).
    pub distributed: &'static str,
    /// Ranks in the job.
    pub ranks: usize,
    /// Bytes this rank sent and received.
    pub comm_bytes: u64,
    /// Seconds this rank spent communicating (moving data, serving requests).
    pub comm_seconds: f64,
    /// Seconds this rank spent waiting for slower ranks before a collective exchange
    /// (load imbalance, evaluation on other ranks), apart from `comm_seconds`.
    pub wait_seconds: f64,
}

impl CommStats {
    /// The sum of two ranks' or epochs' figures.
    pub fn plus(self, o: CommStats) -> CommStats {
        CommStats {
            comm_bytes: self.comm_bytes + o.comm_bytes,
            comm_seconds: self.comm_seconds + o.comm_seconds,
            wait_seconds: self.wait_seconds + o.wait_seconds,
            ..self
        }
    }
}

/// The end of a run (the `done` event of the JSON report).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DoneReport {
    /// Loss name.
    pub model: &'static str,
    /// Optimizer name.
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
    /// The regularized training objective of the returned model.
    pub objective: f64,
    /// Its duality gap (dual coordinate descent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duality_gap: Option<f64>,
    /// Whether the run stopped because it converged to `tol`.
    pub converged: bool,
    /// Whether the returned model is an average of the iterates (`average`).
    pub averaged: bool,
    /// Validation loss of the returned model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    /// Validation accuracy of the returned model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Validation AUC of the returned model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_auc: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the progress callback stopped the run (key present only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_caller: bool,
    /// Epoch whose model is returned (the best one under early stopping).
    pub best_epoch: usize,
    /// Learning rate (base) used.
    pub lr: f32,
    /// Whether the base rate was calibrated on a sample (`lr` left to `None`).
    pub lr_calibrated: bool,
    /// L2 strength used.
    pub l2: f64,
    /// L2 form used (several threads or a delay force `degree`).
    pub l2_form: L2Form,
    /// Coordinates each thread replicated.
    pub replicated: usize,
    /// Updates between a replica's merges (present when there are replicas; bounded by
    /// a thread's share of an epoch, whose end always merges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_every: Option<u64>,
    /// Rows per shuffled block.
    pub shuffle_block: usize,
    /// What the run communicated over all epochs, across MPI ranks.
    #[serde(flatten)]
    pub comm: Option<CommStats>,
}

/// What [`fit`] reports while it runs.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Examples done so far in the current epoch (called every few thousand).
    Examples {
        /// 0-based epoch.
        epoch: usize,
        /// Examples done in it.
        done: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochReport),
}

/// A trained model and its history.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The model (the best epoch's under early stopping, else the last).
    pub model: LinearModel,
    /// One report per epoch run.
    pub epochs: Vec<EpochReport>,
    /// The summary.
    pub done: DoneReport,
}

/// Trains on `train`, evaluating on `valid` after each epoch when given.
///
/// # Errors
/// [`Error::Config`] for bad parameters (or early stopping without validation data);
/// [`Error::Diverged`] when the loss becomes NaN or infinite (the rate is too high).
///
/// `progress` may return `()` or a [`std::ops::ControlFlow`]: `ControlFlow::Break(())`
/// stops the run at the end of the current epoch, and the model of the epochs run so far
/// is returned (`done.stopped_by_caller`).
pub fn fit<R: crate::Flow>(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    mut progress: impl FnMut(Progress<'_>) -> R,
) -> Result<TrainOutcome> {
    let stop = std::cell::Cell::new(false);
    let mut report = |p: Progress<'_>| {
        if progress(p).is_break() {
            stop.set(true);
        }
    };
    fit_dyn(train, valid, cfg, &mut report, &stop)
}

/// The body of [`fit`], not generic, so that a caller's crate does not compile the
/// eleven optimizers' engines again for its own callback type.
#[inline(never)]
fn fit_dyn(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<TrainOutcome> {
    cfg.check()?;
    if cfg.early_stop.is_some() && valid.is_none() {
        return Err(Error::config(
            "early_stop",
            "needs validation data (`valid`)",
        ));
    }
    if train.rows() == 0 {
        return Err(Error::config("train", "the training data has no rows"));
    }
    if valid.is_some_and(|v| v.rows() == 0) {
        return Err(Error::config("valid", "the validation data has no rows"));
    }
    match cfg.solver {
        Solver::Primal => {}
        Solver::DualCd { writes } => return dual::run(train, valid, cfg, writes, progress, stop),
        Solver::Saga => return saga::run(train, valid, cfg, progress, stop),
    }
    if cfg.lr.is_none() {
        let cfg = TrainConfig {
            lr: Some(calibrate(train, cfg)?),
            ..cfg.clone()
        };
        let mut out = fit_dyn(train, valid, &cfg, progress, stop)?;
        out.done.lr_calibrated = true;
        out.model.meta["lr_calibrated"] = serde_json::Value::Bool(true);
        return Ok(out);
    }
    crate::with_optimizer!(cfg.optimizer, o => run(o, train, valid, cfg, progress, stop, None))
}

/// What a run across processes does at the end of every epoch (the `distributed`
/// module; ALGORITHMS.md §8): the ranks' parameters are exchanged, and the figures of the
/// ranks' shards are summed. Runs on the calling thread while the workers wait.
pub(crate) trait Exchange: Sync {
    /// Sums `v` over the ranks, in place.
    fn sum(&self, v: &mut [f64]) -> Result<()>;
    /// Exchanges per epoch: [`Exchange::exchange_iterate`] runs between rounds of an
    /// epoch, [`Exchange::exchange`] at its end.
    fn rounds(&self) -> usize;
    /// Between rounds `round` and `round + 1` of epoch `epoch`: moves this rank's
    /// weights `iterate` (bias last) as the scheme says.
    fn exchange_iterate(&self, epoch: usize, round: usize, iterate: &mut [f32]) -> Result<()>;
    /// At the end of epoch `epoch` (0-based): `iterate` holds this rank's weights (bias
    /// last), which the scheme may move (the average, the elastic pull); `model` holds
    /// the weights to evaluate (the average of the iterates, else the iterate), which it
    /// replaces by the job's model (the ranks' mean, the center).
    fn exchange(&self, epoch: usize, iterate: &mut [f32], model: &mut [f32]) -> Result<()>;
    /// What was communicated since the last call (reset by the call).
    fn stats(&self) -> CommStats;
}

/// [`fit`] on this rank's shard of a job across processes, `exchange` at every epoch's
/// end; the primal solver only (checked by the caller).
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(crate) fn fit_exchanging(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    exchange: &dyn Exchange,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<TrainOutcome> {
    cfg.check()?;
    if cfg.solver != Solver::Primal || cfg.lr.is_none() || cfg.early_stop.is_some() {
        return Err(Error::config(
            "solver",
            "a run across processes needs the primal solver, a set rate and no early stopping (a bug)",
        ));
    }
    crate::with_optimizer!(cfg.optimizer, o => run(o, train, valid, cfg, progress, stop, Some(exchange)))
}

/// Rows of the calibration sample (Bottou's svmsgd uses 1,000).
const CALIBRATION_ROWS: usize = 1000;

/// The base learning rate, calibrated as Bottou's `determineEta0` does (ALGORITHMS.md
/// §12.1): on a seeded sample of up to [`CALIBRATION_ROWS`] training rows, one
/// sequential pass from zero at a constant candidate rate, scored by the regularized
/// objective on the sample (with the run's λ). From the optimizer's default rate η and
/// 2η, the candidates move by factors of 2 in the better direction while the objective
/// improves; the lower rate of the last pair is kept (Bottou's choice: the best rate
/// going up, the cautious side of the best going down). A candidate that diverges
/// scores +∞. A few thousand updates: milliseconds.
pub fn calibrate(train: &SparseDataset, cfg: &TrainConfig) -> Result<f32> {
    use rand::seq::index::sample;
    let n = train.rows();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0xCA11_B8A7E);
    let mut rows = sample(&mut rng, n, n.min(CALIBRATION_ROWS)).into_vec();
    rows.sort_unstable();
    let sample = train.select(&rows);
    let lambda = cfg.effective_l2(n);
    let trial = TrainConfig {
        epochs: 1,
        l2: Some(lambda),
        schedule: Some(Schedule::Constant),
        early_stop: None,
        tol: None,
        average: None,
        engine: EngineConfig {
            scheme: Scheme::Sequential,
            ..cfg.engine
        },
        ..cfg.clone()
    };
    let cost = |eta: f32| -> Result<f64> {
        let t = TrainConfig {
            lr: Some(eta),
            ..trial.clone()
        };
        match fit(&sample, None, &t, |_| {}) {
            Ok(out) if out.done.objective.is_finite() => Ok(out.done.objective),
            Ok(_) | Err(Error::Diverged { .. }) => Ok(f64::INFINITY),
            Err(e) => Err(e),
        }
    };
    let start = cfg.effective_lr(train);
    let (mut lo, mut hi) = (start, start * 2.0);
    let (mut lo_cost, mut hi_cost) = (cost(lo)?, cost(hi)?);
    // At most 40 halvings or doublings: 2^±40 around the start.
    let down = lo_cost < hi_cost;
    for _ in 0..40 {
        if down && lo_cost < hi_cost {
            (hi, hi_cost) = (lo, lo_cost);
            lo = hi / 2.0;
            lo_cost = cost(lo)?;
        } else if !down && hi_cost < lo_cost {
            (lo, lo_cost) = (hi, hi_cost);
            hi = lo * 2.0;
            hi_cost = cost(hi)?;
        } else {
            break;
        }
    }
    Ok(if lo_cost.is_finite() { lo } else { start })
}

/// What every worker shares for a run.
struct Shared<'a, O: Optimizer> {
    kernel: Kernel<'a, O>,
    params: &'a SharedParams,
    cfg: &'a TrainConfig,
    threads: usize,
    block: usize,
    batch: usize,
    lazy_lambda: f64,
    /// λ of Bottou's per-update decay η/(1 + λ·η·t); 0 when the schedule is another.
    bottou: f64,
    hot: Vec<u8>,
    hot_list: Vec<u32>,
    /// The whole model is replicated.
    whole: bool,
    /// Per-coordinate factor on a replica's change at a merge.
    merge_weight: Vec<f32>,
    sync_every: u64,
    lock: std::sync::Mutex<()>,
    /// Round-robin: whose turn it is (counts turns taken this epoch).
    turn: crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>,
    /// Round-robin: turns each thread takes per epoch.
    rr_rounds: usize,
    /// Examples done in the current epoch, over all threads (for the progress bar).
    done: crossbeam_utils::CachePadded<std::sync::atomic::AtomicUsize>,
    /// Updates over all threads since the start, advanced every [`CLOCK_TICK`] updates
    /// of a thread (averaging only: its weights need the global update count, which a
    /// thread's own count times the threads misjudges when threads run unevenly).
    clock: crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>,
}

/// Updates a thread makes between two advances of the shared clock.
const CLOCK_TICK: u64 = 64;

impl<O: Optimizer> Shared<'_, O> {
    /// The rate of global update `t` from the epoch's rate `lr`: Bottou's per-update
    /// decay when it is the schedule, else `lr`. With several threads `t` is estimated
    /// as a thread's own count times the threads.
    #[inline(always)]
    fn rate(&self, lr: f32, t: u64) -> f32 {
        if self.bottou > 0.0 {
            crate::schedule::per_update(lr, self.bottou, t)
        } else {
            lr
        }
    }
}

/// One thread's private state, kept across epochs: its RNG (noise), permutation buffer,
/// mini-batch scratch, update count, the lazy-L2 scale (one thread only) and the queue
/// of delayed gradients.
struct WorkerState {
    id: usize,
    rng: Xoshiro256PlusPlus,
    perm: Vec<u32>,
    scratch: Option<BatchScratch>,
    t: u64,
    scale: f64,
    queue: DelayQueue,
    /// A replica's buffers, kept across epochs.
    replica: (Vec<f32>, Vec<f32>),
    /// The running average of the iterates (`average`).
    avg: kernel::Averager,
    /// The shared clock as this thread last advanced it.
    clock: u64,
}

/// Gradients waiting to be applied: (row, loss derivative, offset of the ḡ values read
/// with it in `gbar`).
#[derive(Default)]
struct DelayQueue {
    items: std::collections::VecDeque<(u32, f32, usize)>,
    gbar: Vec<f32>,
}

/// One epoch's result from one worker.
#[derive(Default)]
struct EpochPart {
    loss: LossSum,
    updates: u64,
    /// The thread's average, once averaging has started (last round of an epoch only).
    avg: Option<AvgPart>,
    /// From the epoch's last round.
    last: bool,
}

/// A thread's average at the end of an epoch.
enum AvgPart {
    /// Of the shared weights: (A, β, γ), to be summed over the threads.
    Shared(Vec<f64>, f64, f64),
    /// Of the thread's own replica: w̄, to be averaged over the threads.
    Own(Vec<f64>),
}

fn run<O: Optimizer>(
    opt: O,
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
    exchange: Option<&dyn Exchange>,
) -> Result<TrainOutcome> {
    let n = train.rows();
    let d = train.cols();
    let coords = d + usize::from(cfg.bias);
    let threads = cfg.engine.threads_for(n);
    let ar = cfg.engine.scheme == Scheme::DelayTolerant;
    let stride = if ar { 4 } else { 1 + O::STATE };
    check_memory(cfg, coords, stride, threads)?;
    let params = SharedParams::new(coords, stride);
    let lambda = cfg.effective_l2(n);
    let x = train.x();
    let lay = layout(cfg, train, threads, stride)?;
    let l2_form = lay.l2_form;
    let deg_scale = kernel::degree_scale(train, cfg.bias);
    let l2_degree: Option<Vec<f32>> = (l2_form == L2Form::Degree && lambda > 0.0).then(|| {
        deg_scale
            .iter()
            .map(|&s| (lambda * f64::from(s)) as f32)
            .collect()
    });
    let indptr = x.indptr();
    let kernel = Kernel::new(
        opt,
        cfg.loss,
        train,
        indptr.raw_storage(),
        cfg.bias,
        l2_degree.as_deref(),
        (cfg.l1 > 0.0).then_some((cfg.l1 as f32, &deg_scale[..])),
        (cfg.grad_noise > 0.0).then_some((cfg.grad_noise, cfg.grad_noise_gamma)),
    );
    let shared = shared_state(kernel, &params, cfg, train, threads, lay, lambda);
    let base_lr = cfg.effective_lr(train);
    let plan = crate::driver::Plan {
        epochs: cfg.epochs,
        early_stop: cfg.early_stop,
        schedule: cfg.effective_schedule(),
        base_lr,
        tol: cfg.tol,
    };
    let task = Linear {
        shared: &shared,
        train,
        valid,
        cfg,
        lambda,
        coords,
        averaged: std::sync::Mutex::new(None),
        averaged_once: Default::default(),
        exchange,
        jump: std::sync::Mutex::new(None),
    };
    let place = crate::driver::Placement {
        inline: cfg.engine.scheme == Scheme::Sequential,
        pin: cfg.engine.pin && !cfg.engine.oversubscribed(),
    };
    let (driven, history) =
        crate::driver::run_task(&task, &plan, stop, place, &mut |ev| match ev {
            crate::driver::Event::Done { epoch, done } => {
                progress(Progress::Examples { epoch, done })
            }
            crate::driver::Event::Epoch(rep) => progress(Progress::Epoch(rep)),
        })?;
    task.finish(history, driven, base_lr, l2_form, &params)
}

/// What the workers of a run share, from its kernel, parameters and layout: the merge
/// interval, batch, rates and counters (the derived settings, computed once).
fn shared_state<'a, O: Optimizer>(
    kernel: Kernel<'a, O>,
    params: &'a SharedParams,
    cfg: &'a TrainConfig,
    train: &SparseDataset,
    threads: usize,
    lay: Layout,
    lambda: f64,
) -> Shared<'a, O> {
    let n = train.rows();
    let (coords, stride) = (params.coords(), params.stride());
    // A replica merges at the end of every epoch anyway: an interval longer than a
    // thread's share of the epoch is bounded by it (and reported as such).
    let sync_every = cfg
        .engine
        .sync_interval(
            lay.whole,
            coords,
            stride,
            train.nnz() as f64 / n.max(1) as f64,
            threads,
        )
        .min(n.div_ceil(threads).max(1));
    let batch = if cfg.batch_size == 0 {
        n
    } else {
        cfg.batch_size.min(n)
    };
    Shared {
        kernel,
        params,
        cfg,
        threads,
        block: cfg.engine.block_for(n),
        batch,
        lazy_lambda: if lay.l2_form == L2Form::Lazy {
            lambda
        } else {
            0.0
        },
        bottou: if cfg.effective_schedule() == Schedule::Bottou {
            lambda
        } else {
            0.0
        },
        hot: lay.hot,
        hot_list: lay.hot_list,
        whole: lay.whole,
        merge_weight: kernel::merge_weights(&lay.deg, n, threads),
        sync_every: sync_every as u64,
        lock: std::sync::Mutex::new(()),
        turn: Default::default(),
        rr_rounds: (0..threads)
            .map(|w| ((w + 1) * n / threads - w * n / threads).div_ceil(batch))
            .max()
            .unwrap_or(0),
        done: Default::default(),
        clock: Default::default(),
    }
}

/// A job for a worker thread: epoch, rate, per-example losses (curriculum orders), round.
type Job = (usize, f32, Option<Arc<Vec<f32>>>, usize);

/// A linear model as a task of the engine: the kernel and the shared parameters, the
/// training and validation data.
struct Linear<'a, O: Optimizer> {
    shared: &'a Shared<'a, O>,
    train: &'a SparseDataset,
    valid: Option<&'a SparseDataset>,
    cfg: &'a TrainConfig,
    lambda: f64,
    coords: usize,
    /// The last epoch's averaged weights (bias last), once averaging has started.
    averaged: std::sync::Mutex<Option<Vec<f32>>>,
    /// Whether any epoch's model was an average.
    averaged_once: std::sync::atomic::AtomicBool,
    /// The exchange with other ranks, in a run across processes.
    exchange: Option<&'a dyn Exchange>,
    /// The last exchange's change of the weights U (bias last) and the epoch that follows
    /// it: each worker's average absorbs it at that epoch's start (A −= β·ΔU), so that
    /// the jump does not enter the average of the iterates.
    jump: std::sync::Mutex<Option<Jump>>,
}

/// A change of the shared weights by an exchange across processes, and the (epoch,
/// round) at whose start the workers' averages absorb it.
type Jump = ((usize, usize), Arc<Vec<f32>>);

/// The best epoch's weights (bias last) and validation metrics, under early stopping.
pub(super) type Kept = (Vec<f32>, Option<Metrics>);

impl<O: Optimizer> crate::driver::Task for Linear<'_, O> {
    type Worker = WorkerState;
    type Job = Job;
    type Part = EpochPart;
    type Kept = Kept;
    type Report = EpochReport;

    fn workers(&self) -> Vec<WorkerState> {
        (0..self.shared.threads)
            .map(|w| WorkerState {
                id: w,
                rng: Xoshiro256PlusPlus::seed_from_u64(
                    self.cfg.seed ^ 0xA5A5_5A5A ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                perm: Vec::new(),
                scratch: (self.shared.batch > 1).then(|| BatchScratch::new(self.coords)),
                t: 0,
                scale: 1.0,
                queue: DelayQueue::default(),
                replica: Default::default(),
                avg: kernel::Averager {
                    a: if self.cfg.average.is_some() {
                        vec![0.0; self.coords]
                    } else {
                        Vec::new()
                    },
                    // In the clock the thread averages by: its own updates on a replica
                    // or alone, the global count on shared weights.
                    start: self.cfg.average.map_or(u64::MAX, |e| {
                        let rows = if self.shared.whole || self.shared.threads == 1 {
                            (w + 1) * self.train.rows() / self.shared.threads
                                - w * self.train.rows() / self.shared.threads
                        } else {
                            self.train.rows()
                        };
                        // Saturating: a start past any run's end never averages.
                        ((e * rows as f64 / self.shared.batch as f64) as u64).saturating_add(1)
                    }),
                    ..Default::default()
                },
                clock: 0,
            })
            .collect()
    }

    fn job(&self, epoch: usize, lr: f32) -> Job {
        let (cfg, train) = (self.cfg, self.train);
        let losses = cfg.order.needs_losses().then(|| {
            let m = snapshot(self.shared.params, cfg, train);
            let s = m.scores(train);
            Arc::new(
                s.iter()
                    .zip(train.y())
                    .map(|(&z, &y)| cfg.loss.loss(z, y))
                    .collect::<Vec<f32>>(),
            )
        });
        self.shared
            .done
            .store(0, std::sync::atomic::Ordering::Relaxed);
        // Every worker is idle between epochs, so the turn can restart at 0.
        self.shared
            .turn
            .store(0, std::sync::atomic::Ordering::Relaxed);
        (epoch, lr, losses, 0)
    }

    fn rounds(&self) -> usize {
        self.exchange.map_or(1, |x| x.rounds())
    }

    fn round(&self, job: &Job, round: usize) -> Job {
        (job.0, job.1, job.2.clone(), round)
    }

    fn between(&self, epoch: usize, round: usize) -> Result<()> {
        let Some(x) = self.exchange else {
            return Ok(());
        };
        let params = self.shared.params;
        let mut iterate = params.weights();
        let before = iterate.clone();
        x.exchange_iterate(epoch, round, &mut iterate)?;
        self.jump_to(&before, &iterate, (epoch, round + 1));
        Ok(())
    }

    fn work(&self, ws: &mut WorkerState, job: Job, _tick: &mut dyn FnMut(usize)) -> EpochPart {
        let (n, threads) = (self.train.rows(), self.shared.threads);
        let share = ws.id * n / threads..(ws.id + 1) * n / threads;
        let (epoch, lr, losses, round) = job;
        if ws.avg.on {
            let jump = self.jump.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some((at, dw)) = jump
                && at == (epoch, round)
            {
                let beta = ws.avg.beta;
                ws.avg
                    .a
                    .iter_mut()
                    .zip(dw.iter())
                    .for_each(|(a, &d)| *a -= beta * f64::from(d));
            }
        }
        let rounds = self.rounds();
        let mut part = worker_epoch(
            self.shared,
            ws,
            (epoch, round, rounds),
            lr,
            share,
            losses.as_deref().map(|v| &v[..]),
        );
        part.last = round + 1 == rounds;
        if !part.last {
            part.avg = None;
        }
        part
    }

    fn done(&self) -> usize {
        self.shared.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn end_epoch(
        &self,
        epoch: usize,
        lr: f32,
        keep: bool,
        parts: Vec<EpochPart>,
        seconds: f64,
    ) -> Result<(crate::driver::Epoch<Kept>, EpochReport)> {
        let (cfg, train, params) = (self.cfg, self.train, self.shared.params);
        let mut sums = [
            parts.iter().map(|p| p.loss.total()).sum(),
            parts.iter().map(|p| p.updates as f64).sum(),
            train.rows() as f64,
            train.nnz() as f64,
        ];
        if let Some(x) = self.exchange {
            x.sum(&mut sums)?;
        }
        let [total_loss, updates, rows, nnz] = sums;
        let updates = updates as u64;
        let train_loss = total_loss / rows;
        let diverged = |what| Error::Diverged {
            epoch: epoch + 1,
            lr,
            l2: self.lambda,
            what,
        };
        if !train_loss.is_finite() {
            return Err(diverged("the training loss is"));
        }
        let mut model = snapshot(params, cfg, train);
        let averaged = self.average(&parts);
        if averaged.is_some() {
            self.averaged_once
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let comm = match self.exchange {
            Some(x) => {
                let mut iterate = params.weights();
                let mut w = averaged.unwrap_or_else(|| iterate.clone());
                let before = iterate.clone();
                x.exchange(epoch, &mut iterate, &mut w)?;
                self.jump_to(&before, &iterate, (epoch + 1, 0));
                set_weights(&mut model, &w, cfg.bias);
                *self.averaged.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                Some(x.stats())
            }
            None => {
                if let Some(w) = averaged {
                    set_weights(&mut model, &w, cfg.bias);
                    *self.averaged.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
                }
                None
            }
        };
        // A loss can stay finite while weights overflow (the hinge's is 0 once every
        // margin is huge): check the parameters themselves too.
        if !model.is_finite() {
            return Err(diverged("the weights are"));
        }
        let m = match self.valid.map(|v| metrics::evaluate(&model, v)).transpose() {
            Err(Error::NonFiniteScore { .. }) => {
                return Err(diverged("the scores on the test data are"));
            }
            other => other?,
        };
        let obj = match self.exchange {
            // The mean loss over every rank's shard, and the penalty once.
            Some(x) => {
                let mut s = [objective(&model, train, 0.0, 0.0) * train.rows() as f64];
                x.sum(&mut s)?;
                s[0] / rows + penalty(&model, self.lambda, cfg.l1)
            }
            None => objective(&model, train, self.lambda, cfg.l1),
        };
        let rep = EpochReport {
            epoch: epoch + 1,
            seconds,
            lr,
            train_loss,
            objective: obj,
            duality_gap: None,
            test_loss: m.map(|m| m.loss),
            test_accuracy: m.map(|m| m.accuracy),
            test_auc: m.and_then(|m| m.auc),
            updates,
            nnz: nnz as u64,
            nnz_per_sec: nnz / seconds.max(1e-12),
            comm,
        };
        let ep = crate::driver::Epoch {
            seconds,
            train: train_loss,
            valid: m.map(|m| m.loss),
            // `tol` compares epochs once the average has run a whole epoch: the epoch in
            // which it restarts at the iterate says nothing about convergence.
            objective: cfg
                .average
                .is_none_or(|s| epoch as f64 >= s.ceil() + 1.0)
                .then_some(obj),
            gap: None,
            model: keep.then(|| {
                let mut w = model.weights;
                w.push(model.bias);
                (w, m)
            }),
        };
        Ok((ep, rep))
    }
}

/// Puts weights `w` (the bias last, when there is one) into `model`.
fn set_weights(model: &mut LinearModel, w: &[f32], bias: bool) {
    let d = model.weights.len();
    model.weights.copy_from_slice(&w[..d]);
    model.bias = if bias { w[d] } else { 0.0 };
}

impl<O: Optimizer> Linear<'_, O> {
    /// Sets the shared weights from `before` to `after` (an exchange's result) and leaves
    /// the change for each worker's average to absorb at the start of (epoch, round) `at`.
    fn jump_to(&self, before: &[f32], after: &[f32], at: (usize, usize)) {
        let dw: Vec<f32> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        for (j, &v) in after.iter().enumerate() {
            self.shared.params.set(j, 0, v);
        }
        *self.jump.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, Arc::new(dw)));
    }

    /// The average of the iterates (bias last), once every thread has started it:
    /// w̄ = (Σ_threads A + β·U)/γ with the threads' mean β and γ (equal with one thread;
    /// estimates of the same global count with several), U the shared weights.
    /// With replicas, each thread averages its own iterates and the model is the mean of
    /// the threads' averages (ALGORITHMS.md §12.2).
    fn average(&self, parts: &[EpochPart]) -> Option<Vec<f32>> {
        let avgs: Vec<&AvgPart> = parts
            .iter()
            .filter(|p| p.last)
            .map(|p| p.avg.as_ref())
            .collect::<Option<_>>()?;
        let t = avgs.len() as f64;
        let params = self.shared.params;
        let mut w = vec![0f64; self.coords];
        let (mut beta, mut gamma) = (0.0, 0.0);
        for a in &avgs {
            match a {
                AvgPart::Own(v) => w.iter_mut().zip(v).for_each(|(x, y)| *x += y / t),
                AvgPart::Shared(v, b, g) => {
                    w.iter_mut().zip(v).for_each(|(x, y)| *x += y);
                    beta += b / t;
                    gamma += g / t;
                }
            }
        }
        if gamma > 0.0 {
            for (j, x) in w.iter_mut().enumerate() {
                *x = (*x + beta * f64::from(params.get(j, 0))) / gamma;
            }
        }
        Some(w.into_iter().map(|x| x as f32).collect())
    }

    /// The model to return (the best epoch's under early stopping), checked on the
    /// training rows, with its summary and metadata.
    fn finish(
        &self,
        history: Vec<EpochReport>,
        driven: crate::driver::Driven<Kept>,
        base_lr: f32,
        l2_form: L2Form,
        params: &SharedParams,
    ) -> Result<TrainOutcome> {
        let (cfg, train, d) = (self.cfg, self.train, self.train.cols());
        let (mut model, best_epoch, final_metrics) = match driven.best {
            Some((_, e, (w, m))) => {
                let mut model = snapshot(params, cfg, train);
                model.bias = if cfg.bias { w[d] } else { 0.0 };
                model.weights = w[..d].to_vec();
                (model, e, m)
            }
            None => {
                let mut model = snapshot(params, cfg, train);
                if let Some(w) = self
                    .averaged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    set_weights(&mut model, &w, cfg.bias);
                }
                let m = self
                    .valid
                    .map(|v| metrics::evaluate(&model, v))
                    .transpose()?;
                (model, driven.epochs, m)
            }
        };
        // Finite weights can still overflow a score on the training rows themselves
        // (huge feature values): such a model could not predict its own data.
        if model.scores(train).iter().any(|z| !z.is_finite()) {
            return Err(Error::Diverged {
                epoch: best_epoch,
                lr: driven.scheduler.rate(best_epoch.saturating_sub(1)),
                l2: self.lambda,
                what: "the scores on the training data are",
            });
        }
        let sh = self.shared;
        let done = DoneReport {
            model: cfg.loss.name(),
            optimizer: cfg.optimizer.name(),
            scheme: cfg.engine.scheme.name(),
            threads: sh.threads,
            oversubscribed: sh.threads > crate::engine::cores(),
            epochs: history.len(),
            train_seconds: driven.train_seconds,
            objective: history
                .iter()
                .find(|r| r.epoch == best_epoch)
                .map_or(f64::NAN, |r| r.objective),
            duality_gap: None,
            converged: driven.converged,
            averaged: self
                .averaged_once
                .load(std::sync::atomic::Ordering::Relaxed),
            test_loss: final_metrics.map(|m| m.loss),
            test_accuracy: final_metrics.map(|m| m.accuracy),
            test_auc: final_metrics.and_then(|m| m.auc),
            stopped_early: driven.stopped_early,
            stopped_by_caller: driven.stopped_by_caller,
            best_epoch,
            lr: base_lr,
            lr_calibrated: false,
            l2: self.lambda,
            l2_form,
            replicated: sh.hot_list.len(),
            merge_every: (!sh.hot_list.is_empty()).then_some(sh.sync_every),
            shuffle_block: sh.block,
            comm: self.exchange.map(|x| {
                history
                    .iter()
                    .filter_map(|r| r.comm)
                    .fold(x.stats(), CommStats::plus)
            }),
        };
        model.meta = serde_json::json!({
            "optimizer": cfg.optimizer,
            "lr": base_lr,
            "schedule": cfg.effective_schedule(),
            "l2": self.lambda,
            "l1": cfg.l1,
            "l2_form": l2_form,
            "epochs": history.len(),
            "best_epoch": best_epoch,
            "train_rows": train.rows(),
            "seed": cfg.seed,
            "scheme": cfg.engine.scheme,
            "threads": sh.threads,
            "wildsgd": env!("CARGO_PKG_VERSION"),
        });
        Ok(TrainOutcome {
            model,
            epochs: history,
            done,
        })
    }
}

/// How a run lays out its parameters among threads.
struct Layout {
    /// Rows holding each coordinate (the bias: all).
    deg: Vec<u32>,
    /// Byte per coordinate, 1 when each thread replicates it, and their list.
    hot: Vec<u8>,
    hot_list: Vec<u32>,
    /// The whole model is replicated.
    whole: bool,
    /// The L2 form in force.
    l2_form: L2Form,
}

/// Coordinate degrees, the replicated set and the L2 form for `threads` threads.
fn layout(
    cfg: &TrainConfig,
    train: &SparseDataset,
    threads: usize,
    stride: usize,
) -> Result<Layout> {
    let (n, d) = (train.rows(), train.cols());
    let coords = d + usize::from(cfg.bias);
    let mut deg = crate::memory::filled(
        coords,
        0u32,
        "the features' degrees",
        "renumber the features densely or read fewer with `n_features`",
    )?;
    for &j in train.x().indices() {
        deg[j as usize] += 1;
    }
    if cfg.bias {
        deg[d] = n as u32;
    }
    let e = &cfg.engine;
    let replicate = if e.scheme == Scheme::Hogwild && !e.lossless && e.delay == 0 {
        // An average runs over whole-model replicas (each thread averages its own
        // iterates) or over the shared weights, not over a mix of the two.
        match (cfg.average, e.replicate) {
            (Some(_), Replication::Auto | Replication::Top(_)) => Replication::All,
            (_, r) => r,
        }
    } else {
        crate::engine::Replication::None
    };
    let (hot, hot_list) = crate::engine::hot_set(replicate, threads, &deg, n, stride);
    let whole = !hot_list.is_empty() && hot_list.len() == coords;
    // One global scale is a single writer's trick: it works for one thread, and for
    // threads with whole-model replicas (each keeps its own scale and folds it in at
    // every merge). Otherwise (shared coordinates, a delay queue) L2 takes Hogwild!'s
    // degree-scaled form.
    let l2_form = if (threads > 1 && !whole) || e.delay > 0 || e.scheme == Scheme::DelayTolerant {
        L2Form::Degree
    } else {
        cfg.l2_form
    };
    Ok(Layout {
        deg,
        hot,
        hot_list,
        whole,
        l2_form,
    })
}

/// Checks the dense per-coordinate arrays of a run against the memory budget: the
/// shared parameters, degrees and L2 factors, two weight snapshots, replicas and
/// mini-batch gradients, per thread.
fn check_memory(cfg: &TrainConfig, coords: usize, stride: usize, threads: usize) -> Result<()> {
    // A thread with a replica (of the whole model or of hot coordinates) keeps two
    // dense copies of the parameters: its own values and those of its last merge.
    let e = &cfg.engine;
    let replicas = if threads > 1
        && e.scheme == Scheme::Hogwild
        && !e.lossless
        && e.delay == 0
        && e.replicate != crate::engine::Replication::None
    {
        2 * threads as u64
    } else {
        0
    };
    let batch = if cfg.batch_size == 1 {
        0
    } else {
        8 * threads as u64
    };
    // Parameters and replicas; degrees, degree scales, L2 factors, merge weights (4
    // each), the hot-set flags (1); three weight vectors for snapshots and the best
    // epoch (12); mini-batch gradients.
    let per_coord = 4 * stride as u64 * (1 + replicas) + 17 + 12 + batch;
    crate::memory::check_threads(threads)?;
    crate::memory::check(
        format!(
            "a model of {coords} features × {stride} values each ({threads} thread{})",
            if threads == 1 { "" } else { "s" }
        ),
        // A quarter more for what is not counted (allocator slack, evaluation buffers).
        crate::memory::bytes_of(&[coords as u64, per_coord]).saturating_mul(5) / 4,
        "the largest feature index sets the model's size: renumber the features densely (or drop the rare ones), read fewer with `n_features`, use fewer `threads` or `replicate` none, or raise `max_memory`",
    )
}

/// One worker's pass over its share of the rows for one epoch.
fn worker_epoch<O: Optimizer>(
    sh: &Shared<'_, O>,
    ws: &mut WorkerState,
    (epoch, round, rounds): (usize, usize, usize),
    lr: f32,
    rows: std::ops::Range<usize>,
    losses: Option<&[f32]>,
) -> EpochPart {
    // Worker 0 uses the run's seed itself, so one hogwild thread walks the same order as
    // the sequential scheme. The order is drawn at an epoch's first round; round r of R
    // walks its r-th part.
    if round == 0 {
        let seed = sh.cfg.seed ^ (ws.id as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        order::epoch_order(
            sh.cfg.order,
            &mut ws.perm,
            rows,
            sh.block,
            seed,
            epoch,
            losses,
        );
    }
    let all = std::mem::take(&mut ws.perm);
    let n = all.len();
    let perm = &all[round * n / rounds..(round + 1) * n / rounds];
    let mut part = EpochPart::default();
    if sh.cfg.engine.scheme == Scheme::DelayTolerant {
        delay_tolerant_epoch(sh, ws, perm, lr, &mut part);
    } else if sh.cfg.engine.delay > 0 {
        delayed_epoch(sh, ws, perm, lr, &mut part);
    } else if sh.whole && sh.cfg.average.is_some() {
        averaged_replica_epoch(sh, ws, perm, lr, &mut part);
    } else if sh.whole {
        let bufs = std::mem::take(&mut ws.replica);
        let mut store = kernel::Local(kernel::Replica::reuse(
            sh.params,
            &sh.hot,
            &sh.hot_list,
            &sh.merge_weight,
            bufs,
        ));
        plain_epoch(sh, ws, perm, lr, &mut store, &mut part, true);
        store.sync(ws.scale as f32);
        ws.scale = 1.0;
        ws.replica = store.0.into_buffers();
    } else if !sh.hot_list.is_empty() {
        let bufs = std::mem::take(&mut ws.replica);
        let mut store =
            kernel::Replica::reuse(sh.params, &sh.hot, &sh.hot_list, &sh.merge_weight, bufs);
        plain_epoch(sh, ws, perm, lr, &mut store, &mut part, true);
        store.sync();
        ws.replica = store.into_buffers();
    } else if sh.cfg.average.is_some() {
        let mut avg = std::mem::take(&mut ws.avg);
        let stride = sh.params.stride();
        // Each thread's A records the changes it makes; their sum is the change of the
        // shared U only if no update is lost: several threads write with CAS.
        if sh.cfg.engine.lossless || sh.threads > 1 {
            let mut store = kernel::Averaged::new(kernel::Cas(sh.params), &mut avg, stride);
            plain_epoch(sh, ws, perm, lr, &mut store, &mut part, false);
        } else {
            let mut store = kernel::Averaged::new(kernel::Direct(sh.params), &mut avg, stride);
            plain_epoch(sh, ws, perm, lr, &mut store, &mut part, false);
        }
        ws.avg = avg;
    } else if sh.cfg.engine.lossless {
        plain_epoch(
            sh,
            ws,
            perm,
            lr,
            &mut kernel::Cas(sh.params),
            &mut part,
            false,
        );
    } else {
        plain_epoch(
            sh,
            ws,
            perm,
            lr,
            &mut kernel::Direct(sh.params),
            &mut part,
            false,
        );
    }
    ws.perm = all;
    // A lone worker's lazy-L2 scale is folded back so the parameters hold the true
    // weights (replicas fold theirs at each merge; with shared coordinates and several
    // threads there is no lazy scale).
    if ws.scale != 1.0 {
        ws.avg.absorb(|j| sh.params.get(j, 0));
        sh.params.scale_weights(ws.scale as f32);
        ws.scale = 1.0;
    }
    if ws.avg.on && part.avg.is_none() {
        part.avg = Some(AvgPart::Shared(ws.avg.a.clone(), ws.avg.beta, ws.avg.gamma));
    }
    part
}

/// An averaged epoch on a whole-model replica: the thread averages its own iterates,
/// the jumps of its replica (taking the shared values at the start, merges) recorded in
/// the average like updates; its average goes into `part`.
fn averaged_replica_epoch<O: Optimizer>(
    sh: &Shared<'_, O>,
    ws: &mut WorkerState,
    perm: &[u32],
    lr: f32,
    part: &mut EpochPart,
) {
    let stride = sh.params.stride();
    let bufs = std::mem::take(&mut ws.replica);
    let mut avg = std::mem::take(&mut ws.avg);
    // The replica as the last epoch left it (after its final merge: scale 1) is about
    // to take the shared values.
    if !bufs.0.is_empty() {
        avg.absorb(|j| bufs.0[j * stride]);
    }
    let local = kernel::Local(kernel::Replica::reuse(
        sh.params,
        &sh.hot,
        &sh.hot_list,
        &sh.merge_weight,
        bufs,
    ));
    let mut store = kernel::Averaged::new(local, &mut avg, stride);
    plain_epoch(sh, ws, perm, lr, &mut store, part, true);
    ws.scale = store.sync_replica(ws.scale);
    if store.avg.on {
        part.avg = Some(AvgPart::Own(store.avg.mean(&store.inner, stride)));
    }
    ws.replica = store.inner.0.into_buffers();
    ws.avg = avg;
}

/// Updates, with or without a replica; under `locked` each one holds the global lock.
fn plain_epoch<O: Optimizer, S: kernel::Store + Syncable>(
    sh: &Shared<'_, O>,
    ws: &mut WorkerState,
    perm: &[u32],
    lr: f32,
    store: &mut S,
    part: &mut EpochPart,
    replica: bool,
) {
    let locked = sh.cfg.engine.scheme == Scheme::Locked;
    let round_robin = sh.cfg.engine.scheme == Scheme::RoundRobin;
    let threads = sh.threads as u64;
    let sync_every = sh.sync_every;
    // Under round-robin every thread takes the same number of turns (the longest share's
    // update count); a thread whose share is used up just passes its turn.
    let rounds = if round_robin {
        sh.rr_rounds
    } else {
        perm.len().div_ceil(sh.batch)
    };
    let mut chunks = perm.chunks(sh.batch);
    for round in 0..rounds {
        if round_robin {
            wait_turn(&sh.turn, round as u64 * threads + ws.id as u64);
        }
        let Some(rows) = chunks.next() else {
            if round_robin {
                sh.turn.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            continue;
        };
        let lr = sh.rate(lr, ws.t * threads);
        ws.t += 1;
        if sh.lazy_lambda > 0.0 && ws.scale * (1.0 - f64::from(lr) * sh.lazy_lambda) < 1e-4 {
            // Fold the scale into the weights before v grows large.
            ws.scale = store.fold(sh.params, ws.scale);
        }
        let before = ws.scale;
        if sh.lazy_lambda > 0.0 {
            ws.scale *= 1.0 - f64::from(lr) * sh.lazy_lambda;
        }
        // The global update count, for bias correction and noise annealing: exact with
        // one thread, estimated as this thread's count times the threads otherwise.
        let step = step_for(
            &sh.kernel,
            lr,
            ws.t * threads,
            before as f32,
            ws.scale as f32,
        );
        let _guard = locked.then(|| sh.lock.lock().unwrap_or_else(|e| e.into_inner()));
        update(
            &sh.kernel,
            store,
            rows,
            &step,
            ws.scratch.as_mut(),
            &mut ws.rng,
            &mut part.loss,
        );
        drop(_guard);
        if sh.cfg.average.is_some() {
            // A replica averages its own iterates (its own count); threads sharing the
            // weights average the one global sequence (the global count).
            let t = if threads == 1 || replica {
                ws.t
            } else {
                if ws.t.is_multiple_of(CLOCK_TICK) {
                    ws.clock = sh
                        .clock
                        .fetch_add(CLOCK_TICK, std::sync::atomic::Ordering::Relaxed)
                        + CLOCK_TICK;
                }
                ws.clock + ws.t % CLOCK_TICK
            };
            store.after_update(t, ws.scale);
        }
        if round_robin {
            // Release: the next thread's Acquire load of the turn sees this update.
            sh.turn.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        part.updates += 1;
        if replica && ws.t.is_multiple_of(sync_every) {
            ws.scale = store.sync_replica(ws.scale);
        }
        if ws.t & 4095 == 0 {
            sh.done
                .fetch_add(4096 * rows.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Waits until the round-robin turn counter reaches `target`: a short spin, then
/// yielding the core (so oversubscribed runs still make progress).
fn wait_turn(turn: &std::sync::atomic::AtomicU64, target: u64) {
    let mut spins = 0u32;
    while turn.load(std::sync::atomic::Ordering::Acquire) != target {
        if spins < 128 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// Merging replicas and folding a lazy-L2 scale, per kind of store.
trait Syncable {
    /// Merges a replica (others: nothing); returns the scale left to apply.
    fn sync_replica(&mut self, scale: f64) -> f64 {
        scale
    }
    /// Folds the lazy-L2 scale into the weights this thread sees; returns 1.
    fn fold(&mut self, params: &SharedParams, scale: f64) -> f64 {
        params.scale_weights(scale as f32);
        1.0
    }
    /// After global update `t` with lazy-L2 scale `scale` (averaging stores only).
    #[inline(always)]
    fn after_update(&mut self, _t: u64, _scale: f64) {}
}
impl<S: kernel::Store + Syncable> Syncable for kernel::Averaged<'_, S> {
    fn sync_replica(&mut self, scale: f64) -> f64 {
        self.jump(|s| s.sync_replica(scale))
    }
    fn fold(&mut self, params: &SharedParams, scale: f64) -> f64 {
        self.jump(|s| s.fold(params, scale))
    }
    #[inline(always)]
    fn after_update(&mut self, t: u64, scale: f64) {
        self.avg.after_update(t, scale);
    }
}
impl Syncable for kernel::Direct<'_> {}
impl Syncable for kernel::Cas<'_> {}
impl Syncable for kernel::Local<'_> {
    fn sync_replica(&mut self, scale: f64) -> f64 {
        self.sync(scale as f32);
        1.0
    }
    fn fold(&mut self, _params: &SharedParams, scale: f64) -> f64 {
        self.sync(scale as f32);
        1.0
    }
}
impl Syncable for kernel::Replica<'_> {
    fn sync_replica(&mut self, scale: f64) -> f64 {
        debug_assert_eq!(scale, 1.0, "hot-coordinate replicas use the degree L2 form");
        self.sync();
        scale
    }
}

/// Plain optimizers with each thread's gradients applied `delay` of its updates after
/// they were computed (from the parameters as they were then).
fn delayed_epoch<O: Optimizer>(
    sh: &Shared<'_, O>,
    ws: &mut WorkerState,
    perm: &[u32],
    lr: f32,
    part: &mut EpochPart,
) {
    let delay = sh.cfg.engine.delay;
    let mut store = kernel::Direct(sh.params);
    let k = &sh.kernel;
    for &r in perm {
        let lr_t = sh.rate(lr, ws.t * sh.threads as u64);
        ws.t += 1;
        let step = step_for(k, lr_t, ws.t * sh.threads as u64, 1.0, 1.0);
        let z = k.score(&store, r as usize, 1.0);
        let (linear, factor, dl) = k.loss.loss_parts_and_dloss(z, k.labels[r as usize]);
        part.loss.add(linear, factor);
        ws.queue.items.push_back((r, dl, 0));
        if ws.queue.items.len() > delay {
            let (r, dl, _) = ws.queue.items.pop_front().expect("non-empty");
            k.apply_row(&mut store, r as usize, dl, &step, &mut ws.rng);
        }
        part.updates += 1;
    }
    let step = step_for(
        k,
        sh.rate(lr, ws.t * sh.threads as u64),
        ws.t * sh.threads as u64,
        1.0,
        1.0,
    );
    while let Some((r, dl, _)) = ws.queue.items.pop_front() {
        k.apply_row(&mut store, r as usize, dl, &step, &mut ws.rng);
    }
}

/// AdaptiveRevision: each gradient is computed with the ḡ values read beside the
/// weights, and applied (after `delay` of this thread's updates) with the backlog
/// correction of `engine::adaptive_revision`. L2 is added to the gradient in the
/// degree-scaled form, from the weight at apply time.
fn delay_tolerant_epoch<O: Optimizer>(
    sh: &Shared<'_, O>,
    ws: &mut WorkerState,
    perm: &[u32],
    lr: f32,
    part: &mut EpochPart,
) {
    let delay = sh.cfg.engine.delay;
    let k = &sh.kernel;
    let p = sh.params;
    let eps = match sh.cfg.optimizer {
        OptimizerKind::AdaGrad(a) => a.eps,
        _ => 1e-8,
    };
    let coords_of = |r: usize| {
        let (lo, hi) = (k.indptr[r], k.indptr[r + 1]);
        k.indices[lo..hi]
            .iter()
            .zip(&k.values[lo..hi])
            .map(|(&j, &x)| (j as usize, x))
            .chain(k.bias.map(|b| (b, 1.0)))
    };
    let apply = |r: usize, dl: f32, gbar: &[f32]| {
        for ((j, x), &g_old) in coords_of(r).zip(gbar) {
            let slots = [p.get(j, 0), p.get(j, 1), p.get(j, 2), p.get(j, 3)];
            let mut g = dl * x;
            if let Some(l2) = k.l2_degree {
                g += l2[j] * slots[0];
            }
            let new = crate::engine::adaptive_revision(slots, g, g_old, lr, eps);
            for (s, v) in new.into_iter().enumerate() {
                p.set(j, s, v);
            }
        }
    };
    for &r in perm {
        let r = r as usize;
        ws.t += 1;
        let z: f32 = coords_of(r).map(|(j, x)| p.get(j, 0) * x).sum();
        let (linear, factor, dl) = k.loss.loss_parts_and_dloss(z, k.labels[r]);
        part.loss.add(linear, factor);
        // Read ḡ for every coordinate of the row, as the worker saw it, and queue the
        // gradient; apply the ones more than `delay` updates old (with no delay: this one).
        let off = ws.queue.gbar.len();
        ws.queue.gbar.extend(coords_of(r).map(|(j, _)| p.get(j, 1)));
        ws.queue.items.push_back((r as u32, dl, off));
        if ws.queue.items.len() > delay {
            let (r0, dl0, off0) = ws.queue.items.pop_front().expect("non-empty");
            // `apply` zips the row's coordinates with the ḡ values, so the slice may run on.
            apply(r0 as usize, dl0, &ws.queue.gbar[off0..]);
        }
        // Keep the ḡ buffer from growing without bound: compact it when the oldest
        // pending entry is far from its start (or at once when nothing is pending).
        let first = ws
            .queue
            .items
            .front()
            .map_or(ws.queue.gbar.len(), |it| it.2);
        if first > 1 << 20 || ws.queue.items.is_empty() {
            ws.queue.gbar.drain(..first);
            ws.queue.items.iter_mut().for_each(|it| it.2 -= first);
        }
        part.updates += 1;
    }
    while let Some((r0, dl0, off0)) = ws.queue.items.pop_front() {
        apply(r0 as usize, dl0, &ws.queue.gbar[off0..]);
    }
    ws.queue.gbar.clear();
}

fn step_for<O: Optimizer>(
    k: &Kernel<'_, O>,
    lr: f32,
    t: u64,
    before: f32,
    after: f32,
) -> Step<O::Ctx> {
    let noise_sd = k.noise.map_or(0.0, |(eta, gamma)| {
        (eta / (1.0 + t as f32).powf(gamma)).sqrt()
    });
    Step {
        ctx: k.opt.ctx(lr, t),
        lr,
        scale_before: before,
        scale_after: after,
        inv_scale_after: 1.0 / after,
        noise_sd,
    }
}

#[inline]
fn update<O: Optimizer, S: kernel::Store>(
    k: &Kernel<'_, O>,
    p: &mut S,
    rows: &[u32],
    step: &Step<O::Ctx>,
    scratch: Option<&mut BatchScratch>,
    rng: &mut Xoshiro256PlusPlus,
    loss: &mut LossSum,
) {
    let r = rows[0] as usize;
    // One branch per example picks the monomorphized inner loop.
    match (
        scratch,
        k.is_plain(),
        step.scale_after != 1.0 || step.scale_before != 1.0,
    ) {
        (None, true, false) => k.example::<_, _, true, false>(p, r, step, rng, loss),
        (None, true, true) => k.example::<_, _, true, true>(p, r, step, rng, loss),
        (None, false, _) => k.example::<_, _, false, true>(p, r, step, rng, loss),
        (Some(sc), _, _) => k.batch(p, rows, step, sc, rng, loss),
    }
}

/// The current model (weights and bias as the shared parameters hold them).
fn snapshot(p: &SharedParams, cfg: &TrainConfig, train: &SparseDataset) -> LinearModel {
    let d = train.cols();
    let mut w = p.weights();
    let bias = if cfg.bias {
        w.pop().unwrap_or(0.0)
    } else {
        0.0
    };
    w.truncate(d);
    LinearModel {
        loss: cfg.loss,
        weights: w,
        bias,
        meta: serde_json::Value::Null,
        index_base: train.index_base(),
        classes: train.classes(),
    }
}
