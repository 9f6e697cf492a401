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

/// Fills `perm` with the visiting order of the rows in `rows` for epoch `epoch`;
/// `losses` (one per example of the whole data set) is required for the curriculum
/// orders. With `block` > 1, `shuffle` permutes blocks of `block` consecutive rows
/// instead of single rows, so memory is read in streams (LIBMF's trick); `block` = 1 is
/// the classic per-row shuffle.
pub(crate) fn epoch_order(
    order: Order,
    perm: &mut Vec<u32>,
    rows: std::ops::Range<usize>,
    block: usize,
    seed: u64,
    epoch: usize,
    losses: Option<&[f32]>,
) {
    let n = rows.len();
    perm.clear();
    perm.extend(rows.start as u32..rows.end as u32);
    let by_loss = |v: &mut [u32], l: &[f32]| {
        v.sort_by(|&a, &b| l[a as usize].total_cmp(&l[b as usize]).then(a.cmp(&b)))
    };
    match order {
        Order::None => {}
        Order::Shuffle if block <= 1 => perm.shuffle(&mut epoch_rng(seed, epoch)),
        Order::Shuffle => {
            let mut blocks: Vec<u32> = (0..n.div_ceil(block) as u32).collect();
            blocks.shuffle(&mut epoch_rng(seed, epoch));
            perm.clear();
            for b in blocks {
                let lo = rows.start + b as usize * block;
                perm.extend(lo as u32..(lo + block).min(rows.end) as u32);
            }
        }
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
            epoch_order(order, &mut p, 0..11, 1, 3, 0, Some(&losses));
            let mut s = p.clone();
            s.sort_unstable();
            assert_eq!(s, (0..11).collect::<Vec<u32>>(), "{order:?}");
        }
        let mut p = Vec::new();
        epoch_order(Order::Curriculum, &mut p, 0..11, 1, 3, 0, Some(&losses));
        assert!(
            p.windows(2)
                .all(|w| losses[w[0] as usize] <= losses[w[1] as usize])
        );
        let mut q = Vec::new();
        epoch_order(Order::Shuffle, &mut q, 0..11, 1, 3, 1, None);
        epoch_order(Order::Shuffle, &mut p, 0..11, 1, 3, 0, None);
        assert_ne!(p, q, "a fresh permutation each epoch");
        epoch_order(Order::Shuffle, &mut p, 5..16, 4, 3, 0, None);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (5..16).collect::<Vec<u32>>());
        // Blocks of 4 consecutive rows stay together (the last block is short).
        let starts: Vec<u32> = p.iter().copied().filter(|r| (r - 5) % 4 == 0).collect();
        for st in starts {
            let k = p.iter().position(|&r| r == st).unwrap();
            let len = (16 - st).min(4) as usize;
            assert_eq!(p[k..k + len], (st..st + len as u32).collect::<Vec<_>>()[..]);
        }
    }
}
