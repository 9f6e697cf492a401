//! Adadelta (Zeiler 2012; Ruder §4.4):
//! E[g²] ← ρ E[g²] + (1−ρ) g²; Δ = −√(E[Δ²] + ε) / √(E[g²] + ε) · g;
//! E[Δ²] ← ρ E[Δ²] + (1−ρ) Δ²; θ ← θ + η Δ.
//! The method needs no learning rate; η (default 1, as in PyTorch) only scales the step.
//! Defaults ρ = 0.9, ε = 1e-6 (torch/optim). Sparse: lazy.

use super::Optimizer;

/// Adadelta; state: E[g²] and E[Δ²].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adadelta {
    /// Decay ρ of both running averages.
    pub rho: f32,
    /// ε.
    pub eps: f32,
}

impl Default for Adadelta {
    fn default() -> Self {
        Adadelta {
            rho: 0.9,
            eps: 1e-6,
        }
    }
}

impl Optimizer for Adadelta {
    const STATE: usize = 2;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let eg2 = self.rho * s[0] + (1.0 - self.rho) * g * g;
        let delta = -((s[1] + self.eps).sqrt() / (eg2 + self.eps).sqrt()) * g;
        s[0] = eg2;
        s[1] = self.rho * s[1] + (1.0 - self.rho) * delta * delta;
        w + lr * delta
    }
}
