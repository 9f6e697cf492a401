//! Heavy-ball momentum (Qian 1999; Ruder §4.1): v ← γ v + η g; θ ← θ − v.
//! Default γ = 0.9. Sparse: lazy (an untouched coordinate's velocity is not applied).

use super::Optimizer;

/// Momentum; state: the velocity v.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Momentum {
    /// Momentum term γ.
    pub gamma: f32,
}

impl Default for Momentum {
    fn default() -> Self {
        Momentum { gamma: 0.9 }
    }
}

impl Optimizer for Momentum {
    const STATE: usize = 1;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let v = self.gamma * s[0] + lr * g;
        s[0] = v;
        w - v
    }
}
