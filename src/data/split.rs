//! Seeded splits of a data set (for `--holdout`).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use sprs::CsMatI;

use super::SparseDataset;
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
        SparseDataset::new(x, y, self.index_base()).expect("rows of a valid data set stay valid")
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
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::config(
                "holdout",
                format!("must be a fraction in (0, 1), got {fraction}"),
            ));
        }
        let n = self.rows();
        let k = ((n as f64) * fraction).round() as usize;
        if k == 0 || k == n {
            return Err(Error::config(
                "holdout",
                format!("a fraction of {fraction} of {n} rows leaves one part empty"),
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
        Ok((self.select(&rest), self.select(&held)))
    }
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
}
