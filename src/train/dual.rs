//! Dual coordinate descent for L2-regularized linear models, run lock-free across the
//! engine's threads as PASSCoDe (ALGORITHMS.md §12.4).
//!
//! The primal problem is ours, P(w) = (1/n)·Σ ℓ(y_i·w·x_i) + (λ/2)·‖w‖², which is
//! LIBLINEAR's ½‖w‖² + C·Σ ℓ(·) divided by C·n, with C = 1/(λ·n): the same minimizer.
//! Its dual has one variable α_i per example and w(α) = Σ α_i·y_i·x_i; each step
//! minimizes the dual over one α_i with the others fixed (Q_ii = ‖x_i‖², the bias a
//! feature of constant 1):
//! * hinge (LIBLINEAR `-s 3`, Hsieh et al. 2008): 0 ≤ α ≤ C, a clipped Newton step;
//! * squared, ½(1 − y·z)² (ridge on the ±1 labels): α free, Q̄_ii = Q_ii + 1/C, one
//!   exact step;
//! * logistic (LIBLINEAR `-s 7`, Yu, Huang & Lin 2011): 0 < α < C, the entropy-barrier
//!   subproblem solved by safeguarded Newton steps on α or on C − α, whichever is the
//!   smaller (both are stored, so neither is computed by a cancelling subtraction).
//!
//! **Threads (PASSCoDe, Hsieh, Yu & Dhillon 2015).** Each thread owns the α of its share
//! of the rows and visits them in a fresh seeded random order every epoch (the engine's
//! blocks of 64 consecutive rows from 16,384 rows up); w is shared. With
//! [`DualWrites::Atomic`] (the default) a step adds its change to w by compare-and-swap,
//! so no update is lost; with [`DualWrites::Wild`] it loads and stores, and a concurrent
//! step's change may be lost (the race PASSCoDe-Wild allows). Either way, at the end of
//! every epoch w is recomputed from the α (in f64) while the workers wait: the lost
//! updates and the f32 rounding never accumulate, and the model returned is exactly
//! w(α), for which the duality gap below is a certificate.
//!
//! **Duality gap.** P(w(α)) − D(α) ≥ P(w(α)) − P(w*) ≥ 0, reported each epoch in the
//! primal's scale, and `tol` stops the run once it is at most `tol`·P.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::data::SparseDataset;
use crate::error::Result;
use crate::model::LossKind;
use crate::params::SharedParams;

use super::exact::{Exact, F64, Kept, Worker};
use super::{EpochReport, Progress, TrainConfig, TrainOutcome};

/// How PASSCoDe's threads write the shared weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DualWrites {
    /// Compare-and-swap additions: no update is lost (PASSCoDe-Atomic).
    #[default]
    Atomic,
    /// Plain loads and stores: a concurrent update may be lost (PASSCoDe-Wild).
    Wild,
}

/// The run: data, the dual variables, the shared weights.
struct Dual<'a> {
    ex: Exact<'a>,
    loss: LossKind,
    /// LIBLINEAR's C = 1/(λ·n).
    c: f64,
    bias: bool,
    wild: bool,
    /// α_i, and C − α_i (logistic), per row.
    alpha: Box<[F64]>,
    comp: Box<[F64]>,
    /// Q_ii (+ 1/C for the squared loss).
    q: Vec<f64>,
    /// The logistic subproblem's Newton tolerance (LIBLINEAR's adaptive `innereps`).
    inner_eps: F64,
    done: crossbeam_utils::CachePadded<AtomicUsize>,
}

/// One worker's epoch: Newton steps taken (logistic).
#[derive(Default)]
struct Part {
    newton: u64,
}

/// Trains `cfg` by dual coordinate descent (the caller checked `cfg` and the data).
pub(super) fn run(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    writes: DualWrites,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<TrainOutcome> {
    let (n, coords, threads, lambda) = super::exact::sizes(
        train,
        cfg,
        "dual coordinate descent's weights and dual variables",
        8,
        24,
    )?;
    let c = 1.0 / (lambda * n as f64);
    // LIBLINEAR's start for logistic: α strictly inside (0, C); 0 otherwise.
    let a0 = match cfg.loss {
        LossKind::Logistic => (1e-3 * c).min(1e-8),
        _ => 0.0,
    };
    let extra = if cfg.loss == LossKind::Squared {
        1.0 / c
    } else {
        0.0
    };
    let q = (0..n)
        .map(|i| {
            let (_, v) = train.row(i);
            v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()
                + f64::from(u8::from(cfg.bias))
                + extra
        })
        .collect();
    let task = Dual {
        ex: Exact {
            train,
            valid,
            cfg,
            lambda,
            threads,
            w: SharedParams::new(coords, 1),
            lr: 0.0,
        },
        loss: cfg.loss,
        c,
        bias: cfg.bias,
        // One thread has nobody to race with: plain stores.
        wild: writes == DualWrites::Wild || threads == 1,
        alpha: (0..n).map(|_| F64::new(a0)).collect(),
        comp: (0..n).map(|_| F64::new(c - a0)).collect(),
        q,
        inner_eps: F64::new(1e-2),
        done: Default::default(),
    };
    task.sync_weights();
    let (driven, history) = task.ex.run(&task, progress, stop)?;
    task.ex
        .finish(history, driven, ("dual_writes", serde_json::json!(writes)))
}

impl Dual<'_> {
    /// The score y_i·w·x_i on the shared weights.
    fn margin(&self, i: usize) -> f64 {
        let (idx, val) = self.ex.train.row(i);
        let mut z: f64 = idx
            .iter()
            .zip(val)
            .map(|(&j, &v)| f64::from(self.ex.w.get(j as usize, 0)) * f64::from(v))
            .sum();
        if self.bias {
            z += f64::from(self.ex.w.get(self.ex.train.cols(), 0));
        }
        z * f64::from(self.ex.train.y()[i])
    }

    /// w += delta·x_i (atomically, or wild).
    fn add_row(&self, i: usize, delta: f64) {
        let (idx, val) = self.ex.train.row(i);
        let add = |j: usize, v: f32| {
            if self.wild {
                self.ex.w.set(j, 0, self.ex.w.get(j, 0) + v);
            } else {
                self.ex.w.add(j, 0, v);
            }
        };
        for (&j, &v) in idx.iter().zip(val) {
            add(j as usize, (delta * f64::from(v)) as f32);
        }
        if self.bias {
            add(self.ex.train.cols(), delta as f32);
        }
    }

    /// One coordinate step on row i; returns the Newton steps taken.
    fn step(&self, i: usize, inner_eps: f64) -> u64 {
        let b = self.margin(i);
        let (a, qi, c) = (self.alpha[i].get(), self.q[i], self.c);
        let (new, comp, delta, newton) = match self.loss {
            LossKind::Hinge => {
                let new = (a - (b - 1.0) / qi).clamp(0.0, c);
                (new, c - new, new - a, 0)
            }
            LossKind::Squared => {
                let new = a - (b - 1.0 + a / c) / qi;
                (new, c - new, new - a, 0)
            }
            LossKind::Logistic => logistic_step(a, self.comp[i].get(), c, qi, b, inner_eps),
        };
        if delta != 0.0 {
            self.alpha[i].set(new);
            self.comp[i].set(comp);
            self.add_row(i, delta * f64::from(self.ex.train.y()[i]));
        }
        newton
    }

    /// w(α) = Σ α_i·y_i·x_i, computed in f64 and written over the shared weights.
    fn sync_weights(&self) {
        let d = self.ex.train.cols();
        let mut w = vec![0f64; self.ex.w.coords()];
        for i in 0..self.ex.train.rows() {
            let s = self.alpha[i].get() * f64::from(self.ex.train.y()[i]);
            let (idx, val) = self.ex.train.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                w[j as usize] += s * f64::from(v);
            }
            if self.bias {
                w[d] += s;
            }
        }
        for (j, v) in w.iter().enumerate() {
            self.ex.w.set(j, 0, *v as f32);
        }
    }

    /// (P(w), D(α)) in the primal's scale, with w = w(α) on the shared weights.
    fn objectives(&self, model: &crate::model::LinearModel) -> (f64, f64) {
        let sq: f64 = (0..self.ex.w.coords())
            .map(|j| f64::from(self.ex.w.get(j, 0)).powi(2))
            .sum();
        let p = super::objective(model, self.ex.train, self.ex.lambda, 0.0);
        let c = self.c;
        let xlogx = |x: f64| if x > 0.0 { x * x.ln() } else { 0.0 };
        let sum: f64 = (0..self.ex.train.rows())
            .map(|i| {
                let a = self.alpha[i].get();
                match self.loss {
                    LossKind::Hinge => a,
                    LossKind::Squared => a - a * a / (2.0 * c),
                    LossKind::Logistic => -(xlogx(a) + xlogx(self.comp[i].get()) - xlogx(c)),
                }
            })
            .sum();
        // LIBLINEAR's dual value over C·n = 1/λ.
        let dual = (sum - 0.5 * sq) * self.ex.lambda;
        (p, dual)
    }
}

/// The logistic dual subproblem on one coordinate (Yu, Huang & Lin 2011, Algorithm 5 as
/// LIBLINEAR implements it): minimize over α' in (0, C)
/// α'·ln α' + (C − α')·ln(C − α') + (Q/2)·(α' − α)² + b·(α' − α),
/// working on α or on C − α, whichever the step makes smaller. Returns the new α, the
/// new C − α, the change of α (from the variable worked on, without cancellation) and
/// the Newton steps taken (0: nothing changed).
fn logistic_step(alpha: f64, comp: f64, c: f64, q: f64, b: f64, eps: f64) -> (f64, f64, f64, u64) {
    // On which variable: z = α (sign +1) or z = C − α (sign −1).
    let (old, sign) = if 0.5 * q * (comp - alpha) + b < 0.0 {
        (comp, -1.0)
    } else {
        (alpha, 1.0)
    };
    let mut z = old;
    if c - z < 0.5 * c {
        z *= 0.1;
    }
    let grad = |z: f64| q * (z - old) + sign * b + (z / (c - z)).ln();
    let mut gp = grad(z);
    let mut k = 0;
    while k <= 100 && gp.abs() >= eps {
        let gpp = q + c / (c - z) / z;
        let t = z - gp / gpp;
        // A step out of (0, C) is replaced by a move toward the violated bound (LIBLINEAR
        // only needs the lower one; the upper is a guard that keeps the log finite).
        z = if t <= 0.0 {
            z * 0.1
        } else if t >= c {
            0.5 * (z + c)
        } else {
            t
        };
        gp = grad(z);
        k += 1;
    }
    if k == 0 {
        return (alpha, comp, 0.0, 0);
    }
    if sign > 0.0 {
        (z, c - z, z - old, k)
    } else {
        (c - z, z, old - z, k)
    }
}

impl crate::driver::Task for Dual<'_> {
    type Worker = Worker;
    type Job = (usize, f64);
    type Part = Part;
    type Kept = Kept;
    type Report = EpochReport;

    fn workers(&self) -> Vec<Worker> {
        self.ex.workers()
    }

    fn job(&self, epoch: usize, _lr: f32) -> (usize, f64) {
        self.done.store(0, Relaxed);
        (epoch, self.inner_eps.get())
    }

    fn work(&self, ws: &mut Worker, job: (usize, f64), tick: &mut dyn FnMut(usize)) -> Part {
        let (epoch, inner_eps) = job;
        self.ex.order(&mut ws.perm, ws.id, epoch, 0xD0A1_C0DE);
        let mut part = Part::default();
        for (k, &i) in ws.perm.iter().enumerate() {
            part.newton += self.step(i as usize, inner_eps);
            if k % 4096 == 4095 {
                let done = self.done.fetch_add(4096, Relaxed) + 4096;
                tick(done);
            }
        }
        part
    }

    fn done(&self) -> usize {
        self.done.load(Relaxed)
    }

    fn end_epoch(
        &self,
        epoch: usize,
        _lr: f32,
        keep: bool,
        parts: Vec<Part>,
        seconds: f64,
    ) -> Result<(crate::driver::Epoch<Self::Kept>, EpochReport)> {
        let n = self.ex.train.rows();
        let newton: u64 = parts.iter().map(|p| p.newton).sum();
        // LIBLINEAR's rule: once a pass takes few Newton steps, solve the subproblems
        // more precisely.
        if newton <= n as u64 / 10 {
            self.inner_eps.set((0.1 * self.inner_eps.get()).max(1e-8));
        }
        self.sync_weights();
        let model = self.ex.model(epoch)?;
        let (p, dual) = self.objectives(&model);
        let gap = (p - dual).max(0.0);
        self.ex.epoch_end(epoch, seconds, keep, model, p, Some(gap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logistic subproblem's minimizer has a zero derivative, from either side.
    #[test]
    fn logistic_subproblem_is_solved() {
        let c = 2.0;
        for &(alpha, q, b) in &[(1e-8, 1.5, -0.7), (1.9, 0.3, 2.0), (1.0, 4.0, 0.1)] {
            let (a, comp, delta, k) = logistic_step(alpha, c - alpha, c, q, b, 1e-10);
            assert!(k > 0);
            assert!((a - alpha - delta).abs() < 1e-12);
            assert!(a > 0.0 && a < c && (a + comp - c).abs() < 1e-12);
            let g = (a / comp).ln() + q * (a - alpha) + b;
            assert!(g.abs() < 1e-8, "derivative {g} at α = {a}");
        }
    }
}
