//! Invariant checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target asserts two things: decoding never panics, and when it succeeds the
//! result is internally consistent. The checks here are the "internally consistent"
//! part; each one is something the decoders guarantee, so a failed assertion is a bug
//! in wildsgd (or in the guarantee), never noise.
//!
//! Set `WILDSGD_FUZZ_VERBOSE=1` and run a target binary on single files to see what
//! each decoder made of them, e.g.
//! `WILDSGD_FUZZ_VERBOSE=1 fuzz/target/x86_64-unknown-linux-gnu/release/model fuzz/corpus/model/*`.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::OnceLock;

use wildsgd::data::{Dataset, IndexBase, RatingsDataset, SparseDataset};

/// True when `WILDSGD_FUZZ_VERBOSE` is set (read once).
pub fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("WILDSGD_FUZZ_VERBOSE").is_some())
}

/// Prints a one-line account of a decode when verbose.
pub fn report<T, E: Debug>(what: &str, r: &Result<T, E>, summary: impl Fn(&T) -> String) {
    if verbose() {
        match r {
            Ok(v) => eprintln!("[{what}] Ok: {}", summary(v)),
            Err(e) => eprintln!("[{what}] Err: {e:?}"),
        }
    }
}

/// A short description of a data set.
pub fn describe(d: &Dataset) -> String {
    match d {
        Dataset::Sparse(s) => format!(
            "sparse {} rows x {} cols, {} nnz, {:?}, {:?}",
            s.rows(),
            s.cols(),
            s.nnz(),
            s.index_base(),
            s.classes()
        ),
        Dataset::Ratings(r) => format!(
            "ratings {} x {} users x {} items, {:?}, implicit {}, header {}",
            r.len(),
            r.n_users(),
            r.n_items(),
            r.layout,
            r.implicit,
            r.header
        ),
    }
}

/// Structural invariants of any sparse data set (freshly parsed or from a cache).
pub fn check_sparse(d: &SparseDataset) {
    let x = d.x();
    let (rows, cols, nnz) = (d.rows(), d.cols(), d.nnz());
    assert_eq!(d.y().len(), rows, "one label per row");
    assert_ne!(d.index_base(), IndexBase::Auto, "index base is resolved");
    let ptr = x.indptr();
    let p = ptr.raw_storage();
    assert_eq!(p.len(), rows + 1, "indptr has rows + 1 entries");
    assert_eq!(p[0], 0, "indptr starts at 0");
    assert_eq!(p[rows], nnz, "indptr ends at nnz");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "indptr is monotone");
    assert_eq!(x.indices().len(), nnz);
    assert_eq!(x.data().len(), nnz);
    for r in 0..rows {
        let (idx, val) = d.row(r);
        assert_eq!(idx.len(), val.len());
        for &j in idx {
            assert!((j as usize) < cols, "row {r}: index {j} >= cols {cols}");
        }
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "row {r}: indices strictly increasing"
        );
        for &v in val {
            assert!(v.is_finite(), "row {r}: value {v} not finite");
        }
    }
    for (r, &l) in d.y().iter().enumerate() {
        assert!(l == 1.0 || l == -1.0, "row {r}: label {l} is not ±1");
    }
    let c = d.classes();
    assert!(
        c.negative.is_finite() && c.positive.is_finite() && c.negative != c.positive,
        "classes {c:?} are not two distinct finite values"
    );
}

/// What the LIBSVM text parser promises beyond [`check_sparse`]: at least one row.
pub fn check_sparse_parsed(d: &SparseDataset) {
    check_sparse(d);
    assert!(d.rows() > 0, "a parsed LIBSVM file has at least one row");
}

/// Structural invariants of any ratings data set (freshly parsed or from a cache).
pub fn check_ratings(r: &RatingsDataset) {
    let n = r.ratings.len();
    assert_eq!(r.users.len(), n, "one user per rating");
    assert_eq!(r.items.len(), n, "one item per rating");
    assert_eq!(r.len(), n);
    for (k, (&u, &i)) in r.users.iter().zip(&r.items).enumerate() {
        assert!((u as usize) < r.n_users(), "rating {k}: user {u} >= {}", r.n_users());
        assert!((i as usize) < r.n_items(), "rating {k}: item {i} >= {}", r.n_items());
    }
    for (k, &v) in r.ratings.iter().enumerate() {
        assert!(v.is_finite(), "rating {k}: {v} not finite");
    }
}

/// Dense ids numbered in order of first appearance, every one used.
fn check_first_appearance(dense: &[u32], n: usize, what: &str) {
    let mut next = 0usize;
    for (k, &d) in dense.iter().enumerate() {
        let d = d as usize;
        assert!(d <= next, "{what} {d} at rating {k} skips ahead of {next}");
        if d == next {
            next += 1;
        }
    }
    assert_eq!(next, n, "every dense {what} id is used");
}

/// What the ratings text parser promises beyond [`check_ratings`] (see the module
/// docs of `wildsgd::data::ratings`): ids re-indexed densely in order of first
/// appearance with a one-to-one map back, at least one rating, implicit files rated 1.
pub fn check_ratings_parsed(r: &RatingsDataset) {
    check_ratings(r);
    assert!(!r.is_empty(), "a parsed ratings file has at least one rating");
    check_first_appearance(&r.users, r.n_users(), "user");
    check_first_appearance(&r.items, r.n_items(), "item");
    let uniq = |ids: &[u64]| ids.iter().collect::<HashSet<_>>().len() == ids.len();
    assert!(uniq(&r.user_ids), "user ids map back one-to-one");
    assert!(uniq(&r.item_ids), "item ids map back one-to-one");
    if r.implicit {
        assert!(r.ratings.iter().all(|&v| v == 1.0), "implicit ratings are 1");
    }
}

/// [`check_sparse`] or [`check_ratings`].
pub fn check_dataset(d: &Dataset) {
    match d {
        Dataset::Sparse(s) => check_sparse(s),
        Dataset::Ratings(r) => check_ratings(r),
    }
}

/// [`check_sparse_parsed`] or [`check_ratings_parsed`]: for data parsed from text.
pub fn check_dataset_parsed(d: &Dataset) {
    match d {
        Dataset::Sparse(s) => check_sparse_parsed(s),
        Dataset::Ratings(r) => check_ratings_parsed(r),
    }
}

/// Gzip-compresses `data` (one member, default level).
pub fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

/// `bytes` with its trailing CRC-32 recomputed over `bytes[from..len - 4]`, or `None`
/// when it is too short to hold one. Lets mutations of checksummed formats (the data
/// cache, model files) reach the checks behind the checksum.
pub fn with_fixed_crc(bytes: &[u8], from: usize) -> Option<Vec<u8>> {
    if bytes.len() < from + 4 {
        return None;
    }
    let mut v = bytes.to_vec();
    let end = v.len() - 4;
    let crc = crc32fast::hash(&v[from..end]);
    v[end..].copy_from_slice(&crc.to_le_bytes());
    Some(v)
}
