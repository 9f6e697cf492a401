//! Nadam (Dozat 2016), in the form of Ruder's overview (§4.8):
//! θ ← θ − η/(√v̂ + ε) · (β1 m̂ + (1−β1) g / (1−β1ᵗ)), with Adam's m, v, m̂, v̂.
//! (PyTorch's `NAdam` adds a momentum-decay schedule, so it is checked against a NumPy
//! implementation of this equation instead.) Defaults are Adam's. Sparse: lazy.

use super::Optimizer;
use super::adam::{Adam, AdamCtx};

/// Nadam; state: m and v. Holds Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NAdam(pub Adam);

impl Optimizer for NAdam {
    const STATE: usize = 2;
    type Ctx = AdamCtx;
    #[inline(always)]
    fn ctx(&self, lr: f32, t: u64) -> AdamCtx {
        self.0.make_ctx(lr, t)
    }
    #[inline(always)]
    fn step(&self, c: &AdamCtx, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let a = &self.0;
        let (m, v) = a.moments(g, s);
        let nesterov = a.beta1 * (m / c.bc1) + (1.0 - a.beta1) * g / c.bc1;
        w - c.lr * nesterov / ((v / c.bc2).sqrt() + a.eps)
    }
}
