//! Learning-rate schedules, applied per epoch (Ruder §2.12; Hogwild! used step decay
//! with β = 0.9 per epoch). The rate for epoch e (0-based) from the base rate η:
//!
//! | schedule | rate |
//! |---|---|
//! | `constant` | η |
//! | `inv-time` | η / (1 + k·e) |
//! | `step` | η · β^⌊e / every⌋ |
//! | `exp` | η · exp(−k·e) |
//! | `bottou` | η / (1 + λ·η·t), t the updates so far: applied at every update, not per epoch (Bottou, "Stochastic Gradient Descent Tricks", 2012); about η while λ·η·t ≪ 1, then 1/(λ·t), the rate a λ-strongly convex objective calls for. Linear models only |
//! | `plateau` | η, multiplied by `factor` whenever the monitored loss has not improved by a relative `threshold` for `patience` epochs (PyTorch's `ReduceLROnPlateau`) |

use crate::error::{Error, Result};

/// A schedule and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Schedule {
    /// The same rate every epoch.
    Constant,
    /// η / (1 + k·e).
    InvTime {
        /// Decay k per epoch.
        k: f32,
    },
    /// η · β^⌊e / every⌋.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor β.
        factor: f32,
    },
    /// η · exp(−k·e).
    Exp {
        /// Rate k per epoch.
        k: f32,
    },
    /// η / (1 + λ·η·t) at update t, λ the L2 strength (linear models).
    Bottou,
    /// Reduce on plateau.
    Plateau {
        /// Multiplier when the loss stalls.
        factor: f32,
        /// Epochs without improvement before reducing.
        patience: usize,
        /// Relative improvement that counts.
        threshold: f32,
    },
}

impl Schedule {
    /// The schedule called `name` with default parameters: inv-time k = 1, step every
    /// epoch by 0.9 (Hogwild!'s), exp k = 0.1, plateau factor 0.1 patience 2 threshold 1e-4.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "constant" => Schedule::Constant,
            "inv-time" => Schedule::InvTime { k: 1.0 },
            "step" => Schedule::Step {
                every: 1,
                factor: 0.9,
            },
            "exp" => Schedule::Exp { k: 0.1 },
            "bottou" => Schedule::Bottou,
            "plateau" => Schedule::Plateau {
                factor: 0.1,
                patience: 2,
                threshold: 1e-4,
            },
            other => {
                return Err(Error::config(
                    "schedule",
                    format!(
                        "unknown schedule `{other}`; expected constant, inv-time, step, exp, bottou or plateau"
                    ),
                ));
            }
        })
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::Config`] naming the parameter.
    pub fn check(&self) -> Result<()> {
        let bad = |name, msg: String| Err(Error::config(name, msg));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::InvTime { k } | Schedule::Exp { k } if !(k >= 0.0 && k.is_finite()) => bad(
                "schedule.k",
                format!("must be a non-negative number, got {k}"),
            ),
            Schedule::Step { every: 0, .. } => {
                bad("schedule.every", "must be at least 1 epoch, got 0".into())
            }
            Schedule::Step { factor, .. } | Schedule::Plateau { factor, .. }
                if !(factor > 0.0 && factor <= 1.0) =>
            {
                bad(
                    "schedule.factor",
                    format!("must be in (0, 1], got {factor}"),
                )
            }
            Schedule::Plateau { patience: 0, .. } => bad(
                "schedule.patience",
                "must be at least 1 epoch, got 0".into(),
            ),
            Schedule::Plateau { threshold, .. } if threshold.is_nan() || threshold < 0.0 => bad(
                "schedule.threshold",
                format!("plateau threshold must be non-negative, got {threshold}"),
            ),
            _ => Ok(()),
        }
    }
}

/// The rate of update `t` (0-based, counted from the start of the run) under
/// [`Schedule::Bottou`] from base rate `eta0` with L2 strength `lambda`.
#[inline(always)]
pub fn per_update(eta0: f32, lambda: f64, t: u64) -> f32 {
    (f64::from(eta0) / (1.0 + lambda * f64::from(eta0) * t as f64)) as f32
}

/// A running schedule: call [`Scheduler::rate`] at the start of each epoch and
/// [`Scheduler::observe`] with the monitored loss at its end.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedule: Schedule,
    base: f32,
    current: f32,
    best: f64,
    bad_epochs: usize,
}

impl Scheduler {
    /// Starts `schedule` from base rate `base`.
    pub fn new(schedule: Schedule, base: f32) -> Self {
        Scheduler {
            schedule,
            base,
            current: base,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The rate for epoch `e` (0-based).
    pub fn rate(&self, e: usize) -> f32 {
        let ef = e as f32;
        match self.schedule {
            // Bottou's decays within the epoch: the engine applies `per_update`.
            Schedule::Constant | Schedule::Bottou => self.base,
            Schedule::InvTime { k } => self.base / (1.0 + k * ef),
            Schedule::Step { every, factor } => self.base * factor.powi((e / every) as i32),
            Schedule::Exp { k } => self.base * (-k * ef).exp(),
            Schedule::Plateau { .. } => self.current,
        }
    }

    /// Records the loss at the end of an epoch (only `plateau` uses it).
    pub fn observe(&mut self, loss: f64) {
        if let Schedule::Plateau {
            factor,
            patience,
            threshold,
        } = self.schedule
        {
            if loss < self.best * (1.0 - f64::from(threshold)) {
                self.best = loss;
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs >= patience {
                    self.current *= factor;
                    self.bad_epochs = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_formulas() {
        let s = Scheduler::new(Schedule::InvTime { k: 0.5 }, 1.0);
        assert_eq!(s.rate(2), 0.5);
        let s = Scheduler::new(
            Schedule::Step {
                every: 2,
                factor: 0.5,
            },
            1.0,
        );
        assert_eq!(
            [s.rate(0), s.rate(1), s.rate(2), s.rate(5)],
            [1.0, 1.0, 0.5, 0.25]
        );
        let s = Scheduler::new(Schedule::Exp { k: 1.0 }, 2.0);
        assert!((s.rate(1) - 2.0 * (-1.0f32).exp()).abs() < 1e-6);
    }

    #[test]
    fn plateau_reduces_after_patience() {
        let mut s = Scheduler::new(
            Schedule::Plateau {
                factor: 0.1,
                patience: 2,
                threshold: 0.0,
            },
            1.0,
        );
        for loss in [1.0, 0.9, 0.95, 0.95] {
            s.observe(loss);
        }
        assert!((s.rate(4) - 0.1).abs() < 1e-7);
        assert!(
            Schedule::Step {
                every: 0,
                factor: 0.5
            }
            .check()
            .is_err()
        );
    }
}
