//! FTRL-Proximal (McMahan et al., "Ad Click Prediction: a View from the Trenches",
//! KDD 2013, Algorithm 1), per coordinate with α = η:
//! σ = (√(n + g²) − √n)/α; z ← z + g − σ θ; n ← n + g²;
//! θ = 0 if |z| ≤ λ1, else −(z − sign(z) λ1) / ((β + √n)/α + λ2).
//! Defaults α = 0.1, β = 1, and its own λ1 = λ2 = 0 (the trainer's `--l1`/`--l2`
//! apply on top, as for every optimizer). Sparse: exact (a zero gradient leaves z and n,
//! hence θ, unchanged).

use super::Optimizer;

/// FTRL-Proximal; state: z and n.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ftrl {
    /// β in the per-coordinate rate.
    pub beta: f32,
    /// FTRL's own L1 strength λ1.
    pub l1: f32,
    /// FTRL's own L2 strength λ2.
    pub l2: f32,
}

impl Default for Ftrl {
    fn default() -> Self {
        Ftrl {
            beta: 1.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

impl Optimizer for Ftrl {
    const STATE: usize = 2;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, alpha: &f32, w: f32, g: f32, s: &mut [f32]) -> f32 {
        let (z, n) = (s[0], s[1]);
        let n_new = n + g * g;
        let sigma = (n_new.sqrt() - n.sqrt()) / alpha;
        let z_new = z + g - sigma * w;
        s[0] = z_new;
        s[1] = n_new;
        if z_new.abs() <= self.l1 {
            0.0
        } else {
            -(z_new - z_new.signum() * self.l1) / ((self.beta + n_new.sqrt()) / alpha + self.l2)
        }
    }
}
