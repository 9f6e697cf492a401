//! A trained matrix-factorization model: predictions, evaluation and recommendations.

use std::collections::HashMap;

use crate::data::RatingsDataset;

/// Biased matrix factorization r̂ = μ + σ·(b_u + b_i + p_u·q_i), clipped to the rating
/// range of the training data. The factors and biases are in standardized units
/// (ratings minus their mean μ, divided by their standard deviation σ), which is what
/// makes the default learning rate and L2 strength independent of the rating scale.
#[derive(Debug, Clone, PartialEq)]
pub struct MfModel {
    /// Number of factors K.
    pub rank: usize,
    /// Mean training rating μ.
    pub mean: f32,
    /// Standard deviation σ of the training ratings (1 when they are all equal).
    pub scale: f32,
    /// Smallest training rating (predictions are clipped to it).
    pub min_rating: f32,
    /// Largest training rating.
    pub max_rating: f32,
    /// Bias of each user (dense index).
    pub user_bias: Vec<f32>,
    /// Bias of each item.
    pub item_bias: Vec<f32>,
    /// User factors, users × rank, row-major.
    pub user_factors: Vec<f32>,
    /// Item factors, items × rank, row-major.
    pub item_factors: Vec<f32>,
    /// Original id of each dense user index.
    pub user_ids: Vec<u64>,
    /// Original id of each dense item index.
    pub item_ids: Vec<u64>,
    /// Items each user rated in training (dense indices, sorted): `rated_items[
    /// rated_offsets[u]..rated_offsets[u + 1]]`.
    pub rated_offsets: Vec<u64>,
    /// See `rated_offsets`.
    pub rated_items: Vec<u32>,
    /// Training metadata (optimizer, rank, epochs...), stored in the model file.
    pub meta: serde_json::Value,
}

/// Test-set figures of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MfMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Ratings whose user was not in the training data (predicted from the item alone).
    pub unknown_users: usize,
    /// Ratings whose item was not in the training data.
    pub unknown_items: usize,
}

/// A recommended item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendation {
    /// Original item id.
    pub item: u64,
    /// Predicted rating.
    pub score: f32,
}

impl MfModel {
    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Prediction for dense indices; `None` stands for a user or item not seen in
    /// training, whose bias and factors count as zero.
    pub fn predict_dense(&self, u: Option<u32>, i: Option<u32>) -> f32 {
        self.unclipped(u, i).clamp(self.min_rating, self.max_rating)
    }

    /// μ + σ·(b_u + b_i + p_u·q_i) before clipping (ranks items whose clipped
    /// predictions tie at the top of the scale).
    pub fn unclipped(&self, u: Option<u32>, i: Option<u32>) -> f32 {
        let k = self.rank;
        let mut z = 0.0f32;
        if let Some(u) = u {
            z += self.user_bias[u as usize];
        }
        if let Some(i) = i {
            z += self.item_bias[i as usize];
        }
        if let (Some(u), Some(i)) = (u, i) {
            let (u, i) = (u as usize, i as usize);
            z += super::kernel::dot(
                &self.user_factors[u * k..(u + 1) * k],
                &self.item_factors[i * k..(i + 1) * k],
            );
        }
        self.mean + self.scale * z
    }

    /// One prediction per rating of `data` (matched by original ids).
    pub fn predict(&self, data: &RatingsDataset) -> Vec<f32> {
        let r = Resolved::new(data, &self.user_ids, &self.item_ids);
        r.pairs()
            .map(|(u, i, _)| self.predict_dense(u, i))
            .collect()
    }

    /// RMSE and MAE on `data` (matched by original ids).
    pub fn evaluate(&self, data: &RatingsDataset) -> MfMetrics {
        Resolved::new(data, &self.user_ids, &self.item_ids).metrics(self)
    }

    /// The dense index of user `id`, if it was in the training data.
    pub fn user_index(&self, id: u64) -> Option<u32> {
        self.user_ids
            .iter()
            .position(|&u| u == id)
            .map(|p| p as u32)
    }

    /// The dense index of item `id`, if it was in the training data.
    pub fn item_index(&self, id: u64) -> Option<u32> {
        self.item_ids
            .iter()
            .position(|&i| i == id)
            .map(|p| p as u32)
    }

    /// The predicted rating of `item` by `user`, both by their original ids; a user or
    /// item not seen in training is predicted from the biases it has (the mean, when
    /// neither was seen).
    pub fn predict_ids(&self, user: u64, item: u64) -> f32 {
        self.predict_dense(self.user_index(user), self.item_index(item))
    }

    /// [`MfModel::recommend`] for a user by original id: `None` for a user not seen in
    /// training (nothing is known of what they like).
    pub fn recommend_for(&self, user: u64, n: usize) -> Option<Vec<Recommendation>> {
        self.user_index(user).map(|u| self.recommend(u, n))
    }

    /// The `n` items with the highest predicted rating among those user `u` (dense
    /// index) did not rate in training, ranked by the unclipped prediction; ties go to
    /// the smaller original id. `score` is the (clipped) predicted rating. Empty for a
    /// `u` beyond the users.
    pub fn recommend(&self, u: u32, n: usize) -> Vec<Recommendation> {
        let ur = u as usize;
        if ur >= self.n_users() || self.rated_offsets.len() != self.n_users() + 1 {
            return Vec::new();
        }
        let rated =
            &self.rated_items[self.rated_offsets[ur] as usize..self.rated_offsets[ur + 1] as usize];
        let mut cands: Vec<(f32, u64, u32)> = (0..self.n_items() as u32)
            .filter(|i| rated.binary_search(i).is_err())
            .map(|i| {
                (
                    self.unclipped(Some(u), Some(i)),
                    self.item_ids[i as usize],
                    i,
                )
            })
            .collect();
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        cands
            .into_iter()
            .take(n)
            .map(|(_, item, i)| Recommendation {
                item,
                score: self.predict_dense(Some(u), Some(i)),
            })
            .collect()
    }
}

/// Ratings with their users and items resolved, by original id, to the dense indices
/// of a training set (`None`: not in it).
#[derive(Debug)]
pub(crate) struct Resolved<'a> {
    data: &'a RatingsDataset,
    users: Vec<Option<u32>>,
    items: Vec<Option<u32>>,
}

impl<'a> Resolved<'a> {
    /// Resolves `data` against the training ids `user_ids` and `item_ids`.
    pub(crate) fn new(data: &'a RatingsDataset, user_ids: &[u64], item_ids: &[u64]) -> Self {
        let resolve = |train: &[u64], ids: &[u64]| {
            let map: HashMap<u64, u32> = train
                .iter()
                .enumerate()
                .map(|(n, &id)| (id, n as u32))
                .collect();
            ids.iter().map(|id| map.get(id).copied()).collect()
        };
        Resolved {
            data,
            users: resolve(user_ids, &data.user_ids),
            items: resolve(item_ids, &data.item_ids),
        }
    }

    /// (user, item, rating) of every rating, in order.
    fn pairs(&self) -> impl Iterator<Item = (Option<u32>, Option<u32>, f32)> + '_ {
        let d = self.data;
        (0..d.len()).map(|r| {
            (
                self.users[d.users[r] as usize],
                self.items[d.items[r] as usize],
                d.ratings[r],
            )
        })
    }

    /// RMSE and MAE of `m` on these ratings.
    pub(crate) fn metrics(&self, m: &MfModel) -> MfMetrics {
        let (mut se, mut ae) = (0.0f64, 0.0f64);
        let (mut uu, mut ui) = (0, 0);
        for (u, i, r) in self.pairs() {
            uu += usize::from(u.is_none());
            ui += usize::from(i.is_none());
            let e = f64::from(r) - f64::from(m.predict_dense(u, i));
            se += e * e;
            ae += e.abs();
        }
        let n = self.data.len().max(1) as f64;
        MfMetrics {
            rmse: (se / n).sqrt(),
            mae: ae / n,
            unknown_users: uu,
            unknown_items: ui,
        }
    }
}
