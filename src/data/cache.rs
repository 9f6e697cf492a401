//! A binary cache of a parsed data file, as Vowpal Wabbit keeps one.
//!
//! With caching on, the first read of `data.txt` writes `data.txt.wsgd-cache`; later
//! reads load the arrays from it at memory speed. The cache records a format version,
//! the parse options and the source file's size and modification time, and ends with
//! a CRC-32 of its contents. It is never trusted: when any of these differ, or the file
//! is damaged, or the arrays fail the same structural checks as freshly parsed data,
//! the source is parsed again and the cache rewritten. The cache is written to a
//! temporary file and renamed into place, so a crash never leaves half a cache behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sprs::CsMatI;

use super::{
    Dataset, LoadOptions, RatingsDataset, RatingsLayout, SparseDataset, parse_bytes, source,
};
use crate::data::{Classes, IndexBase};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"WSGDCACH";
/// Cache format version; bump on any layout change.
pub const CACHE_VERSION: u32 = 2;

/// What happened with the cache on a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Caching was off.
    NotUsed,
    /// The data came from a valid cache.
    Hit,
    /// There was no cache; the source was parsed and a cache written.
    Written,
    /// A cache existed but was stale or damaged (the reason says which); the source
    /// was parsed and the cache rewritten.
    Rebuilt(String),
    /// The source was parsed but the cache could not be written (the reason says why).
    WriteFailed(String),
}

/// Where the cache of `input` lives: beside it, with `.wsgd-cache` appended.
pub fn cache_path(input: &Path) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(".wsgd-cache");
    PathBuf::from(s)
}

/// Identity of the source: size and modification time in nanoseconds.
fn source_identity(path: &Path) -> Result<(u64, u128)> {
    let meta = fs::metadata(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), mtime))
}

/// A stable fingerprint of the options that change what parsing produces.
fn fingerprint(opts: &LoadOptions) -> u64 {
    let s = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        opts.format,
        opts.libsvm.index_base,
        opts.libsvm.n_features,
        opts.ratings.layout,
        opts.libsvm.labels
    );
    // FNV-1a: stable across Rust releases, unlike the std hasher.
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Loads `path` through its cache, (re)building the cache when needed.
///
/// # Errors
/// As [`super::load`]; cache problems are reported in the status, not as errors.
pub fn load_or_build(path: &Path, opts: &LoadOptions) -> Result<(Dataset, CacheStatus)> {
    let cpath = cache_path(path);
    // A pipe or device has no stable identity to check a cache against, and a cache
    // path that is a link or a special file is not ours to overwrite.
    let regular = |p: &Path| fs::symlink_metadata(p).map(|m| m.is_file());
    let refuse = if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        Some(format!("{} is not a regular file", path.display()))
    } else if regular(&cpath).is_ok_and(|f| !f) {
        Some(format!(
            "{} exists and is not a regular file (a link?)",
            cpath.display()
        ))
    } else {
        None
    };
    if let Some(why) = refuse {
        let bytes = source::read_path(path, opts.max_line())?;
        let data = parse_bytes(&bytes, opts).map_err(|e| source::locate(e, path))?;
        return Ok((data, CacheStatus::WriteFailed(why)));
    }
    let identity = source_identity(path)?;
    let fp = fingerprint(opts);
    let stale = match fs::read(&cpath) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("cannot read it: {e}")),
        Ok(bytes) => match decode(&bytes, identity, fp) {
            Ok(d) => return Ok((d, CacheStatus::Hit)),
            Err(reason) => Some(reason),
        },
    };
    let bytes = source::read_path(path, opts.max_line())?;
    let data = parse_bytes(&bytes, opts).map_err(|e| source::locate(e, path))?;
    drop(bytes);
    let status = match crate::atomic::write_atomic(&cpath, &encode(&data, identity, fp)) {
        Err(e) => CacheStatus::WriteFailed(format!("{}: {e}", cpath.display())),
        Ok(()) => match stale {
            None => CacheStatus::Written,
            Some(reason) => CacheStatus::Rebuilt(reason),
        },
    };
    Ok((data, status))
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        self.0.reserve(v.len() * 4);
        v.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        self.0.reserve(v.len() * 4);
        v.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }
    fn u64s(&mut self, v: impl ExactSizeIterator<Item = u64>) {
        self.u64(v.len() as u64);
        self.0.reserve(v.len() * 8);
        v.for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
    }
}

fn encode(data: &Dataset, (len, mtime): (u64, u128), fp: u64) -> Vec<u8> {
    let mut e = Enc(Vec::new());
    e.0.extend_from_slice(MAGIC);
    e.0.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    e.u64(fp);
    e.u64(len);
    e.0.extend_from_slice(&mtime.to_le_bytes());
    let header = e.0.len();
    match data {
        Dataset::Sparse(d) => {
            e.u8(1);
            e.u8(u8::from(d.index_base() == IndexBase::Zero));
            e.u64(d.rows() as u64);
            e.u64(d.cols() as u64);
            e.u64s(d.x().indptr().raw_storage().iter().map(|&p| p as u64));
            e.u32s(d.x().indices());
            e.f32s(d.x().data());
            e.f32s(d.y());
            e.u64(d.classes().negative.to_bits());
            e.u64(d.classes().positive.to_bits());
        }
        Dataset::Ratings(d) => {
            e.u8(2);
            e.u8(d.layout as u8);
            e.u8(u8::from(d.implicit));
            e.u8(u8::from(d.header));
            e.u32s(&d.users);
            e.u32s(&d.items);
            e.f32s(&d.ratings);
            e.u64s(d.user_ids.iter().copied());
            e.u64s(d.item_ids.iter().copied());
        }
    }
    let crc = crc32fast::hash(&e.0[header..]);
    e.0.extend_from_slice(&crc.to_le_bytes());
    e.0
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it is truncated".into());
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn len(&mut self, width: usize) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.checked_mul(width).is_some_and(|b| b <= self.0.len()))
            .ok_or_else(|| "it is truncated".to_string())
    }
    fn u32s(&mut self) -> Result<Vec<u32>, String> {
        let n = self.len(4)?;
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
    fn f32s(&mut self) -> Result<Vec<f32>, String> {
        let n = self.len(4)?;
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
    fn u64s(&mut self) -> Result<Vec<u64>, String> {
        let n = self.len(8)?;
        Ok(self
            .take(n * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect())
    }
}

/// Decodes cache bytes with the identity and fingerprint they record (so any bytes can
/// be checked without their source file): for fuzzing and tools. Every structural check
/// of a normal load applies.
///
/// # Errors
/// Why the bytes are not a valid cache.
pub fn decode_bytes(bytes: &[u8]) -> Result<Dataset, String> {
    let field = |r: std::ops::Range<usize>| bytes.get(r).ok_or("it is truncated".to_string());
    let fp = u64::from_le_bytes(field(12..20)?.try_into().expect("8"));
    let len = u64::from_le_bytes(field(20..28)?.try_into().expect("8"));
    let mtime = u128::from_le_bytes(field(28..44)?.try_into().expect("16"));
    decode(bytes, (len, mtime), fp)
}

fn decode(bytes: &[u8], (len, mtime): (u64, u128), fp: u64) -> Result<Dataset, String> {
    let mut d = Dec(bytes);
    if d.take(8)? != MAGIC {
        return Err("it is not a wildsgd cache".into());
    }
    let version = u32::from_le_bytes(d.take(4)?.try_into().expect("4"));
    if version != CACHE_VERSION {
        return Err(format!(
            "it has format version {version}, this build writes {CACHE_VERSION}"
        ));
    }
    if d.u64()? != fp {
        return Err("it was made with other parse options".into());
    }
    if d.u64()? != len || u128::from_le_bytes(d.take(16)?.try_into().expect("16")) != mtime {
        return Err("the source file changed since it was made".into());
    }
    let body = d.0;
    if body.len() < 4 {
        return Err("it is truncated".into());
    }
    let (payload, crc) = body.split_at(body.len() - 4);
    if crc32fast::hash(payload) != u32::from_le_bytes(crc.try_into().expect("4")) {
        return Err("its checksum does not match (damaged)".into());
    }
    let mut d = Dec(payload);
    let data = match d.u8()? {
        1 => {
            let zero = d.u8()? == 1;
            let rows = usize::try_from(d.u64()?).map_err(|e| e.to_string())?;
            let cols = usize::try_from(d.u64()?).map_err(|e| e.to_string())?;
            let indptr: Vec<usize> = d.u64s()?.into_iter().map(|p| p as usize).collect();
            let indices = d.u32s()?;
            let values = d.f32s()?;
            let labels = d.f32s()?;
            if rows.checked_add(1) != Some(indptr.len()) {
                return Err("its row pointers do not match its row count".into());
            }
            let classes = Classes {
                negative: f64::from_bits(d.u64()?),
                positive: f64::from_bits(d.u64()?),
            };
            let x = CsMatI::try_new((rows, cols), indptr, indices, values)
                .map_err(|(_, _, _, e)| format!("its matrix is inconsistent: {e}"))?;
            let base = if zero {
                IndexBase::Zero
            } else {
                IndexBase::One
            };
            Dataset::Sparse(
                SparseDataset::new(x, labels, base)
                    .and_then(|d| d.with_classes(classes))
                    .map_err(|e| e.to_string())?,
            )
        }
        2 => {
            let layout = match d.u8()? {
                0 => RatingsLayout::Tab,
                1 => RatingsLayout::DoubleColon,
                2 => RatingsLayout::Comma,
                3 => RatingsLayout::Blank,
                x => return Err(format!("unknown ratings layout {x}")),
            };
            let implicit = d.u8()? == 1;
            let header = d.u8()? == 1;
            let r = RatingsDataset {
                users: d.u32s()?,
                items: d.u32s()?,
                ratings: d.f32s()?,
                user_ids: d.u64s()?,
                item_ids: d.u64s()?,
                layout,
                implicit,
                header,
            };
            let n = r.ratings.len();
            let consistent = r.users.len() == n
                && r.items.len() == n
                && r.users.iter().all(|&u| (u as usize) < r.user_ids.len())
                && r.items.iter().all(|&i| (i as usize) < r.item_ids.len())
                && r.ratings.iter().all(|v| v.is_finite());
            if !consistent {
                return Err("its ratings are inconsistent".into());
            }
            Dataset::Ratings(r)
        }
        k => return Err(format!("unknown data kind {k}")),
    };
    if !d.0.is_empty() {
        return Err("it has trailing bytes".into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `cache` fuzz target: a checksummed cache claiming u64::MAX rows made
    /// sprs overflow computing rows + 1.
    #[test]
    fn a_cache_with_an_impossible_row_count_is_refused() {
        let hex = "57534744434143480200000000b8462a3ef44f3f4a00000000000000668cdb6c95bdec1800000000000000000101ffffffffffffffff000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000f0bf000000000000f03fc77cafa2";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let e = decode_bytes(&bytes).unwrap_err();
        assert!(e.contains("row"), "{e}");
    }

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.txt");
        fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn written_then_hit_then_rebuilt_when_damaged() {
        let (_dir, p) = setup("+1 1:0.5 3:2\n-1 2:1\n");
        let opts = LoadOptions::default();
        let (a, s) = load_or_build(&p, &opts).unwrap();
        assert_eq!(s, CacheStatus::Written);
        let (b, s) = load_or_build(&p, &opts).unwrap();
        assert_eq!(s, CacheStatus::Hit);
        assert_eq!(a, b);
        // Flip one payload byte: the checksum catches it.
        let c = cache_path(&p);
        let mut bytes = fs::read(&c).unwrap();
        let k = bytes.len() - 6;
        bytes[k] ^= 0x40;
        fs::write(&c, &bytes).unwrap();
        let (d, s) = load_or_build(&p, &opts).unwrap();
        assert!(
            matches!(s, CacheStatus::Rebuilt(ref r) if r.contains("checksum")),
            "{s:?}"
        );
        assert_eq!(a, d);
        // Truncation.
        fs::write(&c, &bytes[..20]).unwrap();
        let (_, s) = load_or_build(&p, &opts).unwrap();
        assert!(
            matches!(s, CacheStatus::Rebuilt(ref r) if r.contains("truncated")),
            "{s:?}"
        );
    }

    #[test]
    fn source_change_and_option_change_invalidate() {
        let (_dir, p) = setup("1\t2\t3\n4\t5\t1.5\n");
        let opts = LoadOptions::default();
        load_or_build(&p, &opts).unwrap();
        fs::write(&p, "1\t2\t3\n4\t5\t1.5\n7\t8\t2\n").unwrap();
        let (d, s) = load_or_build(&p, &opts).unwrap();
        assert!(
            matches!(s, CacheStatus::Rebuilt(ref r) if r.contains("changed")),
            "{s:?}"
        );
        let Dataset::Ratings(r) = d else {
            panic!("ratings expected")
        };
        assert_eq!(r.len(), 3);
        let forced = LoadOptions {
            format: crate::data::Format::Ratings,
            ..LoadOptions::default()
        };
        let (_, s) = load_or_build(&p, &forced).unwrap();
        assert!(
            matches!(s, CacheStatus::Rebuilt(ref r) if r.contains("options")),
            "{s:?}"
        );
    }

    #[test]
    fn other_version_is_rebuilt() {
        let (_dir, p) = setup("+1 1:1\n");
        let opts = LoadOptions::default();
        load_or_build(&p, &opts).unwrap();
        let c = cache_path(&p);
        let mut bytes = fs::read(&c).unwrap();
        bytes[8] = 99;
        fs::write(&c, &bytes).unwrap();
        let (_, s) = load_or_build(&p, &opts).unwrap();
        assert!(
            matches!(s, CacheStatus::Rebuilt(ref r) if r.contains("version 99")),
            "{s:?}"
        );
    }
}
