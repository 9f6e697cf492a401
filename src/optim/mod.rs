//! Per-coordinate optimizers of Ruder's overview (and AdamW, FTRL-Proximal).
//!
//! Each optimizer is pure math on one coordinate: [`Optimizer::step`] takes the weight,
//! its gradient and the coordinate's state slots, and returns the new weight. Where the
//! parameters live (plain memory or shared atomics) is the engine's business, so the
//! same code serves the sequential and the lock-free schemes.
//!
//! **Sparse application.** The engine calls `step` only for the coordinates an example
//! touches (its non-zeros and the bias). For SGD, AdaGrad and FTRL that is *exact*: a
//! zero gradient leaves their state and weight unchanged, so skipping it is the dense
//! algorithm. For the methods built on moving averages (Momentum, NAG, Adadelta,
//! RMSprop, Adam, AdaMax, Nadam, AdamW) it is *lazy*, as PyTorch's `SparseAdam` and
//! TensorFlow's `LazyAdam`: an untouched coordinate's averages do not decay and its
//! weight does not keep moving with its velocity. The bias-correction step count `t` is
//! global (the number of updates so far), as in those libraries.

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod ftrl;
mod momentum;
mod nadam;
mod nag;
mod rmsprop;
mod sgd;

pub use adadelta::Adadelta;
pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use adamax::AdaMax;
pub use adamw::AdamW;
pub use ftrl::Ftrl;
pub use momentum::Momentum;
pub use nadam::NAdam;
pub use nag::Nag;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::error::{Error, Result};

/// Most state slots any optimizer keeps per coordinate.
pub const MAX_STATE: usize = 2;

/// One optimizer's per-coordinate update rule.
pub trait Optimizer: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// State slots per coordinate (at most [`MAX_STATE`]); all start at 0.
    const STATE: usize;
    /// Constants of one update step shared by all its coordinates (learning rate,
    /// bias corrections), computed once per step rather than per coordinate.
    type Ctx: Copy + std::fmt::Debug;
    /// The context for an update with learning rate `lr` at global step `t` (1-based).
    fn ctx(&self, lr: f32, t: u64) -> Self::Ctx;
    /// Returns the new weight for weight `w` with gradient `g`, updating `state`
    /// (`state.len() == Self::STATE`).
    fn step(&self, ctx: &Self::Ctx, w: f32, g: f32, state: &mut [f32]) -> f32;
}

/// The optimizers, with their hyper-parameters; `Default` gives each one's defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd(Sgd),
    /// Heavy-ball momentum.
    Momentum(Momentum),
    /// Nesterov accelerated gradient.
    Nag(Nag),
    /// AdaGrad.
    #[serde(rename = "adagrad")]
    AdaGrad(AdaGrad),
    /// Adadelta.
    Adadelta(Adadelta),
    /// RMSprop.
    #[serde(rename = "rmsprop")]
    RmsProp(RmsProp),
    /// Adam.
    Adam(Adam),
    /// AdaMax.
    #[serde(rename = "adamax")]
    AdaMax(AdaMax),
    /// Nadam.
    #[serde(rename = "nadam")]
    NAdam(NAdam),
    /// AdamW (decoupled weight decay).
    #[serde(rename = "adamw")]
    AdamW(AdamW),
    /// FTRL-Proximal.
    Ftrl(Ftrl),
}

impl Default for OptimizerKind {
    fn default() -> Self {
        OptimizerKind::Sgd(Sgd)
    }
}

impl OptimizerKind {
    /// Every optimizer name, as spelled on the command line.
    pub const NAMES: [&'static str; 11] = [
        "sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam",
        "adamw", "ftrl",
    ];

    /// The optimizer called `name`, with default hyper-parameters.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "sgd" => OptimizerKind::Sgd(Sgd),
            "momentum" => OptimizerKind::Momentum(Momentum::default()),
            "nag" => OptimizerKind::Nag(Nag::default()),
            "adagrad" => OptimizerKind::AdaGrad(AdaGrad::default()),
            "adadelta" => OptimizerKind::Adadelta(Adadelta::default()),
            "rmsprop" => OptimizerKind::RmsProp(RmsProp::default()),
            "adam" => OptimizerKind::Adam(Adam::default()),
            "adamax" => OptimizerKind::AdaMax(AdaMax::default()),
            "nadam" => OptimizerKind::NAdam(NAdam::default()),
            "adamw" => OptimizerKind::AdamW(AdamW::default()),
            "ftrl" => OptimizerKind::Ftrl(Ftrl::default()),
            other => {
                return Err(Error::config(
                    "optimizer",
                    format!(
                        "unknown optimizer `{other}`; expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                ));
            }
        })
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd(_) => "sgd",
            OptimizerKind::Momentum(_) => "momentum",
            OptimizerKind::Nag(_) => "nag",
            OptimizerKind::AdaGrad(_) => "adagrad",
            OptimizerKind::Adadelta(_) => "adadelta",
            OptimizerKind::RmsProp(_) => "rmsprop",
            OptimizerKind::Adam(_) => "adam",
            OptimizerKind::AdaMax(_) => "adamax",
            OptimizerKind::NAdam(_) => "nadam",
            OptimizerKind::AdamW(_) => "adamw",
            OptimizerKind::Ftrl(_) => "ftrl",
        }
    }

    /// The default learning rate. For the adaptive optimizers it is the literature's
    /// (Ruder's overview and the papers: AdaGrad 0.1 here rather than the 0.01 library
    /// default, which is too slow for ten epochs; Adadelta 1, RMSprop, Adam, Nadam and
    /// AdamW 0.001, AdaMax 0.002, FTRL 0.1). Plain SGD's stable step depends on the
    /// data's scale, so for SGD it is 0.15 / E‖x‖² and for Momentum and NAG, whose steps
    /// are about 1/(1−γ) = 10 times larger, 0.015 / E‖x‖², where E‖x‖² is the mean
    /// squared norm of a training row (bias included): 0.01 on a9a (15 ones per row),
    /// 0.075 on unit-norm RCV1 rows.
    pub fn default_lr(&self, mean_sq_norm: f32) -> f32 {
        let norm = if mean_sq_norm > 0.0 && mean_sq_norm.is_finite() {
            mean_sq_norm
        } else {
            1.0
        };
        match self {
            OptimizerKind::Sgd(_) => 0.15 / norm,
            OptimizerKind::Momentum(_) | OptimizerKind::Nag(_) => 0.015 / norm,
            OptimizerKind::AdaGrad(_) => 0.1,
            OptimizerKind::Adadelta(_) => 1.0,
            OptimizerKind::RmsProp(_) => 0.001,
            OptimizerKind::Adam(_) | OptimizerKind::NAdam(_) | OptimizerKind::AdamW(_) => 0.001,
            OptimizerKind::AdaMax(_) => 0.002,
            OptimizerKind::Ftrl(_) => 0.1,
        }
    }

    /// Whether skipping zero gradients is exactly the dense algorithm (see module docs).
    pub fn sparse_exact(&self) -> bool {
        matches!(
            self,
            OptimizerKind::Sgd(_) | OptimizerKind::AdaGrad(_) | OptimizerKind::Ftrl(_)
        )
    }

    /// Whether the optimizer adapts its step per coordinate (used to pick a schedule).
    pub fn is_adaptive(&self) -> bool {
        !matches!(
            self,
            OptimizerKind::Sgd(_) | OptimizerKind::Momentum(_) | OptimizerKind::Nag(_)
        )
    }

    /// Checks hyper-parameter ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the parameter.
    pub fn check(&self) -> Result<()> {
        let unit = |name: &'static str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(name, format!("must be in [0, 1), got {v}")))
            }
        };
        let pos = |name: &'static str, v: f32| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::config(name, format!("must be positive, got {v}")))
            }
        };
        match *self {
            OptimizerKind::Sgd(_) => Ok(()),
            OptimizerKind::Momentum(m) => unit("momentum.gamma", m.gamma),
            OptimizerKind::Nag(m) => unit("momentum.gamma", m.gamma),
            OptimizerKind::AdaGrad(a) => pos("eps", a.eps),
            OptimizerKind::Adadelta(a) => unit("adadelta.rho", a.rho).and(pos("eps", a.eps)),
            OptimizerKind::RmsProp(a) => unit("rmsprop.gamma", a.gamma).and(pos("eps", a.eps)),
            OptimizerKind::Adam(a) | OptimizerKind::NAdam(NAdam(a)) => unit("beta1", a.beta1)
                .and(unit("beta2", a.beta2))
                .and(pos("eps", a.eps)),
            OptimizerKind::AdaMax(a) => unit("beta1", a.beta1).and(unit("beta2", a.beta2)),
            OptimizerKind::AdamW(a) => unit("beta1", a.adam.beta1)
                .and(unit("beta2", a.adam.beta2))
                .and(pos("eps", a.adam.eps))
                .and(if a.weight_decay >= 0.0 && a.weight_decay.is_finite() {
                    Ok(())
                } else {
                    Err(Error::config("adamw.weight_decay", "must be non-negative"))
                }),
            OptimizerKind::Ftrl(f) => pos("ftrl.beta", f.beta).and(if f.l1 >= 0.0 && f.l2 >= 0.0 {
                Ok(())
            } else {
                Err(Error::config("ftrl.l1", "l1 and l2 must be non-negative"))
            }),
        }
    }
}

/// Calls `$body` with `$o` bound to the concrete optimizer inside an [`OptimizerKind`],
/// so generic code is monomorphized once per optimizer (one `match` at the top, no
/// dispatch per coordinate).
#[macro_export]
macro_rules! with_optimizer {
    ($kind:expr, $o:ident => $body:expr) => {
        match $kind {
            $crate::optim::OptimizerKind::Sgd($o) => $body,
            $crate::optim::OptimizerKind::Momentum($o) => $body,
            $crate::optim::OptimizerKind::Nag($o) => $body,
            $crate::optim::OptimizerKind::AdaGrad($o) => $body,
            $crate::optim::OptimizerKind::Adadelta($o) => $body,
            $crate::optim::OptimizerKind::RmsProp($o) => $body,
            $crate::optim::OptimizerKind::Adam($o) => $body,
            $crate::optim::OptimizerKind::AdaMax($o) => $body,
            $crate::optim::OptimizerKind::NAdam($o) => $body,
            $crate::optim::OptimizerKind::AdamW($o) => $body,
            $crate::optim::OptimizerKind::Ftrl($o) => $body,
        }
    };
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::Optimizer;

    /// Runs `o` over a gradient sequence on one coordinate from weight `w0`.
    pub(crate) fn run<O: Optimizer>(o: O, lr: f32, w0: f32, grads: &[f32]) -> Vec<f32> {
        let mut state = vec![0f32; O::STATE];
        let mut w = w0;
        grads
            .iter()
            .enumerate()
            .map(|(t, &g)| {
                w = o.step(&o.ctx(lr, t as u64 + 1), w, g, &mut state);
                w
            })
            .collect()
    }
}
