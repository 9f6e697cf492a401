//! Linear models (the loss functions and the trained model) and the model file format
//! shared with matrix factorization.

mod file;

pub use file::{
    AnyModel, MODEL_VERSION, decode_model, load_any_model, load_mf_model, load_model,
    save_mf_model, save_model,
};

use crate::data::{Classes, IndexBase, SparseDataset};

/// The loss of a linear model, as a function of the score z = w·x + b and the label
/// y ∈ {−1, +1} (VW's `loss_functions.h` shape: value and first derivative in z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Logistic regression: log(1 + exp(−y z)).
    #[default]
    Logistic,
    /// Linear SVM: max(0, 1 − y z).
    Hinge,
    /// Least squares on the ±1 labels: ½ (z − y)².
    Squared,
}

impl LossKind {
    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            LossKind::Logistic => "logistic",
            LossKind::Hinge => "hinge",
            LossKind::Squared => "squared",
        }
    }

    /// The loss at score `z` for label `y`.
    #[inline]
    pub fn loss(&self, z: f32, y: f32) -> f32 {
        match self {
            LossKind::Logistic => {
                let m = y * z;
                if m > 0.0 {
                    (-m).exp().ln_1p()
                } else {
                    -m + m.exp().ln_1p()
                }
            }
            LossKind::Hinge => (1.0 - y * z).max(0.0),
            LossKind::Squared => 0.5 * (z - y) * (z - y),
        }
    }

    /// ∂loss/∂z at score `z` for label `y` (a subgradient for the hinge).
    #[inline]
    pub fn dloss(&self, z: f32, y: f32) -> f32 {
        match self {
            LossKind::Logistic => -y / (1.0 + (y * z).exp()),
            LossKind::Hinge => {
                if y * z < 1.0 {
                    -y
                } else {
                    0.0
                }
            }
            LossKind::Squared => z - y,
        }
    }

    /// The loss split as `linear + ln(factor)`, and its derivative, for the training
    /// loop: summing the linear parts and multiplying the factors (one `ln` per few
    /// hundred examples) is exact up to rounding and spares a logarithm per example.
    #[inline(always)]
    pub fn loss_parts_and_dloss(&self, z: f32, y: f32) -> (f32, f32, f32) {
        match self {
            LossKind::Logistic => {
                let m = y * z;
                let e = (-m.abs()).exp();
                if m >= 0.0 {
                    (0.0, 1.0 + e, -y * e / (1.0 + e))
                } else {
                    (-m, 1.0 + e, -y / (1.0 + e))
                }
            }
            _ => (self.loss(z, y), 1.0, self.dloss(z, y)),
        }
    }

    /// What `predict` prints for score `z`: a probability for logistic, the score otherwise.
    #[inline]
    pub fn output(&self, z: f32) -> f32 {
        match self {
            LossKind::Logistic => 1.0 / (1.0 + (-z).exp()),
            _ => z,
        }
    }
}

/// A trained linear model: one weight per feature and a bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// The loss it was trained for.
    pub loss: LossKind,
    /// One weight per feature.
    pub weights: Vec<f32>,
    /// The bias (intercept).
    pub bias: f32,
    /// Free-form training description kept in the model file (JSON).
    pub meta: serde_json::Value,
    /// How the training file numbered its features: test and predict files read with
    /// `--index-base auto` are read the same way.
    pub index_base: IndexBase,
    /// The training file's two label values (for −1 and +1).
    pub classes: Classes,
}

impl LinearModel {
    /// True when every weight and the bias are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.bias.is_finite() && self.weights.iter().all(|w| w.is_finite())
    }

    /// The score w·x + b of one sparse row. Features beyond the model's are ignored
    /// (they had no training data, so their weight is 0).
    #[inline]
    pub fn score(&self, idx: &[u32], val: &[f32]) -> f32 {
        let mut z = self.bias;
        for (&j, &v) in idx.iter().zip(val) {
            if let Some(w) = self.weights.get(j as usize) {
                z += w * v;
            }
        }
        z
    }

    /// Scores of every row, computed by one scoped thread per core. (Plain scoped
    /// threads rather than rayon: rayon's workers keep spinning for a while after a
    /// parallel call, which steals the cores from pinned training threads when this
    /// runs between epochs.)
    pub fn scores(&self, data: &SparseDataset) -> Vec<f32> {
        let n = data.rows();
        let mut out = vec![0f32; n];
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n / 4096 + 1);
        let chunk = n.div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for (c, part) in out.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (k, z) in part.iter_mut().enumerate() {
                        let (i, v) = data.row(c * chunk + k);
                        *z = self.score(i, v);
                    }
                });
            }
        });
        out
    }

    /// ‖w‖² + b², the bias included (it is regularized like the weights).
    pub fn squared_norm(&self) -> f64 {
        self.weights
            .iter()
            .chain(std::iter::once(&self.bias))
            .map(|&w| f64::from(w) * f64::from(w))
            .sum()
    }

    /// The prediction for one row of `(feature index, value)` pairs: a probability for
    /// logistic, the score otherwise. Features beyond the model's count as 0.
    pub fn predict_row(&self, row: &[(u32, f32)]) -> f32 {
        let mut z = self.bias;
        for &(j, v) in row {
            if let Some(w) = self.weights.get(j as usize) {
                z += w * v;
            }
        }
        self.loss.output(z)
    }

    /// The predicted class of one row, as the training file wrote its label.
    pub fn predict_label(&self, idx: &[u32], val: &[f32]) -> f64 {
        self.classes.decode(self.score(idx, val))
    }

    /// Predictions (probabilities for logistic, scores otherwise), in parallel.
    pub fn predict(&self, data: &SparseDataset) -> Vec<f32> {
        let mut s = self.scores(data);
        s.iter_mut().for_each(|z| *z = self.loss.output(*z));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for loss in [LossKind::Logistic, LossKind::Hinge, LossKind::Squared] {
            for &(z, y) in &[(0.3f32, 1.0f32), (-2.0, 1.0), (1.7, -1.0), (-0.2, -1.0)] {
                let h = 1e-3f32;
                let fd = (loss.loss(z + h, y) - loss.loss(z - h, y)) / (2.0 * h);
                assert!(
                    (fd - loss.dloss(z, y)).abs() < 1e-2,
                    "{loss:?} z={z} y={y}: {fd} vs {}",
                    loss.dloss(z, y)
                );
            }
        }
    }

    #[test]
    fn fused_loss_matches_the_separate_forms() {
        for loss in [LossKind::Logistic, LossKind::Hinge, LossKind::Squared] {
            for &(z, y) in &[
                (0.3f32, 1.0f32),
                (-2.0, 1.0),
                (1.7, -1.0),
                (-30.0, -1.0),
                (0.0, 1.0),
            ] {
                let (lin, factor, d) = loss.loss_parts_and_dloss(z, y);
                let l = lin + factor.ln();
                assert!(
                    (l - loss.loss(z, y)).abs() < 1e-6 && (d - loss.dloss(z, y)).abs() < 1e-6,
                    "{loss:?} {z} {y}"
                );
            }
        }
    }

    #[test]
    fn logistic_loss_is_stable_for_large_margins() {
        let l = LossKind::Logistic;
        assert_eq!(l.loss(1000.0, 1.0), 0.0);
        assert!((l.loss(-1000.0, 1.0) - 1000.0).abs() < 1e-3);
        assert!(l.dloss(-1000.0, 1.0).is_finite());
    }
}
