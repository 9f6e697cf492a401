//! Plain SGD: θ ← θ − η g (Robbins & Monro 1951; Ruder §4.1). Sparse: exact.

use super::Optimizer;

/// Plain stochastic gradient descent; no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd;

impl Optimizer for Sgd {
    const STATE: usize = 0;
    type Ctx = f32;
    #[inline(always)]
    fn ctx(&self, lr: f32, _t: u64) -> f32 {
        lr
    }
    #[inline(always)]
    fn step(&self, lr: &f32, w: f32, g: f32, _s: &mut [f32]) -> f32 {
        w - lr * g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn steps_against_the_gradient() {
        assert_eq!(
            super::super::test_util::run(Sgd, 0.5, 1.0, &[1.0, -2.0]),
            vec![0.5, 1.5]
        );
    }
}
