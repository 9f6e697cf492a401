//! What the solvers that converge to the exact optimum (dual coordinate descent, SAGA)
//! share: the run on the engine, the epoch's order, the end-of-epoch report and the
//! returned model. Each keeps its weights in one shared array (bias last) and reports
//! the regularized objective of the weights it returns.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::data::SparseDataset;
use crate::driver::{Driven, Epoch, Event, Placement, Plan, Task};
use crate::error::{Error, Result};
use crate::metrics;
use crate::model::LinearModel;
use crate::params::SharedParams;

use super::{DoneReport, EpochReport, L2Form, Progress, TrainConfig, TrainOutcome};

pub(super) use super::Kept;

/// A worker of an exact solver: its share's order.
pub(super) struct Worker {
    pub id: usize,
    pub perm: Vec<u32>,
}

/// An f64 shared between the threads: a per-row value is written only by the thread
/// that owns the row, and read by the calling thread between epochs (after the pool's
/// hand-over).
pub(super) struct F64(AtomicU64);

impl F64 {
    pub(super) fn new(v: f64) -> Self {
        F64(AtomicU64::new(v.to_bits()))
    }
    pub(super) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
    pub(super) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed)
    }
}

/// A run's size before an exact solver allocates: (rows, coordinates, threads, λ),
/// after checking `per_coord` bytes per coordinate and `per_row` per row against the
/// memory budget (`what` names the arrays).
pub(super) fn sizes(
    train: &SparseDataset,
    cfg: &TrainConfig,
    what: &str,
    per_coord: u64,
    per_row: u64,
) -> Result<(usize, usize, usize, f64)> {
    let n = train.rows();
    let coords = train.cols() + usize::from(cfg.bias);
    crate::memory::check(
        format!("{what} ({coords} coordinates, {n} rows)"),
        coords as u64 * per_coord + n as u64 * per_row,
        "use a smaller data set or a larger machine",
    )?;
    Ok((n, coords, cfg.engine.threads_for(n), cfg.effective_l2(n)))
}

/// The parts of a run every exact solver has.
pub(super) struct Exact<'a> {
    pub train: &'a SparseDataset,
    pub valid: Option<&'a SparseDataset>,
    pub cfg: &'a TrainConfig,
    pub lambda: f64,
    pub threads: usize,
    /// The weights, bias last.
    pub w: SharedParams,
    /// The step size (SAGA), 0 for dual coordinate descent.
    pub lr: f32,
}

impl Exact<'_> {
    /// Runs `task` on the engine under `cfg`'s epochs, early stopping and `tol`.
    pub(super) fn run<T: Task<Report = EpochReport, Kept = Kept>>(
        &self,
        task: &T,
        progress: &mut dyn FnMut(Progress<'_>),
        stop: &std::cell::Cell<bool>,
    ) -> Result<crate::driver::Trained<T>> {
        let cfg = self.cfg;
        let plan = Plan {
            epochs: cfg.epochs,
            early_stop: cfg.early_stop,
            schedule: crate::schedule::Schedule::Constant,
            base_lr: self.lr,
            tol: cfg.tol,
        };
        let place = Placement {
            inline: self.threads == 1,
            pin: cfg.engine.pin && !cfg.engine.oversubscribed(),
        };
        crate::driver::run_task(task, &plan, stop, place, &mut |ev| match ev {
            Event::Done { epoch, done } => progress(Progress::Examples { epoch, done }),
            Event::Epoch(rep) => progress(Progress::Epoch(rep)),
        })
    }

    /// One worker per thread.
    pub(super) fn workers(&self) -> Vec<Worker> {
        (0..self.threads)
            .map(|id| Worker {
                id,
                perm: Vec::new(),
            })
            .collect()
    }

    /// Worker `id`'s rows for `epoch`, in a seeded per-row shuffle by default, as
    /// LIBLINEAR's: these solvers are far more sensitive to the order than SGD. Blocks of
    /// consecutive rows (the SGD default from 16,384 rows up, read in streams) stalled
    /// dual coordinate descent's duality gap on a9a (8.7e-5 after 40 epochs, against
    /// 1e-5 within 25) even with each block's rows shuffled, though on RCV1-shaped data
    /// blocks of 64 with shuffled insides reached a gap of 1e-4 in 1.9 s against 2.9 s:
    /// `shuffle_block` chooses blocks, whose insides are shuffled too (a fixed order
    /// inside them stalled the gap at 3e-3).
    pub(super) fn order(&self, perm: &mut Vec<u32>, id: usize, epoch: usize, salt: u64) {
        let n = self.train.rows();
        let share = id * n / self.threads..(id + 1) * n / self.threads;
        let block = self.cfg.engine.shuffle_block.max(1);
        let seed = self.cfg.seed ^ salt ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        super::order::epoch_order(super::Order::Shuffle, perm, share, block, seed, epoch, None);
        if block > 1 {
            let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(
                seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407),
            );
            for chunk in perm.chunks_mut(block) {
                rand::seq::SliceRandom::shuffle(chunk, &mut rng);
            }
        }
    }

    /// The model on the shared weights, checked finite.
    pub(super) fn model(&self, epoch: usize) -> Result<LinearModel> {
        let model = super::snapshot(&self.w, self.cfg, self.train);
        if model.is_finite() {
            Ok(model)
        } else {
            Err(self.diverged(epoch, "the weights are"))
        }
    }

    fn diverged(&self, epoch: usize, what: &'static str) -> Error {
        Error::Diverged {
            epoch: epoch + 1,
            lr: self.lr,
            l2: self.lambda,
            what,
        }
    }

    /// The end of an epoch for `model` (the shared weights), whose objective is `p` and
    /// duality gap `gap` where there is one.
    pub(super) fn epoch_end(
        &self,
        epoch: usize,
        seconds: f64,
        keep: bool,
        model: LinearModel,
        p: f64,
        gap: Option<f64>,
    ) -> Result<(Epoch<Kept>, EpochReport)> {
        if !p.is_finite() {
            return Err(self.diverged(epoch, "the objective is"));
        }
        let m = self
            .valid
            .map(|v| metrics::evaluate(&model, v))
            .transpose()?;
        let train_loss = p - 0.5 * self.lambda * model.squared_norm();
        let (n, nnz) = (self.train.rows(), self.train.nnz());
        let rep = EpochReport {
            epoch: epoch + 1,
            seconds,
            lr: self.lr,
            train_loss,
            objective: p,
            duality_gap: gap,
            test_loss: m.map(|m| m.loss),
            test_accuracy: m.map(|m| m.accuracy),
            test_auc: m.and_then(|m| m.auc),
            updates: n as u64,
            nnz: nnz as u64,
            nnz_per_sec: nnz as f64 / seconds.max(1e-12),
            comm: None,
        };
        let ep = Epoch {
            seconds,
            train: train_loss,
            valid: m.map(|m| m.loss),
            objective: Some(p),
            gap,
            model: keep.then(|| {
                let mut w = model.weights;
                w.push(model.bias);
                (w, m)
            }),
        };
        Ok((ep, rep))
    }

    /// The model to return (the best epoch's under early stopping), with its summary;
    /// `extra` goes into the model's metadata.
    pub(super) fn finish(
        &self,
        history: Vec<EpochReport>,
        driven: Driven<Kept>,
        extra: (&str, serde_json::Value),
    ) -> Result<TrainOutcome> {
        let (cfg, train, d) = (self.cfg, self.train, self.train.cols());
        let mut model = super::snapshot(&self.w, cfg, train);
        let (best_epoch, final_metrics) = match driven.best {
            Some((_, e, (w, m))) => {
                model.bias = if cfg.bias { w[d] } else { 0.0 };
                model.weights = w[..d].to_vec();
                (e, m)
            }
            None => {
                let m = self
                    .valid
                    .map(|v| metrics::evaluate(&model, v))
                    .transpose()?;
                (driven.epochs, m)
            }
        };
        let last = history.iter().find(|r| r.epoch == best_epoch);
        let done = DoneReport {
            model: cfg.loss.name(),
            optimizer: cfg.method_name(),
            scheme: cfg.engine.scheme.name(),
            threads: self.threads,
            oversubscribed: self.threads > crate::engine::cores(),
            epochs: history.len(),
            train_seconds: driven.train_seconds,
            objective: last.map_or(f64::NAN, |r| r.objective),
            duality_gap: last.and_then(|r| r.duality_gap),
            converged: driven.converged,
            averaged: false,
            test_loss: final_metrics.map(|m| m.loss),
            test_accuracy: final_metrics.map(|m| m.accuracy),
            test_auc: final_metrics.and_then(|m| m.auc),
            stopped_early: driven.stopped_early,
            stopped_by_caller: driven.stopped_by_caller,
            best_epoch,
            lr: self.lr,
            lr_calibrated: false,
            l2: self.lambda,
            l2_form: L2Form::Lazy,
            replicated: 0,
            merge_every: None,
            shuffle_block: cfg.engine.shuffle_block.max(1),
            comm: None,
        };
        let mut meta = serde_json::json!({
            "optimizer": cfg.method_name(),
            "lr": self.lr,
            "l2": self.lambda,
            "epochs": history.len(),
            "best_epoch": best_epoch,
            "train_rows": train.rows(),
            "seed": cfg.seed,
            "scheme": cfg.engine.scheme,
            "threads": self.threads,
            "wildsgd": env!("CARGO_PKG_VERSION"),
        });
        meta[extra.0] = extra.1;
        model.meta = meta;
        Ok(TrainOutcome {
            model,
            epochs: history,
            done,
        })
    }
}
