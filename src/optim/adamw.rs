//! AdamW (Loshchilov & Hutter 2019): decoupled weight decay θ ← θ − η λ_w θ, then an
//! Adam step. Matches PyTorch's `AdamW`. Defaults: Adam's, λ_w = 0.01. Sparse: lazy
//! (the decay is applied only when a coordinate is touched).

use super::Optimizer;
use super::adam::{Adam, AdamCtx};

/// AdamW; state: m and v.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamW {
    /// Adam's hyper-parameters.
    pub adam: Adam,
    /// Decoupled weight decay λ_w.
    pub weight_decay: f32,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW {
            adam: Adam::default(),
            weight_decay: 0.01,
        }
    }
}

impl Optimizer for AdamW {
    const STATE: usize = 2;
    type Ctx = AdamCtx;
    #[inline(always)]
    fn ctx(&self, lr: f32, t: u64) -> AdamCtx {
        self.adam.make_ctx(lr, t)
    }
    #[inline(always)]
    fn step(&self, c: &AdamCtx, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let w = w * (1.0 - c.lr * self.weight_decay);
        self.adam.step(c, w, g, s)
    }
}
