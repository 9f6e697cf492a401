//! RMSprop (Hinton, Coursera lecture 6e; Ruder §4.5):
//! E[g²] ← γ E[g²] + (1−γ) g²; θ ← θ − η g / √(E[g²] + ε).
//! Defaults γ = 0.9, η = 0.001, ε = 1e-8. Sparse: lazy.

use super::Optimizer;

/// RMSprop; state: E[g²].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RmsProp {
    /// Decay γ of the running average.
    pub gamma: f32,
    /// ε inside the square root.
    pub eps: f32,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            gamma: 0.9,
            eps: 1e-8,
        }
    }
}

impl Optimizer for RmsProp {
    const STATE: usize = 1;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let e = self.gamma * s[0] + (1.0 - self.gamma) * g * g;
        s[0] = e;
        w - lr * g / (e + self.eps).sqrt()
    }
}
