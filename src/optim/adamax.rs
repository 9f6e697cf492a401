//! AdaMax (Kingma & Ba 2015, §7; Ruder §4.7): m ← β1 m + (1−β1) g;
//! u ← max(β2 u, |g|); θ ← θ − (η/(1−β1ᵗ)) m / u (no bias correction on u).
//! Defaults η = 0.002, β1 = 0.9, β2 = 0.999. A coordinate whose gradients were all zero
//! has u = 0 and is left unchanged. Sparse: lazy, global t.

use super::Optimizer;
use super::adam::AdamCtx;

/// AdaMax; state: m and u.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaMax {
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the infinity norm.
    pub beta2: f32,
}

impl Default for AdaMax {
    fn default() -> Self {
        AdaMax {
            beta1: 0.9,
            beta2: 0.999,
        }
    }
}

impl Optimizer for AdaMax {
    const STATE: usize = 2;
    type Ctx = AdamCtx;
    #[inline(always)]
    fn ctx(&self, lr: f32, t: u64) -> AdamCtx {
        super::Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: 0.0,
        }
        .make_ctx(lr, t)
    }
    #[inline(always)]
    fn step(&self, c: &AdamCtx, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let m = self.beta1 * s[0] + (1.0 - self.beta1) * g;
        let u = (self.beta2 * s[1]).max(g.abs());
        s[0] = m;
        s[1] = u;
        if u > 0.0 {
            w - (c.lr / c.bc1) * m / u
        } else {
            w
        }
    }
}
