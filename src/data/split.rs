//! Seeded splits of a data set (for `--holdout`).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use sprs::CsMatI;

use super::{RatingsDataset, SparseDataset};
use crate::error::{Error, Result};

impl SparseDataset {
    /// The rows `rows`, in that order, as a new data set with the same columns.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn select(&self, rows: &[usize]) -> SparseDataset {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0usize);
        let mut idx = Vec::new();
        let mut val = Vec::new();
        let mut y = Vec::with_capacity(rows.len());
        for &r in rows {
            let (i, v) = self.row(r);
            idx.extend_from_slice(i);
            val.extend_from_slice(v);
            indptr.push(idx.len());
            y.push(self.y()[r]);
        }
        let x = CsMatI::try_new((rows.len(), self.cols()), indptr, idx, val)
            .expect("rows of a valid matrix stay valid");
        let mut out = SparseDataset::new(x, y, self.index_base())
            .expect("rows of a valid data set stay valid");
        out.classes = self.classes;
        out
    }

    /// Splits off a seeded random `fraction` of the rows: returns (rest, held out).
    /// Rows keep their file order within each part.
    ///
    /// # Errors
    /// [`Error::Config`] unless 0 < fraction < 1 and both parts get at least one row.
    pub fn split_holdout(
        &self,
        fraction: f64,
        seed: u64,
    ) -> Result<(SparseDataset, SparseDataset)> {
        let (rest, held) = holdout_rows(self.rows(), fraction, seed, "rows")?;
        Ok((self.select(&rest), self.select(&held)))
    }
}

impl RatingsDataset {
    /// The ratings `rows`, in that order, as a new data set; dense ids are renumbered in
    /// order of first appearance and keep their original ids.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn select(&self, rows: &[usize]) -> RatingsDataset {
        let mut umap = vec![u32::MAX; self.n_users()];
        let mut imap = vec![u32::MAX; self.n_items()];
        let mut out = RatingsDataset {
            users: Vec::with_capacity(rows.len()),
            items: Vec::with_capacity(rows.len()),
            ratings: Vec::with_capacity(rows.len()),
            user_ids: Vec::new(),
            item_ids: Vec::new(),
            layout: self.layout,
            implicit: self.implicit,
            header: self.header,
        };
        let renumber = |map: &mut [u32], ids: &mut Vec<u64>, dense: u32, orig: &[u64]| {
            let slot = &mut map[dense as usize];
            if *slot == u32::MAX {
                *slot = ids.len() as u32;
                ids.push(orig[dense as usize]);
            }
            *slot
        };
        for &r in rows {
            let u = renumber(&mut umap, &mut out.user_ids, self.users[r], &self.user_ids);
            let i = renumber(&mut imap, &mut out.item_ids, self.items[r], &self.item_ids);
            out.users.push(u);
            out.items.push(i);
            out.ratings.push(self.ratings[r]);
        }
        out
    }

    /// Splits off a seeded random `fraction` of the ratings: returns (rest, held out),
    /// each in file order. The parts keep the original ids, so they are matched by id.
    ///
    /// # Errors
    /// [`Error::Config`] unless 0 < fraction < 1 and both parts get at least one rating.
    pub fn split_holdout(
        &self,
        fraction: f64,
        seed: u64,
    ) -> Result<(RatingsDataset, RatingsDataset)> {
        let (rest, held) = holdout_rows(self.len(), fraction, seed, "ratings")?;
        Ok((self.select(&rest), self.select(&held)))
    }
}

/// The row indices of a seeded random split of `n` rows: (rest, held out), each sorted.
fn holdout_rows(
    n: usize,
    fraction: f64,
    seed: u64,
    unit: &str,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::config(
            "holdout",
            format!("must be a fraction in (0, 1), got {fraction}"),
        ));
    }
    let k = ((n as f64) * fraction).round() as usize;
    if k == 0 || k == n {
        return Err(Error::config(
            "holdout",
            format!("a fraction of {fraction} of {n} {unit} leaves one part empty"),
        ));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(
        seed ^ 0x005E_ED0F_B01D,
    ));
    let mut held: Vec<usize> = perm[..k].to_vec();
    let mut rest: Vec<usize> = perm[k..].to_vec();
    held.sort_unstable();
    rest.sort_unstable();
    Ok((rest, held))
}

#[cfg(test)]
mod tests {
    use crate::data::{LibsvmOptions, libsvm};

    #[test]
    fn holdout_partitions_rows() {
        let text: String = (1..=100)
            .map(|i| format!("{} {}:1\n", if i % 3 == 0 { "+1" } else { "-1" }, i))
            .collect();
        let d = libsvm::parse(text.as_bytes(), &LibsvmOptions::default()).unwrap();
        let (a, b) = d.split_holdout(0.2, 7).unwrap();
        assert_eq!((a.rows(), b.rows()), (80, 20));
        assert_eq!(a.cols(), 100);
        let mut all: Vec<u32> = (0..80)
            .map(|r| a.row(r).0[0])
            .chain((0..20).map(|r| b.row(r).0[0]))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<u32>>());
        assert_eq!(d.split_holdout(0.2, 7).unwrap().1, b, "seeded");
        assert!(d.split_holdout(1.0, 7).is_err());
    }

    #[test]
    fn ratings_holdout_partitions_and_keeps_original_ids() {
        let text: String = (0..200)
            .map(|n| format!("{}\t{}\t{}\n", 100 + n % 13, 500 + n % 7, n))
            .collect();
        let opts = crate::data::RatingsOptions::default();
        let d = crate::data::ratings::parse(text.as_bytes(), &opts).unwrap();
        let (a, b) = d.split_holdout(0.25, 3).unwrap();
        assert_eq!((a.len(), b.len()), (150, 50));
        let mut seen: Vec<(u64, u64, f32)> = [&a, &b]
            .iter()
            .flat_map(|p| {
                (0..p.len()).map(|r| {
                    let (u, i) = (p.users[r] as usize, p.items[r] as usize);
                    (p.user_ids[u], p.item_ids[i], p.ratings[r])
                })
            })
            .collect();
        seen.sort_by(|x, y| x.2.total_cmp(&y.2));
        for (n, (u, i, r)) in seen.into_iter().enumerate() {
            assert_eq!(
                (u, i, r),
                (100 + n as u64 % 13, 500 + n as u64 % 7, n as f32)
            );
        }
        assert!(d.split_holdout(0.0, 3).is_err());
    }
}
