//! Evaluation metrics: mean loss, accuracy, ROC AUC (scores computed in parallel by
//! [`LinearModel::scores`]; no rayon, see there).

use crate::data::SparseDataset;
use crate::error::{Error, Result};
use crate::model::{LinearModel, LossKind};

/// Metrics of a model on labelled data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Mean loss (log loss for logistic, hinge loss for hinge, squared error for squared).
    pub loss: f64,
    /// Fraction of rows whose sign is right (score > 0 predicts +1).
    pub accuracy: f64,
    /// Area under the ROC curve (ties count one half); `None` when one class is absent.
    pub auc: Option<f64>,
}

/// Evaluates `model` on `data`.
///
/// # Errors
/// [`Error::NonFiniteScore`] when a score is NaN or infinite (the model diverged or
/// overflows on this data): no metric of such scores means anything.
pub fn evaluate(model: &LinearModel, data: &SparseDataset) -> Result<Metrics> {
    let scores = model.scores(data);
    from_scores(model.loss, &scores, data.y())
}

/// Metrics from precomputed scores. For squared loss the loss is ½(z − y)², so the
/// reported mean squared error is twice the mean loss: `loss` holds the MSE. Losses
/// are summed in f64, so a large but finite score gives a large but finite loss.
///
/// # Errors
/// [`Error::NonFiniteScore`] naming the first row whose score is not finite.
pub fn from_scores(loss: LossKind, scores: &[f32], y: &[f32]) -> Result<Metrics> {
    if let Some(row) = scores.iter().position(|z| !z.is_finite()) {
        return Err(Error::NonFiniteScore { row });
    }
    let n = scores.len().max(1) as f64;
    let (sum, correct) = scores
        .iter()
        .zip(y)
        .fold((0f64, 0usize), |(s, c), (&z, &y)| {
            let l = match loss {
                LossKind::Squared => (f64::from(z) - f64::from(y)).powi(2),
                _ => f64::from(loss.loss(z, y)),
            };
            (s + l, c + usize::from((z > 0.0) == (y > 0.0)))
        });
    // Finite f32 scores give losses below 1e77, which an f64 sum cannot overflow.
    Ok(Metrics {
        loss: sum / n,
        accuracy: correct as f64 / n,
        auc: auc(scores, y),
    })
}

/// ROC AUC by the rank-sum (Mann–Whitney) formula with average ranks for ties.
/// Scores are ordered by [`f32::total_cmp`] and tied by bit pattern, so any input
/// (NaN included) terminates; `None` when one class is absent or a score is NaN.
pub fn auc(scores: &[f32], y: &[f32]) -> Option<f64> {
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut order: Vec<(f32, bool)> = scores.iter().zip(y).map(|(&s, &y)| (s, y > 0.0)).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let pos = order.iter().filter(|p| p.1).count();
    let neg = order.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < order.len() {
        // `j` always passes `i` (a value is equal to itself under total_cmp).
        let mut j = i + 1;
        while j < order.len() && order[j].0.total_cmp(&order[i].0).is_eq() {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum += avg_rank * order[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_pair_counting() {
        let s = [0.1f32, 0.4, 0.35, 0.8, 0.4, 0.0];
        let y = [-1.0f32, -1.0, 1.0, 1.0, 1.0, -1.0];
        let mut good = 0.0;
        let mut pairs = 0.0;
        for i in 0..6 {
            for j in 0..6 {
                if y[i] > 0.0 && y[j] < 0.0 {
                    pairs += 1.0;
                    good += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((auc(&s, &y).unwrap() - good / pairs).abs() < 1e-12);
        assert_eq!(auc(&s[..2], &y[..2]), None);
    }

    #[test]
    fn nan_and_infinite_scores_terminate_and_are_errors() {
        let y = [1.0f32, -1.0, 1.0];
        assert_eq!(auc(&[f32::NAN, 0.5, f32::NAN], &y), None);
        assert_eq!(
            auc(&[f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY], &y),
            Some(1.0)
        );
        for bad in [f32::NAN, f32::INFINITY] {
            let e = from_scores(LossKind::Hinge, &[0.0, bad, 1.0], &y).unwrap_err();
            assert!(matches!(e, Error::NonFiniteScore { row: 1 }), "{e}");
        }
        // A huge finite score gives a finite squared error (f64 arithmetic).
        let m = from_scores(LossKind::Squared, &[3e38, 0.0, 0.0], &y).unwrap();
        assert!(m.loss.is_finite() && m.loss > 1e76);
    }

    #[test]
    fn accuracy_and_log_loss() {
        let m = from_scores(LossKind::Logistic, &[0.0, 2.0, -1.0], &[1.0, 1.0, 1.0]).unwrap();
        assert!((m.accuracy - 1.0 / 3.0).abs() < 1e-12);
        let expect = (2f64.ln() + (1.0 + (-2f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 3.0;
        assert!((m.loss - expect).abs() < 1e-6);
    }
}
