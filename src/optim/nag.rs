//! Nesterov accelerated gradient, in the practical form used by Dozat and Ruder (§4.2):
//! m ← γ m + η g; θ ← θ − (γ m + η g), with g taken at the current θ. This equals
//! PyTorch's `SGD(nesterov=True)` for a constant η. Default γ = 0.9. Sparse: lazy.

use super::Optimizer;

/// NAG; state: the momentum m.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Nag {
    /// Momentum term γ.
    pub gamma: f32,
}

impl Default for Nag {
    fn default() -> Self {
        Nag { gamma: 0.9 }
    }
}

impl Optimizer for Nag {
    const STATE: usize = 1;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let m = self.gamma * s[0] + lr * g;
        s[0] = m;
        w - (self.gamma * m + lr * g)
    }
}
