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

mod kernel;
mod order;

use std::time::Instant;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

pub use order::Order;

use crate::data::SparseDataset;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};
use crate::model::{LinearModel, LossKind};
use crate::optim::{Optimizer, OptimizerKind};
use crate::params::SharedParams;
use crate::schedule::{Schedule, Scheduler};
use kernel::{BatchScratch, Kernel, LossSum, Step};

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
            Schedule::InvTime { k: 1.0 }
        })
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
        if let Some(lr) = self.lr
            && !(lr > 0.0 && lr.is_finite())
        {
            return Err(Error::config(
                "lr",
                format!("must be a positive number, got {lr}"),
            ));
        }
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if let Some(l2) = self.l2
            && !(l2 >= 0.0 && l2.is_finite())
        {
            return Err(Error::config(
                "l2",
                format!("must be a non-negative number, got {l2}"),
            ));
        }
        if !(self.l1 >= 0.0 && self.l1.is_finite()) {
            return Err(Error::config(
                "l1",
                format!("must be a non-negative number, got {}", self.l1),
            ));
        }
        if !(self.grad_noise >= 0.0 && self.grad_noise.is_finite()) {
            return Err(Error::config("grad-noise", "must be a non-negative number"));
        }
        if !(self.grad_noise_gamma >= 0.0 && self.grad_noise_gamma.is_finite()) {
            return Err(Error::config(
                "grad-noise-gamma",
                "must be a non-negative number",
            ));
        }
        if self.early_stop == Some(0) {
            return Err(Error::config("early-stop", "patience must be at least 1"));
        }
        self.optimizer.check()?;
        self.effective_schedule().check()
    }
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
    /// Mean loss of the examples before each was trained on (progressive validation).
    pub train_loss: f64,
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
    /// Epochs run.
    pub epochs: usize,
    /// Total training time (no parsing, no evaluation).
    pub train_seconds: f64,
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
    /// Epoch whose model is returned (the best one under early stopping).
    pub best_epoch: usize,
    /// Learning rate (base) used.
    pub lr: f32,
    /// L2 strength used.
    pub l2: f64,
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
pub fn fit(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<TrainOutcome> {
    cfg.check()?;
    if cfg.early_stop.is_some() && valid.is_none() {
        return Err(Error::config(
            "early-stop",
            "needs validation data (--test or --holdout)",
        ));
    }
    crate::with_optimizer!(cfg.optimizer, o => run(o, train, valid, cfg, &mut progress))
}

fn run<O: Optimizer>(
    opt: O,
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainOutcome> {
    let n = train.rows();
    let d = train.cols();
    let coords = d + usize::from(cfg.bias);
    let params = SharedParams::new(coords, 1 + O::STATE);
    let lambda = cfg.effective_l2(n);
    let deg_scale = kernel::degree_scale(train, cfg.bias);
    let l2_degree: Option<Vec<f32>> = (cfg.l2_form == L2Form::Degree && lambda > 0.0).then(|| {
        deg_scale
            .iter()
            .map(|&s| (lambda * f64::from(s)) as f32)
            .collect()
    });
    let lazy_lambda = if cfg.l2_form == L2Form::Lazy {
        lambda
    } else {
        0.0
    };
    let x = train.x();
    let indptr = x.indptr();
    let kernel = Kernel {
        opt,
        loss: cfg.loss,
        indptr: indptr.raw_storage(),
        indices: x.indices(),
        values: x.data(),
        labels: train.y(),
        bias: cfg.bias.then_some(d),
        l2_degree: l2_degree.as_deref(),
        l1: (cfg.l1 > 0.0).then_some((cfg.l1 as f32, &deg_scale[..])),
        noise: (cfg.grad_noise > 0.0).then_some((cfg.grad_noise, cfg.grad_noise_gamma)),
    };
    kernel.check(&params);
    let batch = if cfg.batch_size == 0 {
        n
    } else {
        cfg.batch_size.min(n)
    };
    let mut scratch = (batch > 1).then(|| BatchScratch::new(coords));
    let base_lr = cfg.effective_lr(train);
    let mut sched = Scheduler::new(cfg.effective_schedule(), base_lr);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0xA5A5_5A5A);
    let mut perm = Vec::with_capacity(n);
    let mut t: u64 = 0;
    let mut scale = 1.0f64;
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f64, usize, Vec<f32>, Option<Metrics>)> = None;
    let mut stopped_early = false;
    let mut train_seconds = 0.0;
    let report_every = 1usize << 14;

    for epoch in 0..cfg.epochs {
        let lr = sched.rate(epoch);
        let losses = cfg.order.needs_losses().then(|| {
            let m = snapshot(&params, cfg, d, scale as f32);
            let s = m.scores(train);
            s.par_iter()
                .zip(train.y())
                .map(|(&z, &y)| cfg.loss.loss(z, y))
                .collect::<Vec<f32>>()
        });
        order::epoch_order(cfg.order, &mut perm, n, cfg.seed, epoch, losses.as_deref());

        let start = Instant::now();
        let mut loss_sum = LossSum::default();
        let mut updates = 0u64;
        for (k, rows) in perm.chunks(batch).enumerate() {
            t += 1;
            if lazy_lambda > 0.0 && scale * (1.0 - f64::from(lr) * lazy_lambda) < 1e-4 {
                // Fold the scale into the weights before v grows large.
                params.scale_weights(scale as f32);
                scale = 1.0;
            }
            let before = scale;
            if lazy_lambda > 0.0 {
                scale *= 1.0 - f64::from(lr) * lazy_lambda;
            }
            let step = step_for(&kernel, lr, t, before as f32, scale as f32);
            update(
                &kernel,
                &params,
                rows,
                &step,
                scratch.as_mut(),
                &mut rng,
                &mut loss_sum,
            );
            updates += 1;
            if (k + 1) * batch % report_every < batch {
                progress(Progress::Examples {
                    epoch,
                    done: ((k + 1) * batch).min(n),
                });
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        train_seconds += seconds;
        // Fold the scale back so the parameters hold the true weights.
        params.scale_weights(scale as f32);
        scale = 1.0;

        let train_loss = loss_sum.total() / n as f64;
        if !train_loss.is_finite() {
            return Err(Error::Diverged {
                epoch: epoch + 1,
                lr,
            });
        }
        let model = snapshot(&params, cfg, d, 1.0);
        let m = valid.map(|v| metrics::evaluate(&model, v));
        sched.observe(m.map_or(train_loss, |m| m.loss));
        let rep = EpochReport {
            epoch: epoch + 1,
            seconds,
            lr,
            train_loss,
            test_loss: m.map(|m| m.loss),
            test_accuracy: m.map(|m| m.accuracy),
            test_auc: m.and_then(|m| m.auc),
            updates,
            nnz: train.nnz() as u64,
            nnz_per_sec: train.nnz() as f64 / seconds.max(1e-12),
        };
        progress(Progress::Epoch(&rep));
        history.push(rep);
        if let (Some(patience), Some(mm)) = (cfg.early_stop, m) {
            let improved = best.as_ref().is_none_or(|b| mm.loss < b.0);
            if improved {
                best = Some((mm.loss, epoch + 1, model.weights.clone(), m));
                best.as_mut().expect("just set").2.push(model.bias);
            } else if epoch + 1 - best.as_ref().map_or(0, |b| b.1) >= patience {
                stopped_early = true;
                break;
            }
        }
    }

    let last = history.last().expect("at least one epoch").epoch;
    let (mut model, best_epoch, final_metrics) = match best {
        Some((_, e, w, m)) => {
            let mut model = snapshot(&params, cfg, d, 1.0);
            model.bias = if cfg.bias { w[d] } else { 0.0 };
            model.weights = w[..d].to_vec();
            (model, e, m)
        }
        None => {
            let model = snapshot(&params, cfg, d, 1.0);
            let m = valid.map(|v| metrics::evaluate(&model, v));
            (model, last, m)
        }
    };
    let done = DoneReport {
        model: cfg.loss.name(),
        optimizer: cfg.optimizer.name(),
        scheme: "sequential",
        threads: 1,
        epochs: history.len(),
        train_seconds,
        test_loss: final_metrics.map(|m| m.loss),
        test_accuracy: final_metrics.map(|m| m.accuracy),
        test_auc: final_metrics.and_then(|m| m.auc),
        stopped_early,
        best_epoch,
        lr: base_lr,
        l2: lambda,
    };
    model.meta = serde_json::json!({
        "optimizer": cfg.optimizer,
        "lr": base_lr,
        "schedule": cfg.effective_schedule(),
        "l2": lambda,
        "l1": cfg.l1,
        "l2_form": cfg.l2_form,
        "epochs": history.len(),
        "best_epoch": best_epoch,
        "train_rows": n,
        "seed": cfg.seed,
        "wildsgd": env!("CARGO_PKG_VERSION"),
    });
    Ok(TrainOutcome {
        model,
        epochs: history,
        done,
    })
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
fn update<O: Optimizer>(
    k: &Kernel<'_, O>,
    p: &SharedParams,
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
        (None, true, false) => k.example::<_, true, false>(p, r, step, rng, loss),
        (None, true, true) => k.example::<_, true, true>(p, r, step, rng, loss),
        (None, false, _) => k.example::<_, false, true>(p, r, step, rng, loss),
        (Some(sc), _, _) => k.batch(p, rows, step, sc, rng, loss),
    }
}

/// The current model, with weights multiplied by `scale`.
fn snapshot(p: &SharedParams, cfg: &TrainConfig, d: usize, scale: f32) -> LinearModel {
    let mut w = p.weights();
    if scale != 1.0 {
        w.iter_mut().for_each(|v| *v *= scale);
    }
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
    }
}
