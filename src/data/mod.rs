//! The data layer: sparse classification data (LIBSVM) and ratings (for matrix
//! factorization), read from any [`BufRead`] or a path (plain or gzip), with format
//! detection, located errors and an optional binary cache.

mod build;
pub mod cache;
pub mod libsvm;
mod lines;
pub mod ratings;
pub mod source;
mod split;
pub mod stats;

use std::io::BufRead;
use std::path::Path;

use sprs::CsMatI;

use crate::error::{Error, ParseError, ParseErrorKind, Result};
pub use build::Label;
pub use libsvm::{Classes, IndexBase, LabelRule, LibsvmOptions};
pub use ratings::{RatingsDataset, RatingsLayout, RatingsOptions};

/// Default limit on the length of one line: 64 MiB.
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// The sparse feature matrix: CSR with `u32` column indices (half the memory traffic
/// of `usize` in the training loop) and `f32` values.
pub type CsrMatrix = CsMatI<f32, u32, usize>;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detected from the content ([`detect_format`]).
    #[default]
    Auto,
    /// LIBSVM / SVMlight classification rows.
    Libsvm,
    /// (user, item, rating) triplets.
    Ratings,
}

/// A labelled sparse classification data set: rows of `x` with labels ±1 in `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseDataset {
    x: CsrMatrix,
    y: Vec<f32>,
    index_base: IndexBase,
    pub(crate) classes: Classes,
}

impl SparseDataset {
    /// Builds a data set, checking that there is one label per row, that labels are ±1
    /// and that every value is finite.
    ///
    /// # Errors
    /// [`Error::Config`] naming what does not fit.
    pub fn new(x: CsrMatrix, y: Vec<f32>, index_base: IndexBase) -> Result<Self> {
        if x.rows() != y.len() {
            return Err(Error::config(
                "y",
                format!("{} labels for {} rows", y.len(), x.rows()),
            ));
        }
        if let Some(i) = y.iter().position(|&l| l != 1.0 && l != -1.0) {
            return Err(Error::config(
                "y",
                format!("label {} at row {i} is not ±1", y[i]),
            ));
        }
        if let Some(i) = x.data().iter().position(|v| !v.is_finite()) {
            return Err(Error::config(
                "x",
                format!("value {} (non-zero {i}) is not finite", x.data()[i]),
            ));
        }
        Ok(SparseDataset {
            x,
            y,
            index_base,
            classes: Classes::PLUS_MINUS_ONE,
        })
    }

    /// The same data with the label values `classes` stand for (what the source file
    /// wrote for −1 and +1; models keep them to give predictions back in those terms).
    ///
    /// # Errors
    /// [`Error::Config`] when the two values are equal or not finite.
    pub fn with_classes(mut self, classes: Classes) -> Result<Self> {
        if !(classes.negative.is_finite()
            && classes.positive.is_finite()
            && classes.negative != classes.positive)
        {
            return Err(Error::config(
                "classes",
                format!(
                    "two distinct finite label values expected, got {} and {}",
                    classes.negative, classes.positive
                ),
            ));
        }
        self.classes = classes;
        Ok(self)
    }

    /// The label values of the source for −1 and +1.
    pub fn classes(&self) -> Classes {
        self.classes
    }

    /// The feature matrix.
    pub fn x(&self) -> &CsrMatrix {
        &self.x
    }
    /// The labels, each +1 or -1.
    pub fn y(&self) -> &[f32] {
        &self.y
    }
    /// Number of examples.
    pub fn rows(&self) -> usize {
        self.x.rows()
    }
    /// Number of features.
    pub fn cols(&self) -> usize {
        self.x.cols()
    }
    /// Number of stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.x.nnz()
    }
    /// How the source numbered its indices (`One` or `Zero`; `Auto` never appears).
    pub fn index_base(&self) -> IndexBase {
        self.index_base
    }
    /// The 0-based feature indices and values of row `r`.
    ///
    /// # Panics
    /// If `r >= self.rows()`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let ptr = self.x.indptr();
        let p = ptr.raw_storage();
        let (s, e) = (p[r], p[r + 1]);
        (&self.x.indices()[s..e], &self.x.data()[s..e])
    }
}

/// A data set of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    /// Classification rows.
    Sparse(SparseDataset),
    /// Ratings triplets.
    Ratings(RatingsDataset),
}

impl Dataset {
    /// The format this data came in.
    pub fn format(&self) -> Format {
        match self {
            Dataset::Sparse(_) => Format::Libsvm,
            Dataset::Ratings(_) => Format::Ratings,
        }
    }
}

/// Options for reading any data file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadOptions {
    /// The format, or `Auto` to detect it.
    pub format: Format,
    /// LIBSVM reading options.
    pub libsvm: LibsvmOptions,
    /// Ratings reading options.
    pub ratings: RatingsOptions,
    /// Use (and write) a binary cache beside the input; see [`cache`].
    pub cache: bool,
}

impl LoadOptions {
    /// The longest line the chosen format accepts (the larger of both under `Auto`).
    pub fn max_line(&self) -> usize {
        match self.format {
            Format::Libsvm => self.libsvm.max_line_bytes,
            Format::Ratings => self.ratings.max_line_bytes,
            Format::Auto => self.libsvm.max_line_bytes.max(self.ratings.max_line_bytes),
        }
    }
}

/// Tells the format from the first data line: `::` or plain numeric fields mean
/// ratings, `index:value` tokens after the first token (or a lone label) mean LIBSVM.
///
/// # Errors
/// [`ParseErrorKind::Empty`] when there is no data line.
pub fn detect_format(bytes: &[u8]) -> Result<Format> {
    let bytes = strip_bom(bytes);
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = lines::content(raw, n as u64 + 1)?;
        if line.is_empty() {
            continue;
        }
        if memchr::memmem::find(line, b"::").is_some() {
            return Ok(Format::Ratings);
        }
        let mut toks = lines::Tokens::new(line);
        let first = toks.next().map(|t| t.1).unwrap_or_default();
        let rest: Vec<&[u8]> = toks.map(|t| t.1).collect();
        let lone_label = rest.is_empty() && memchr::memchr(b',', first).is_none();
        // User ids are never signed; LIBSVM labels often are: a blank-separated line
        // starting `+1 3` (a typo for `+1 3:1`) is LIBSVM with a located error.
        let signed = matches!(first.first(), Some(b'+' | b'-'))
            && memchr::memchr2(b'\t', b',', line).is_none();
        if lone_label || signed || rest.iter().any(|t| t.contains(&b':')) {
            return Ok(Format::Libsvm);
        }
        return Ok(Format::Ratings);
    }
    Err(ParseError::new(ParseErrorKind::Empty).into())
}

/// Parses bytes already in memory, in `opts.format` (detected when `Auto`).
///
/// # Errors
/// A located [`ParseError`] (without a path).
pub fn parse_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Dataset> {
    let bytes = strip_bom(bytes);
    let format = match opts.format {
        Format::Auto => detect_format(bytes)?,
        f => f,
    };
    check_parse_memory(bytes, format)?;
    match format {
        Format::Ratings => Ok(Dataset::Ratings(ratings::parse(bytes, &opts.ratings)?)),
        _ => Ok(Dataset::Sparse(libsvm::parse(bytes, &opts.libsvm)?)),
    }
}

/// The bytes after a UTF-8 byte-order mark (written by some editors; not data).
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Checks what parsing `bytes` will take against the memory budget, from upper bounds
/// read off the text: rows at most its lines, non-zeros at most its `:` characters.
/// Per row: lengths, labels, line numbers and the row pointers (28 bytes); per non-zero,
/// the index and value twice (parsed, then assembled: 16). Per rating: ids and rating
/// parsed, gathered and renumbered (64).
fn check_parse_memory(bytes: &[u8], format: Format) -> Result<()> {
    let lines = memchr::memchr_iter(b'\n', bytes).count() as u64 + 1;
    let (bytes_needed, what) = match format {
        Format::Ratings => (lines.saturating_mul(64), "ratings"),
        _ => {
            let colons = memchr::memchr_iter(b':', bytes).count() as u64;
            (
                lines
                    .saturating_mul(28)
                    .saturating_add(colons.saturating_mul(16)),
                "rows",
            )
        }
    };
    crate::memory::check(
        format!("parsing up to {lines} {what}"),
        bytes_needed,
        "the data set is too large for this machine's memory (or for `max_memory`): use a smaller file or a larger machine",
    )
}

/// Reads a data set from any reader (gzip is detected and decompressed).
///
/// # Errors
/// As [`parse_bytes`].
pub fn from_bufread<R: BufRead>(reader: R, opts: &LoadOptions) -> Result<Dataset> {
    parse_bytes(&source::read_bufread(reader, opts.max_line())?, opts)
}

/// Reads a data set from a file, through the binary cache when `opts.cache` is set.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read, or a [`ParseError`] naming the file,
/// line and token.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    Ok(load_with_status(path, opts)?.0)
}

/// As [`load`], also telling what happened with the cache.
///
/// # Errors
/// As [`load`]. A cache that cannot be written is not an error (see [`cache::CacheStatus`]).
pub fn load_with_status(path: &Path, opts: &LoadOptions) -> Result<(Dataset, cache::CacheStatus)> {
    if opts.cache {
        return cache::load_or_build(path, opts);
    }
    let bytes = source::read_path(path, opts.max_line())?;
    let data = parse_bytes(&bytes, opts).map_err(|e| source::locate(e, path))?;
    Ok((data, cache::CacheStatus::NotUsed))
}

/// Reads a LIBSVM file from a path.
///
/// # Errors
/// As [`load`]; a ratings file is refused.
pub fn load_libsvm(path: &Path, opts: &LibsvmOptions) -> Result<SparseDataset> {
    let opts = LoadOptions {
        format: Format::Libsvm,
        libsvm: opts.clone(),
        ..LoadOptions::default()
    };
    match load(path, &opts)? {
        Dataset::Sparse(d) => Ok(d),
        Dataset::Ratings(_) => unreachable!("format forced to libsvm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect_format(b"# c\n\n+1 3:1\n").unwrap(), Format::Libsvm);
        assert_eq!(detect_format(b"-1\n").unwrap(), Format::Libsvm);
        assert_eq!(
            detect_format(b"1\t2\t5\t881250949\n").unwrap(),
            Format::Ratings
        );
        assert_eq!(
            detect_format(b"1::2::5::978300760\n").unwrap(),
            Format::Ratings
        );
        assert_eq!(
            detect_format(b"userId,movieId,rating\n1,2,3.5\n").unwrap(),
            Format::Ratings
        );
        assert_eq!(detect_format(b"1 2 0.5\r\n").unwrap(), Format::Ratings);
        assert!(detect_format(b"# only\n\n").is_err());
        // Found by the `auto` fuzz target: detection and parsing skip a BOM alike.
        let text = b"\xEF\xBB\xBF\x0c\n\n \x0b\n1\x0c\x0b\x0b\x0c1\x0b\n";
        assert_eq!(detect_format(text).unwrap(), Format::Ratings);
        assert_eq!(
            parse_bytes(text, &LoadOptions::default()).unwrap().format(),
            Format::Ratings
        );
    }
}
