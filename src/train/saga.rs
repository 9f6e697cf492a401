//! SAGA (Defazio, Bach & Lacoste-Julien 2014) in its sparse, lock-free form ASAGA
//! (Leblond, Pedregosa & Lacoste-Julien 2017; ALGORITHMS.md §12.3), for the smooth
//! losses (logistic, squared).
//!
//! The gradient of example i is α_i·x_i with α_i = ∂ℓ/∂z at its score, so SAGA stores
//! one scalar per example (its α at its last visit) and the average
//! ḡ = (1/n)·Σ α_i·x_i. A step on row i computes α' at the current weights and moves
//! each coordinate j of the row (and the bias) by
//! −η·[(α' − α_i)·x_ij + (ḡ_j + λ·w_j)/p_j], p_j = d_j/n the fraction of rows holding
//! feature j (1 for the bias), then ḡ_j += (α' − α_i)·x_ij/n and α_i = α'. The 1/p_j
//! reweighting makes the sparse step unbiased (its mean over i is the dense
//! ḡ + λ·w), so a step touches only the row's support, as Hogwild!'s degree-scaled L2
//! does. The step is constant, η = 1/(3·L) with L = L_ℓ·max_i ‖x_i‖² + λ·max_j 1/p_j
//! (L_ℓ = ¼ logistic, 1 squared), and the iterates converge linearly to the exact
//! optimum; `lr` overrides η.
//!
//! **Threads.** Each thread owns the α of its share of the rows; w and ḡ are shared and
//! updated with compare-and-swap additions (no update is lost; ASAGA's implementation
//! does the same). At the end of every epoch ḡ is recomputed from the α in f64 while the
//! workers wait, so rounding never accumulates in it.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::data::SparseDataset;
use crate::error::Result;
use crate::model::LossKind;
use crate::params::SharedParams;

use super::exact::{Exact, F64, Kept, Worker};
use super::{EpochReport, Progress, TrainConfig, TrainOutcome};

/// The run: data, the stored derivatives, the shared weights and average gradient.
struct Saga<'a> {
    ex: Exact<'a>,
    loss: LossKind,
    bias: bool,
    /// α_i: ∂ℓ/∂z of row i at its last visit.
    alpha: Box<[F64]>,
    /// ḡ = (1/n)·Σ α_i·x_i, bias last.
    gbar: SharedParams,
    /// 1/p_j = n/d_j per coordinate (bias last: 1; 0 for a feature no row holds).
    inv_p: Vec<f32>,
    done: crossbeam_utils::CachePadded<AtomicUsize>,
}

/// SAGA's constant step 1/(3·L) on `train` (see the module docs).
pub fn step_size(train: &SparseDataset, loss: LossKind, bias: bool, lambda: f64) -> f32 {
    let smooth = match loss {
        LossKind::Logistic => 0.25,
        _ => 1.0,
    };
    let max_sq = (0..train.rows())
        .map(|i| {
            let (_, v) = train.row(i);
            v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() + f64::from(u8::from(bias))
        })
        .fold(0.0, f64::max);
    let min_deg = degrees(train)
        .into_iter()
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(1);
    let reg = lambda * train.rows() as f64 / min_deg as f64;
    (1.0 / (3.0 * (smooth * max_sq + reg).max(1e-12))) as f32
}

/// Rows holding each feature.
fn degrees(train: &SparseDataset) -> Vec<u32> {
    let mut deg = vec![0u32; train.cols()];
    for &j in train.x().indices() {
        deg[j as usize] += 1;
    }
    deg
}

/// Trains `cfg` by SAGA (the caller checked `cfg` and the data).
pub(super) fn run(
    train: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<TrainOutcome> {
    let (n, coords, threads, lambda) = super::exact::sizes(
        train,
        cfg,
        "SAGA's weights, average gradient and derivatives",
        16,
        8,
    )?;
    let lr = cfg
        .lr
        .unwrap_or_else(|| step_size(train, cfg.loss, cfg.bias, lambda));
    let mut inv_p: Vec<f32> = degrees(train)
        .into_iter()
        .map(|d| if d > 0 { n as f32 / d as f32 } else { 0.0 })
        .collect();
    if cfg.bias {
        inv_p.push(1.0);
    }
    let task = Saga {
        ex: Exact {
            train,
            valid,
            cfg,
            lambda,
            threads,
            w: SharedParams::new(coords, 1),
            lr,
        },
        loss: cfg.loss,
        bias: cfg.bias,
        alpha: (0..n).map(|_| F64::new(0.0)).collect(),
        gbar: SharedParams::new(coords, 1),
        inv_p,
        done: Default::default(),
    };
    let (driven, history) = task.ex.run(&task, progress, stop)?;
    task.ex
        .finish(history, driven, ("saga_step", serde_json::json!(lr)))
}

impl Saga<'_> {
    /// One SAGA step on row i.
    fn step(&self, i: usize) {
        let (train, w, g) = (self.ex.train, &self.ex.w, &self.gbar);
        let (idx, val) = train.row(i);
        let d = train.cols();
        let mut z: f32 = idx
            .iter()
            .zip(val)
            .map(|(&j, &x)| w.get(j as usize, 0) * x)
            .sum();
        if self.bias {
            z += w.get(d, 0);
        }
        let a_new = self.loss.dloss(z, train.y()[i]);
        let da = a_new - self.alpha[i].get() as f32;
        let (eta, lambda) = (self.ex.lr, self.ex.lambda as f32);
        let inv_n = 1.0 / train.rows() as f32;
        let touch = |j: usize, x: f32| {
            let full = (g.get(j, 0) + lambda * w.get(j, 0)) * self.inv_p[j];
            w.add(j, 0, -eta * (da * x + full));
            if da != 0.0 {
                g.add(j, 0, da * x * inv_n);
            }
        };
        for (&j, &x) in idx.iter().zip(val) {
            touch(j as usize, x);
        }
        if self.bias {
            touch(d, 1.0);
        }
        self.alpha[i].set(f64::from(a_new));
    }

    /// ḡ = (1/n)·Σ α_i·x_i, recomputed in f64 and written over the shared average.
    fn sync_average(&self) {
        let train = self.ex.train;
        let (n, d) = (train.rows(), train.cols());
        let mut g = vec![0f64; self.gbar.coords()];
        for i in 0..n {
            let a = self.alpha[i].get();
            let (idx, val) = train.row(i);
            for (&j, &x) in idx.iter().zip(val) {
                g[j as usize] += a * f64::from(x);
            }
            if self.bias {
                g[d] += a;
            }
        }
        for (j, v) in g.iter().enumerate() {
            self.gbar.set(j, 0, (*v / n as f64) as f32);
        }
    }
}

impl crate::driver::Task for Saga<'_> {
    type Worker = Worker;
    type Job = usize;
    type Part = ();
    type Kept = Kept;
    type Report = EpochReport;

    fn workers(&self) -> Vec<Worker> {
        self.ex.workers()
    }

    fn job(&self, epoch: usize, _lr: f32) -> usize {
        self.done.store(0, Relaxed);
        epoch
    }

    fn work(&self, ws: &mut Worker, epoch: usize, tick: &mut dyn FnMut(usize)) {
        self.ex.order(&mut ws.perm, ws.id, epoch, 0x5A6A_0001);
        for (k, &i) in ws.perm.iter().enumerate() {
            self.step(i as usize);
            if k % 4096 == 4095 {
                let done = self.done.fetch_add(4096, Relaxed) + 4096;
                tick(done);
            }
        }
    }

    fn done(&self) -> usize {
        self.done.load(Relaxed)
    }

    fn end_epoch(
        &self,
        epoch: usize,
        _lr: f32,
        keep: bool,
        _parts: Vec<()>,
        seconds: f64,
    ) -> Result<(crate::driver::Epoch<Kept>, EpochReport)> {
        self.sync_average();
        let model = self.ex.model(epoch)?;
        let p = super::objective(&model, self.ex.train, self.ex.lambda, 0.0);
        self.ex.epoch_end(epoch, seconds, keep, model, p, None)
    }
}
