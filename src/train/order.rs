//! The order in which an epoch visits the examples (Ruder §4.9, "shuffling and
//! curriculum learning").
//!
//! * `shuffle` (default): a fresh seeded permutation every epoch.
//! * `none`: file order.
//! * `curriculum` (Bengio et al. 2009): easy to hard, where an example's difficulty is
//!   its loss under the model at the start of the epoch (ties, e.g. every example under
//!   the zero model of epoch 1, keep file order). The order is recomputed each epoch.
//! * `mixed` (Zaremba & Sutskever 2014): half the examples, chosen at random each epoch,
//!   in random order, interleaved one-for-one with the other half sorted easy to hard,
//!   so hard examples are seen from the start.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};

/// Example order per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Seeded reshuffle every epoch.
    #[default]
    Shuffle,
    /// File order.
    None,
    /// Easy to hard by current loss.
    Curriculum,
    /// Half curriculum, half random, interleaved.
    Mixed,
}

impl Order {
    /// The order called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "shuffle" => Ok(Order::Shuffle),
            "none" => Ok(Order::None),
            "curriculum" => Ok(Order::Curriculum),
            "mixed" => Ok(Order::Mixed),
            other => Err(Error::config(
                "order",
                format!("unknown order `{other}`; expected shuffle, none, curriculum or mixed"),
            )),
        }
    }

    /// Whether the order needs each example's current loss.
    pub fn needs_losses(&self) -> bool {
        matches!(self, Order::Curriculum | Order::Mixed)
    }
}

/// The RNG for epoch `epoch` of a run seeded with `seed`.
pub(crate) fn epoch_rng(seed: u64, epoch: usize) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64 + 1))
}

/// Fills `perm` with the visiting order of epoch `epoch`; `losses` (one per example)
/// is required for the curriculum orders.
pub(crate) fn epoch_order(
    order: Order,
    perm: &mut Vec<u32>,
    n: usize,
    seed: u64,
    epoch: usize,
    losses: Option<&[f32]>,
) {
    perm.clear();
    perm.extend(0..n as u32);
    let by_loss = |v: &mut [u32], l: &[f32]| {
        v.sort_by(|&a, &b| l[a as usize].total_cmp(&l[b as usize]).then(a.cmp(&b)))
    };
    match order {
        Order::None => {}
        Order::Shuffle => perm.shuffle(&mut epoch_rng(seed, epoch)),
        Order::Curriculum => by_loss(perm, losses.expect("curriculum needs losses")),
        Order::Mixed => {
            let l = losses.expect("mixed needs losses");
            perm.shuffle(&mut epoch_rng(seed, epoch));
            let half = n / 2;
            let (random, rest) = perm.split_at_mut(half);
            by_loss(rest, l);
            let mut out = Vec::with_capacity(n);
            let mut ri = random.iter();
            let mut ci = rest.iter();
            loop {
                match (ci.next(), ri.next()) {
                    (None, None) => break,
                    (a, b) => out.extend(a.into_iter().chain(b).copied()),
                }
            }
            *perm = out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_is_a_permutation() {
        let losses: Vec<f32> = (0..11).map(|i| ((i * 7) % 11) as f32).collect();
        for order in [Order::Shuffle, Order::None, Order::Curriculum, Order::Mixed] {
            let mut p = Vec::new();
            epoch_order(order, &mut p, 11, 3, 0, Some(&losses));
            let mut s = p.clone();
            s.sort_unstable();
            assert_eq!(s, (0..11).collect::<Vec<u32>>(), "{order:?}");
        }
        let mut p = Vec::new();
        epoch_order(Order::Curriculum, &mut p, 11, 3, 0, Some(&losses));
        assert!(
            p.windows(2)
                .all(|w| losses[w[0] as usize] <= losses[w[1] as usize])
        );
        let mut q = Vec::new();
        epoch_order(Order::Shuffle, &mut q, 11, 3, 1, None);
        epoch_order(Order::Shuffle, &mut p, 11, 3, 0, None);
        assert_ne!(p, q, "a fresh permutation each epoch");
    }
}
