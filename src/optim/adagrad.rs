//! AdaGrad (Duchi, Hazan & Singer 2011; Ruder §4.3): G ← G + g²; θ ← θ − η g / √(G + ε).
//! Default ε = 1e-8; default η = 0.1 here (Ruder quotes 0.01 as the common library
//! default, which is too slow for 10 epochs on unit-scaled sparse data).
//! Sparse: exact (a zero gradient changes neither G nor θ).

use super::Optimizer;

/// AdaGrad; state: the sum of squared gradients G.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaGrad {
    /// ε inside the square root.
    pub eps: f32,
}

impl Default for AdaGrad {
    fn default() -> Self {
        AdaGrad { eps: 1e-8 }
    }
}

impl Optimizer for AdaGrad {
    const STATE: usize = 1;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let acc = s[0] + g * g;
        s[0] = acc;
        w - lr * g / (acc + self.eps).sqrt()
    }
}
