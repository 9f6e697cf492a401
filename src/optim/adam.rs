//! Adam (Kingma & Ba 2015; Ruder §4.6):
//! m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; m̂ = m/(1−β1ᵗ); v̂ = v/(1−β2ᵗ);
//! θ ← θ − η m̂ / (√v̂ + ε). Defaults β1 = 0.9, β2 = 0.999, ε = 1e-8, η = 0.001.
//! Sparse: lazy, with the global step t, as PyTorch's `SparseAdam`.

use super::Optimizer;

/// Adam; state: m and v.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// ε outside the square root.
    pub eps: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Per-step constants of Adam-like methods.
#[derive(Debug, Clone, Copy)]
pub struct AdamCtx {
    /// Learning rate.
    pub lr: f32,
    /// 1 − β1ᵗ.
    pub bc1: f32,
    /// 1 − β2ᵗ.
    pub bc2: f32,
}

impl Adam {
    pub(crate) fn make_ctx(&self, lr: f32, t: u64) -> AdamCtx {
        let t = t.min(i32::MAX as u64) as i32;
        AdamCtx {
            lr,
            bc1: 1.0 - f64::from(self.beta1).powi(t) as f32,
            bc2: 1.0 - f64::from(self.beta2).powi(t) as f32,
        }
    }

    /// Updates the moments and returns them.
    #[inline(always)]
    pub(crate) fn moments(&self, g: f32, s: &mut [f32]) -> (f32, f32) {
        let m = self.beta1 * s[0] + (1.0 - self.beta1) * g;
        let v = self.beta2 * s[1] + (1.0 - self.beta2) * g * g;
        s[0] = m;
        s[1] = v;
        (m, v)
    }
}

impl Optimizer for Adam {
    const STATE: usize = 2;
    type Ctx = AdamCtx;
    #[inline(always)]
    fn ctx(&self, lr: f32, t: u64) -> AdamCtx {
        self.make_ctx(lr, t)
    }
    #[inline(always)]
    fn step(&self, c: &AdamCtx, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let (m, v) = self.moments(g, s);
        w - c.lr * (m / c.bc1) / ((v / c.bc2).sqrt() + self.eps)
    }
}
