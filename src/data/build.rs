//! Data sets built from rows and triplets held in memory, checked as files are: every
//! problem is an [`Error::Config`] naming the argument and the row, never a panic.

use sprs::CsMatI;

use super::SparseDataset;
use super::libsvm::{Classes, IndexBase, MAX_FEATURES};
use super::ratings::{RatingsDataset, RatingsLayout, dense_ids};
use crate::error::{Error, Result};

/// A label of an in-memory row: a number (any two values, the smaller negative, as in
/// LIBSVM files; or −1/0/+1) or a `bool` (`true` is positive).
pub trait Label: Copy {
    /// The label as a number (`bool`: 1 or 0).
    fn value(self) -> f64;
}

macro_rules! number_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn value(self) -> f64 {
                self as f64
            }
        }
    )*};
}
number_label!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl Label for bool {
    fn value(self) -> f64 {
        f64::from(u8::from(self))
    }
}

impl SparseDataset {
    /// A data set from rows of `(feature index, value)` pairs (0-based indices, in any
    /// order) and one label per row. The feature count is `n_features`, or one past the
    /// largest index.
    ///
    /// ```
    /// use wildsgd::SparseDataset;
    /// let rows = vec![vec![(0, 1.0), (3, 0.5)], vec![(1, 2.0)], vec![]];
    /// let d = SparseDataset::from_rows(&rows, &[true, false, false], None)?;
    /// assert_eq!((d.rows(), d.cols(), d.y()), (3, 4, &[1.0f32, -1.0, -1.0][..]));
    /// # Ok::<(), wildsgd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for a label count that differs from the row count, a third
    /// label value, a non-finite label or value, an index repeated within a row, an index
    /// at or beyond `n_features`, or more than 4,294,967,295 features.
    pub fn from_rows<L: Label>(
        rows: &[Vec<(u32, f32)>],
        labels: &[L],
        n_features: Option<usize>,
    ) -> Result<SparseDataset> {
        if rows.len() != labels.len() {
            return Err(Error::config(
                "labels",
                format!("{} labels for {} rows", labels.len(), rows.len()),
            ));
        }
        let classes = classes_of(labels)?;
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0usize);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        let mut max_index: Option<u32> = None;
        let mut row: Vec<(u32, f32)> = Vec::new();
        for (r, pairs) in rows.iter().enumerate() {
            row.clear();
            row.extend_from_slice(pairs);
            row.sort_unstable_by_key(|p| p.0);
            if let Some(w) = row.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(Error::config(
                    "rows",
                    format!("row {r}: feature {} appears twice", w[0].0),
                ));
            }
            if let Some(&(j, v)) = row.iter().find(|p| !p.1.is_finite()) {
                return Err(Error::config(
                    "rows",
                    format!("row {r}: the value {v} of feature {j} is not finite"),
                ));
            }
            if let (Some(d), Some(&(j, _))) = (n_features, row.last())
                && j as usize >= d
            {
                return Err(Error::config(
                    "rows",
                    format!("row {r}: feature {j} is beyond the {d} features of n_features"),
                ));
            }
            max_index = max_index.max(row.last().map(|p| p.0));
            indices.extend(row.iter().map(|p| p.0));
            values.extend(row.iter().map(|p| p.1));
            indptr.push(indices.len());
        }
        let cols = match n_features {
            Some(d) if d == 0 || d > MAX_FEATURES => {
                return Err(Error::config(
                    "n_features",
                    format!("must be between 1 and {MAX_FEATURES}, got {d}"),
                ));
            }
            Some(d) => d,
            None => max_index.map_or(0, |j| j as usize + 1),
        };
        if cols > MAX_FEATURES {
            return Err(Error::config(
                "rows",
                format!(
                    "feature index {} is beyond the 32-bit column limit",
                    cols - 1
                ),
            ));
        }
        let y = labels
            .iter()
            .map(|l| classes.encode(l.value() + 0.0).unwrap_or(1.0))
            .collect();
        let x = CsMatI::try_new((rows.len(), cols), indptr, indices, values)
            .map_err(|(_, _, _, e)| Error::config("rows", e.to_string()))?;
        SparseDataset::new(x, y, IndexBase::Zero)?.with_classes(classes)
    }
}

/// The classes of in-memory labels, as [`Classes::from_values`] decides them.
fn classes_of<L: Label>(labels: &[L]) -> Result<Classes> {
    let mut seen: Vec<f64> = Vec::with_capacity(3);
    let usual = |x: f64| x == -1.0 || x == 0.0 || x == 1.0;
    for (r, l) in labels.iter().enumerate() {
        let v = l.value() + 0.0;
        if !v.is_finite() {
            return Err(Error::config(
                "labels",
                format!("row {r}: the label {v} is not finite"),
            ));
        }
        if seen.contains(&v) {
            continue;
        }
        if seen.len() >= 2 && !(usual(v) && seen.iter().all(|&s| usual(s))) {
            return Err(Error::config(
                "labels",
                format!(
                    "row {r}: a third label value {v} after {} and {} (binary classification takes two)",
                    seen[0], seen[1]
                ),
            ));
        }
        seen.push(v);
    }
    Ok(Classes::from_values(&seen))
}

impl RatingsDataset {
    /// Ratings from `(user, item, rating)` columns with any integer ids; ids are
    /// renumbered densely in order of first appearance (the maps back are kept).
    ///
    /// ```
    /// use wildsgd::RatingsDataset;
    /// let d = RatingsDataset::from_triplets(&[7, 7, 42], &[100, 200, 100], &[4.0, 2.5, 5.0])?;
    /// assert_eq!((d.n_users(), d.n_items(), d.user_ids.clone()), (2, 2, vec![7, 42]));
    /// # Ok::<(), wildsgd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the three columns differ in length or a rating is not finite.
    pub fn from_triplets(users: &[u64], items: &[u64], ratings: &[f32]) -> Result<RatingsDataset> {
        if users.len() != ratings.len() || items.len() != ratings.len() {
            return Err(Error::config(
                "ratings",
                format!(
                    "{} users, {} items and {} ratings: one of each per rating",
                    users.len(),
                    items.len(),
                    ratings.len()
                ),
            ));
        }
        if let Some(k) = ratings.iter().position(|r| !r.is_finite()) {
            return Err(Error::config(
                "ratings",
                format!("rating {k} ({}) is not finite", ratings[k]),
            ));
        }
        let ((users, user_ids), (items, item_ids)) =
            rayon::join(|| dense_ids(users), || dense_ids(items));
        Ok(RatingsDataset {
            users,
            items,
            ratings: ratings.to_vec(),
            user_ids,
            item_ids,
            layout: RatingsLayout::Tab,
            implicit: false,
            header: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_any_labels() {
        let rows = vec![vec![(2, 1.0), (0, 0.5)], vec![(1, 1.0)]];
        let d = SparseDataset::from_rows(&rows, &[4, 2], None).unwrap();
        assert_eq!(
            d.classes(),
            Classes {
                negative: 2.0,
                positive: 4.0
            }
        );
        assert_eq!(d.y(), &[1.0, -1.0]);
        assert_eq!(d.row(0), (&[0u32, 2][..], &[0.5f32, 1.0][..]));
        let d = SparseDataset::from_rows(&rows, &[1.0f32, 0.0], Some(10)).unwrap();
        assert_eq!((d.cols(), d.y()), (10, &[1.0f32, -1.0][..]));
        for (rows, labels, n, want) in [
            (
                vec![vec![(1, 1.0), (1, 2.0)]],
                vec![1],
                None,
                "appears twice",
            ),
            (vec![vec![(1, f32::NAN)]], vec![1], None, "not finite"),
            (
                vec![vec![(5, 1.0)]],
                vec![1],
                Some(5),
                "beyond the 5 features",
            ),
            (
                vec![vec![], vec![], vec![]],
                vec![1, 2, 3],
                None,
                "third label value 3",
            ),
            (vec![vec![]], vec![1, 2], None, "2 labels for 1 rows"),
            (vec![vec![]], vec![1], Some(0), "between 1 and"),
        ] {
            let e = SparseDataset::from_rows(&rows, &labels, n)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = SparseDataset::from_rows(&[vec![]], &[f64::NAN], None).unwrap_err();
        assert!(e.to_string().contains("not finite"));
    }

    #[test]
    fn triplets_are_renumbered_and_checked() {
        let d = RatingsDataset::from_triplets(&[9, 3, 9], &[1, 1, 2], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            (d.users.clone(), d.items.clone()),
            (vec![0, 1, 0], vec![0, 0, 1])
        );
        assert!(RatingsDataset::from_triplets(&[1], &[1, 2], &[1.0]).is_err());
        assert!(RatingsDataset::from_triplets(&[1], &[1], &[f32::INFINITY]).is_err());
    }
}
