//! LIBSVM / SVMlight classification files: `label [qid:N] index:value ...`.
//!
//! Labels: any two distinct numbers; the smaller is the negative class (−1), the larger
//! the positive (+1), so `-1`/`+1`, `0`/`1`, `1`/`2` (mushrooms) and `2`/`4`
//! (breast-cancer) all work, and the pair is kept ([`Classes`]) so that models give the
//! file's own labels back. A file with a single label value reads it as positive when it
//! is above 0. A third value is an error naming its line. `#` comments, blank lines, CRLF
//! and trailing blanks are tolerated. Indices are 1-based unless the file contains an
//! index 0 (detected, see [`IndexBase::Auto`]) or 0-based reading is forced. Indices of
//! a row may come in any order (they are sorted); the same index twice in a row is an
//! error. Parsing runs in parallel over line-aligned chunks.

use std::io::{self, Write};

use rayon::prelude::*;
use sprs::CsMatI;

use super::lines::{
    Tokens, chunk_target, content, for_each_line, parse_f32, parse_u64, split_chunks,
};
use super::{DEFAULT_MAX_LINE, SparseDataset};
use crate::error::{Error, ParseError, ParseErrorKind, Result};

/// How feature indices in a file are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexBase {
    /// 1-based, unless an index 0 occurs anywhere in the file: then 0-based.
    #[default]
    Auto,
    /// 1-based (LIBSVM's convention); index 0 is an error.
    One,
    /// 0-based.
    Zero,
}

/// The two label values of a classification file: which one the engine trains as −1
/// and which as +1.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Classes {
    /// The label value read as the negative class (−1).
    pub negative: f64,
    /// The label value read as the positive class (+1).
    pub positive: f64,
}

impl Classes {
    /// LIBSVM's usual labels: −1 and +1 (a file may also write 0 for −1).
    pub const PLUS_MINUS_ONE: Classes = Classes {
        negative: -1.0,
        positive: 1.0,
    };

    /// The classes of a file with these distinct label values. Values all among −1, 0
    /// and +1 are LIBSVM's usual labels (0 and −1 both negative). Otherwise there are at
    /// most two, in any order: the smaller value is negative; a single value `v` is
    /// positive when `v > 0`.
    pub fn from_values(values: &[f64]) -> Classes {
        if values.iter().all(|v| [-1.0, 0.0, 1.0].contains(v)) {
            let zero = values.contains(&0.0) && !values.contains(&-1.0);
            return Classes {
                negative: if zero { 0.0 } else { -1.0 },
                positive: 1.0,
            };
        }
        match *values {
            [a, b] => Classes {
                negative: a.min(b),
                positive: a.max(b),
            },
            [v] if v > 0.0 => Classes {
                negative: -1.0,
                positive: v,
            },
            [v] => Classes {
                negative: v,
                positive: 1.0,
            },
            _ => Classes::PLUS_MINUS_ONE,
        }
    }

    /// True for −1/+1 and 0/1, where 0 and −1 both read as the negative class.
    pub fn is_standard(&self) -> bool {
        self.positive == 1.0 && (self.negative == -1.0 || self.negative == 0.0)
    }

    /// The ±1 label of file label `v`, or `None` when `v` is neither class.
    pub fn encode(&self, v: f64) -> Option<f32> {
        if v == self.positive {
            Some(1.0)
        } else if v == self.negative || (self.is_standard() && (v == -1.0 || v == 0.0)) {
            Some(-1.0)
        } else {
            None
        }
    }

    /// The file's label for a ±1 label (or a score's sign: above 0 is positive).
    pub fn decode(&self, y: f32) -> f64 {
        if y > 0.0 {
            self.positive
        } else {
            self.negative
        }
    }
}

impl Default for Classes {
    fn default() -> Self {
        Classes::PLUS_MINUS_ONE
    }
}

/// How the labels of a file are read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LabelRule {
    /// Find the (at most two) label values in the file; see [`Classes::from_values`].
    #[default]
    Detect,
    /// The classes are known (a test file read for a trained model): each label must
    /// be one of the two values.
    Known(Classes),
    /// Labels must be numbers but are not used (`predict`): every row gets +1.
    Ignore,
}

/// Options for reading LIBSVM files.
#[derive(Debug, Clone, PartialEq)]
pub struct LibsvmOptions {
    /// Index numbering.
    pub index_base: IndexBase,
    /// A fixed feature count (for a test file that must line up with its training
    /// file); an index beyond it is an error. `None`: the largest index decides.
    pub n_features: Option<usize>,
    /// Longest line accepted, in bytes.
    pub max_line_bytes: usize,
    /// How labels are read.
    pub labels: LabelRule,
}

impl Default for LibsvmOptions {
    fn default() -> Self {
        LibsvmOptions {
            index_base: IndexBase::Auto,
            n_features: None,
            max_line_bytes: DEFAULT_MAX_LINE,
            labels: LabelRule::Detect,
        }
    }
}

/// Largest index a file may hold: column counts are stored as `u32` (at most
/// 4,294,967,295 columns), so a 1-based file may use indices up to 4,294,967,295 and a
/// 0-based one up to 4,294,967,294.
pub const MAX_INDEX: u64 = u32::MAX as u64;

/// Most features a data set may declare (`n_features`): the `u32` column limit.
pub const MAX_FEATURES: usize = u32::MAX as usize;

/// One chunk's rows, with indices as written in the file.
#[derive(Default)]
struct Chunk {
    row_len: Vec<u32>,
    indices: Vec<u32>,
    values: Vec<f32>,
    /// Labels as written in the file.
    labels: Vec<f64>,
    /// The first (at most four) distinct label values, with their 1-based line.
    distinct: Vec<(f64, u64)>,
    row_lines: Vec<u32>,
    lines: u64,
    min_index: u32,
    max_index: u32,
}

/// Parses LIBSVM text held in memory.
///
/// # Errors
/// A [`ParseError`] (without a path) locating the first malformed line.
pub fn parse(bytes: &[u8], opts: &LibsvmOptions) -> Result<SparseDataset> {
    if opts.max_line_bytes == 0 {
        return Err(Error::config("max_line_bytes", "must be positive"));
    }
    if let Some(d) = opts.n_features
        && !(1..=MAX_FEATURES).contains(&d)
    {
        return Err(Error::config(
            "n_features",
            format!("must be between 1 and {MAX_FEATURES} (indices are 32-bit), got {d}"),
        ));
    }
    let (parsed, chunk_first_line) = parse_chunks(bytes, opts)?;
    let rows: usize = parsed.iter().map(|c| c.labels.len()).sum();
    if rows == 0 {
        return Err(ParseError::new(ParseErrorKind::Empty).into());
    }
    let classes = classes(&parsed, &chunk_first_line, opts.labels)?;
    let nnz: usize = parsed.iter().map(|c| c.indices.len()).sum();
    let min_index = parsed
        .iter()
        .filter(|c| !c.indices.is_empty())
        .map(|c| c.min_index)
        .min();
    let max_index = parsed.iter().map(|c| c.max_index).max().unwrap_or(0);

    let zero_based = match opts.index_base {
        IndexBase::Zero => true,
        IndexBase::One => false,
        IndexBase::Auto => min_index == Some(0),
    };
    let shift = u32::from(!zero_based);
    if zero_based && max_index == u32::MAX {
        let line = first_line_with(&parsed, &chunk_first_line, |i| i == u32::MAX);
        return Err(
            ParseError::new(ParseErrorKind::IndexTooLarge { max: MAX_INDEX - 1 })
                .at_line(line)
                .into(),
        );
    }
    let mut n_cols = match min_index {
        None => 0,
        Some(_) => (max_index - shift) as usize + 1,
    };
    if let Some(d) = opts.n_features {
        if n_cols > d {
            let beyond = |i: u32| (i - shift) as usize >= d;
            let line = first_line_with(&parsed, &chunk_first_line, beyond);
            let bad = parsed
                .iter()
                .flat_map(|c| c.indices.iter())
                .copied()
                .find(|&i| beyond(i))
                .unwrap_or(0);
            return Err(ParseError::new(ParseErrorKind::IndexOutOfRange {
                index: u64::from(bad),
                n_features: d,
                zero_based,
            })
            .at_line(line)
            .into());
        }
        n_cols = d;
    }

    let mut indptr = Vec::with_capacity(rows + 1);
    let mut indices = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    let mut labels = Vec::with_capacity(rows);
    indptr.push(0usize);
    for c in parsed {
        let mut end = *indptr.last().unwrap_or(&0);
        indptr.extend(c.row_len.iter().map(|&l| {
            end += l as usize;
            end
        }));
        if shift == 0 {
            indices.extend_from_slice(&c.indices);
        } else {
            indices.extend(c.indices.iter().map(|&i| i - shift));
        }
        values.extend_from_slice(&c.values);
        labels.extend(c.labels.iter().map(|&v| match opts.labels {
            LabelRule::Ignore => 1.0,
            // Every value was checked against the classes above.
            _ => classes.encode(v).unwrap_or(1.0),
        }));
    }
    let x = CsMatI::try_new((rows, n_cols), indptr, indices, values).map_err(|(_, _, _, e)| {
        ParseError::new(ParseErrorKind::BadBinary(format!(
            "internal CSR check failed: {e}"
        )))
    })?;
    let mut data = SparseDataset::new(
        x,
        labels,
        if zero_based {
            IndexBase::Zero
        } else {
            IndexBase::One
        },
    )?;
    data.classes = classes;
    Ok(data)
}

/// True when `seen` and `v` are all among LIBSVM's usual −1, 0 and +1.
fn standard(seen: &[(f64, u64)], v: f64) -> bool {
    let usual = |x: f64| x == -1.0 || x == 0.0 || x == 1.0;
    usual(v) && seen.iter().all(|s| usual(s.0))
}

/// Parses line-aligned chunks in parallel: each chunk's rows and the number of lines
/// before it. The first error in file order wins, with its global line number.
fn parse_chunks(bytes: &[u8], opts: &LibsvmOptions) -> Result<(Vec<Chunk>, Vec<u64>)> {
    let chunks = split_chunks(bytes, chunk_target(bytes.len()));
    let results: Vec<Result<Chunk, ParseError>> =
        chunks.par_iter().map(|c| parse_chunk(c, opts)).collect();

    let mut parsed = Vec::with_capacity(results.len());
    let mut line_offset = 0u64;
    let mut chunk_first_line = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(c) => {
                chunk_first_line.push(line_offset);
                line_offset += c.lines;
                parsed.push(c);
            }
            Err(mut e) => {
                e.line = e.line.map(|l| l + line_offset);
                return Err(e.into());
            }
        }
    }

    Ok((parsed, chunk_first_line))
}

/// The line of the first row holding an index (as written) that `hit` picks.
fn first_line_with(parsed: &[Chunk], first_lines: &[u64], hit: impl Fn(u32) -> bool) -> u64 {
    for (c, first) in parsed.iter().zip(first_lines) {
        let mut start = 0usize;
        for (r, &len) in c.row_len.iter().enumerate() {
            let end = start + len as usize;
            if c.indices[start..end].iter().any(|&i| hit(i)) {
                return first + u64::from(c.row_lines[r]);
            }
            start = end;
        }
    }
    0
}

/// The classes of the parsed chunks under `rule`, or the located error for a third
/// label value (or, with known classes, for a value that is neither).
fn classes(parsed: &[Chunk], first_lines: &[u64], rule: LabelRule) -> Result<Classes> {
    let mut seen: Vec<(f64, u64)> = Vec::with_capacity(3);
    for (c, first) in parsed.iter().zip(first_lines) {
        for &(v, line) in &c.distinct {
            if seen.iter().any(|s| s.0 == v) {
                continue;
            }
            let line = first + line;
            match rule {
                LabelRule::Ignore => {}
                LabelRule::Known(k) => {
                    if k.encode(v).is_none() {
                        return Err(ParseError::new(ParseErrorKind::UnknownLabel {
                            value: v,
                            negative: k.negative,
                            positive: k.positive,
                        })
                        .at(line, 1)
                        .into());
                    }
                }
                LabelRule::Detect if seen.len() >= 2 && !standard(&seen, v) => {
                    // The first value outside two classes (−1, 0 and +1 count as two).
                    let (first, second) = if seen.len() == 2 {
                        (seen[0].0, seen[1].0)
                    } else {
                        (-1.0, 1.0)
                    };
                    return Err(ParseError::new(ParseErrorKind::ThirdLabel {
                        value: v,
                        first,
                        second,
                    })
                    .at(line, 1)
                    .into());
                }
                LabelRule::Detect => {}
            }
            seen.push((v, line));
        }
    }
    Ok(match rule {
        LabelRule::Known(k) => k,
        LabelRule::Ignore => Classes::PLUS_MINUS_ONE,
        LabelRule::Detect => Classes::from_values(&seen.iter().map(|s| s.0).collect::<Vec<_>>()),
    })
}

fn parse_chunk(chunk: &[u8], opts: &LibsvmOptions) -> Result<Chunk, ParseError> {
    let mut out = Chunk {
        min_index: u32::MAX,
        ..Chunk::default()
    };
    let mut scratch: Vec<(u32, f32)> = Vec::new();
    let forbid_zero = opts.index_base == IndexBase::One;
    out.lines = for_each_line(chunk, opts.max_line_bytes, |line_no, raw| {
        let line = content(raw, line_no)?;
        if line.is_empty() {
            return Ok(());
        }
        let lead = line.as_ptr() as usize - raw.as_ptr() as usize;
        let fail =
            |kind, col: usize, tok: &[u8]| ParseError::new(kind).at(line_no, col + lead).token(tok);
        let mut tokens = Tokens::new(line);
        let (col, tok) = tokens.next().expect("a non-empty trimmed line has a token");
        let label = parse_label(tok).map_err(|k| fail(k, col, tok))?;
        if out.distinct.len() < 4 && !out.distinct.iter().any(|d| d.0 == label) {
            out.distinct.push((label, line_no));
        }
        out.labels.push(label);
        let row_start = out.indices.len();
        for (col, tok) in tokens {
            let Some(colon) = memchr::memchr(b':', tok) else {
                return Err(fail(ParseErrorKind::MissingColon, col, tok));
            };
            let (name, value) = (&tok[..colon], &tok[colon + 1..]);
            if name == b"qid" {
                parse_u64(value, "a query id (non-negative integer) after `qid:`")
                    .map_err(|k| fail(k, col, tok))?;
                continue;
            }
            if name.first() == Some(&b'-') {
                return Err(fail(ParseErrorKind::NegativeIndex, col, tok));
            }
            let index = parse_u64(name, "a feature index (non-negative integer) before `:`")
                .map_err(|k| fail(k, col, tok))?;
            if index > MAX_INDEX {
                return Err(fail(
                    ParseErrorKind::IndexTooLarge { max: MAX_INDEX },
                    col,
                    tok,
                ));
            }
            if index == 0 && forbid_zero {
                return Err(fail(ParseErrorKind::ZeroIndex, col, tok));
            }
            if value.is_empty() {
                return Err(fail(ParseErrorKind::MissingValue, col + colon + 1, tok));
            }
            let v = parse_f32(
                value,
                "a feature value (number) after `:`",
                "a feature value",
            )
            .map_err(|k| fail(k, col + colon + 1, tok))?;
            out.indices.push(index as u32);
            out.values.push(v);
        }
        let idx = &mut out.indices[row_start..];
        if !idx.windows(2).all(|w| w[0] < w[1]) {
            scratch.clear();
            scratch.extend(
                idx.iter()
                    .copied()
                    .zip(out.values[row_start..].iter().copied()),
            );
            scratch.sort_unstable_by_key(|p| p.0);
            if let Some(w) = scratch.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(ParseError::new(ParseErrorKind::DuplicateIndex {
                    index: u64::from(w[0].0),
                })
                .at_line(line_no));
            }
            for (k, &(i, v)) in scratch.iter().enumerate() {
                out.indices[row_start + k] = i;
                out.values[row_start + k] = v;
            }
        }
        let idx = &out.indices[row_start..];
        if let (Some(&lo), Some(&hi)) = (idx.first(), idx.last()) {
            out.min_index = out.min_index.min(lo);
            out.max_index = out.max_index.max(hi);
        }
        out.row_len.push(idx.len() as u32);
        out.row_lines.push(line_no as u32);
        Ok(())
    })?;
    Ok(out)
}

/// A label as written: any finite number (`+1`, `-1`, `0`, `1` without a float parse).
#[inline]
fn parse_label(tok: &[u8]) -> Result<f64, ParseErrorKind> {
    match tok {
        b"+1" | b"1" => return Ok(1.0),
        b"-1" => return Ok(-1.0),
        b"0" => return Ok(0.0),
        _ => {}
    }
    let v: f64 = std::str::from_utf8(tok)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseErrorKind::NotANumber {
            expected: "a label (a number, such as +1 or -1)",
        })?;
    if v.is_finite() {
        // -0 and 0 are one class.
        Ok(v + 0.0)
    } else {
        Err(ParseErrorKind::NonFinite { what: "the label" })
    }
}

/// Writes `data` as LIBSVM text with 1-based (or 0-based) indices and `+1`/`-1`
/// labels; values are written in the shortest form that reads back exactly.
///
/// # Errors
/// Whatever the writer returns.
pub fn write<W: Write>(data: &SparseDataset, zero_based: bool, mut w: W) -> io::Result<()> {
    let shift = u64::from(!zero_based);
    let mut line = Vec::with_capacity(1024);
    let mut ib = itoa::Buffer::new();
    let mut fb = ryu::Buffer::new();
    for r in 0..data.rows() {
        line.clear();
        line.extend_from_slice(if data.y()[r] > 0.0 { b"+1" } else { b"-1" });
        let (idx, val) = data.row(r);
        for (&i, &v) in idx.iter().zip(val) {
            line.push(b' ');
            line.extend_from_slice(ib.format(u64::from(i) + shift).as_bytes());
            line.push(b':');
            line.extend_from_slice(fb.format_finite(v).as_bytes());
        }
        line.push(b'\n');
        w.write_all(&line)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<SparseDataset> {
        parse(text.as_bytes(), &LibsvmOptions::default())
    }

    #[test]
    fn reads_labels_comments_crlf_and_qid() {
        let d = p("# header\r\n+1 qid:3 2:0.5 1:1 # trailing\r\n\n0 3:2  \n-1\n").unwrap();
        assert_eq!(d.rows(), 3);
        assert_eq!(d.cols(), 3);
        assert_eq!(d.y(), &[1.0, -1.0, -1.0]);
        assert_eq!(d.row(0), (&[0u32, 1][..], &[1.0f32, 0.5][..]));
        assert_eq!(d.row(2).0.len(), 0);
        assert_eq!(d.index_base(), IndexBase::One);
    }

    #[test]
    fn detects_zero_based() {
        let d = p("1 0:1 4:2\n").unwrap();
        assert_eq!(d.index_base(), IndexBase::Zero);
        assert_eq!(d.cols(), 5);
        assert_eq!(d.row(0).0, &[0, 4]);
    }

    #[test]
    fn forced_one_based_rejects_zero_with_location() {
        let opts = LibsvmOptions {
            index_base: IndexBase::One,
            ..Default::default()
        };
        let e = parse(b"+1 1:1\n-1 3:1 0:2\n", &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:8:") && e.contains("index 0"), "{e}");
    }

    #[test]
    fn fixed_feature_count_pads_and_checks() {
        let opts = LibsvmOptions {
            n_features: Some(10),
            ..Default::default()
        };
        assert_eq!(parse(b"+1 3:1\n", &opts).unwrap().cols(), 10);
        let e = parse(b"+1 3:1\n-1 11:1\n", &opts).unwrap_err().to_string();
        assert!(
            e.contains(":2: feature index 11 is beyond the declared 10 features (indices 1..=10"),
            "{e}"
        );
    }

    #[test]
    fn any_two_label_values_are_classes() {
        for (text, neg, pos, y) in [
            ("1 1:1\n2 2:1\n", 1.0, 2.0, vec![-1.0, 1.0]),
            ("4 1:1\n2 2:1\n4 1:1\n", 2.0, 4.0, vec![1.0, -1.0, 1.0]),
            ("0 1:1\n1 2:1\n", 0.0, 1.0, vec![-1.0, 1.0]),
            ("-1 1:1\n0 1:1\n+1 2:1\n", -1.0, 1.0, vec![-1.0, -1.0, 1.0]),
            ("-3.5 1:1\n1e1 2:1\n", -3.5, 10.0, vec![-1.0, 1.0]),
            ("7 1:1\n", -1.0, 7.0, vec![1.0]),
        ] {
            let d = p(text).unwrap();
            assert_eq!(
                d.classes(),
                Classes {
                    negative: neg,
                    positive: pos
                },
                "{text}"
            );
            assert_eq!(d.y(), &y[..], "{text}");
        }
        let e = p("1 1:1\n2 1:1\n\n1 1:1\n3 1:1\n").unwrap_err().to_string();
        assert!(
            e.contains(":5:1: a third label value 3 after 1 and 2"),
            "{e}"
        );
        let e = p("-1 1:1\n0 1:1\n1 1:1\n2 1:1\n").unwrap_err().to_string();
        assert!(e.contains(":4:1: a third label value 2"), "{e}");
        // Known classes: each label must be one of them; ignored labels need only be numbers.
        let known = LibsvmOptions {
            labels: LabelRule::Known(Classes {
                negative: 2.0,
                positive: 4.0,
            }),
            ..Default::default()
        };
        assert_eq!(parse(b"4 1:1\n4 1:1\n", &known).unwrap().y(), &[1.0, 1.0]);
        let e = parse(b"4 1:1\n1 1:1\n", &known).unwrap_err().to_string();
        assert!(e.contains(":2:1: label 1 is neither"), "{e}");
        let ignore = LibsvmOptions {
            labels: LabelRule::Ignore,
            ..Default::default()
        };
        assert_eq!(parse(b"5 1:1\n6 1:1\n7 1:1\n", &ignore).unwrap().rows(), 3);
    }

    #[test]
    fn index_limits_depend_on_the_base() {
        let d = p("+1 4294967295:1\n").unwrap();
        assert_eq!(d.cols(), u32::MAX as usize);
        let e = p("+1 0:1\n-1 4294967295:1\n").unwrap_err().to_string();
        assert!(
            e.contains(":2: feature index larger than 4294967294"),
            "{e}"
        );
        let e = p("+1 4294967296:1\n").unwrap_err().to_string();
        assert!(
            e.contains(":1:4: feature index larger than 4294967295"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_index_is_an_error() {
        let e = p("+1 3:1 1:1 3:2\n").unwrap_err().to_string();
        assert!(e.contains(":1: feature index 3 appears twice"), "{e}");
    }

    #[test]
    fn error_line_numbers_are_global_across_chunks() {
        let mut text = "+1 1:1 2:1\n".repeat(200_000);
        text.push_str("-1 5:x\n");
        let e = p(&text).unwrap_err().to_string();
        assert!(e.contains(":200001:6:"), "{e}");
    }
}
