//! Ratings files for matrix factorization: one `user item rating` triplet per line.
//!
//! Accepted layouts (detected from the first data line, or forced):
//! tab-separated (MovieLens `u.data`), `::`-separated (MovieLens `ratings.dat`), CSV
//! with or without a header line, and blank-separated (FilmTrust). The first data line
//! fixes the number of fields for the whole file: 2 (user, item: implicit feedback, every
//! listed pair gets rating 1), 3 (user, item, rating) or 4 (and a timestamp, a
//! non-negative integer, checked and not used). Every field of every line is checked; an
//! empty field (two separators in a row, a leading tab) is an error, not a shift. A
//! first line is a header when its first field is not a number at all (`userId`); a
//! number that is not an id (`-1`, `1.0`) is an error. User and item ids are
//! non-negative integers; they are re-indexed densely in order of first appearance and
//! the maps back to the original ids are kept.

use std::collections::HashMap;

use rayon::prelude::*;

use super::DEFAULT_MAX_LINE;
use super::lines::{
    Tokens, chunk_target, for_each_line, parse_f32, parse_u64, split_chunks, strip_comment,
    trim_blank,
};
use crate::error::{ParseError, ParseErrorKind, Result};

/// How the fields of a ratings line are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RatingsLayout {
    /// Tab-separated.
    Tab,
    /// `::`-separated.
    DoubleColon,
    /// Comma-separated.
    Comma,
    /// Separated by spaces or tabs.
    Blank,
}

/// Options for reading ratings files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingsOptions {
    /// The layout, or `None` to detect it.
    pub layout: Option<RatingsLayout>,
    /// Longest line accepted, in bytes.
    pub max_line_bytes: usize,
}

impl Default for RatingsOptions {
    fn default() -> Self {
        RatingsOptions {
            layout: None,
            max_line_bytes: DEFAULT_MAX_LINE,
        }
    }
}

/// Ratings as (user, item, rating) triplets with dense 0-based ids.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingsDataset {
    /// Dense user index of each rating.
    pub users: Vec<u32>,
    /// Dense item index of each rating.
    pub items: Vec<u32>,
    /// The ratings.
    pub ratings: Vec<f32>,
    /// Original id of each dense user index.
    pub user_ids: Vec<u64>,
    /// Original id of each dense item index.
    pub item_ids: Vec<u64>,
    /// The layout the file had.
    pub layout: RatingsLayout,
    /// True when the file listed pairs only (every rating is 1).
    pub implicit: bool,
    /// True when the file had a header line.
    pub header: bool,
}

impl RatingsDataset {
    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }
    /// True when there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }
    /// Number of distinct users.
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    /// Number of distinct items.
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
}

/// What the first data line established.
#[derive(Clone, Copy)]
struct Shape {
    layout: RatingsLayout,
    /// Fields on every line: 2, 3 or 4.
    fields: usize,
}

impl Shape {
    fn implicit(&self) -> bool {
        self.fields == 2
    }
    fn expected(&self) -> &'static str {
        match self.fields {
            2 => "2 (user, item) as on the first line",
            3 => "3 (user, item, rating) as on the first line",
            _ => "4 (user, item, rating, timestamp) as on the first line",
        }
    }
}

/// What each field is, for messages.
const FIELD_NAMES: [&str; 4] = [
    "a user id (non-negative integer)",
    "an item id (non-negative integer)",
    "a rating (number)",
    "a timestamp (non-negative integer)",
];

#[derive(Default)]
struct Chunk {
    users: Vec<u64>,
    items: Vec<u64>,
    ratings: Vec<f32>,
    lines: u64,
}

fn detect_layout(line: &[u8]) -> RatingsLayout {
    if memchr::memmem::find(line, b"::").is_some() {
        RatingsLayout::DoubleColon
    } else if memchr::memchr(b'\t', line).is_some() {
        RatingsLayout::Tab
    } else if memchr::memchr(b',', line).is_some() {
        RatingsLayout::Comma
    } else {
        RatingsLayout::Blank
    }
}

/// Splits a line (comment removed, not trimmed) into (1-based column, field) pairs.
/// Separated layouts keep empty fields, so a missing value is seen, never skipped; a tab
/// layout trims only spaces around the line, as tabs separate fields.
fn fields<'a>(line: &'a [u8], layout: RatingsLayout, out: &mut Vec<(usize, &'a [u8])>) {
    out.clear();
    let base = line.as_ptr() as usize;
    let (sep, line): (&[u8], &[u8]) = match layout {
        RatingsLayout::Blank => {
            out.extend(Tokens::new(line));
            return;
        }
        RatingsLayout::Tab => (b"\t", trim_spaces(line)),
        RatingsLayout::Comma => (b",", line.trim_ascii()),
        RatingsLayout::DoubleColon => (b"::", line.trim_ascii()),
    };
    if line.is_empty() {
        return;
    }
    let mut rest = line;
    loop {
        let (field, next) = match memchr::memmem::find(rest, sep) {
            Some(i) => (&rest[..i], Some(&rest[i + sep.len()..])),
            None => (rest, None),
        };
        let f = field.trim_ascii();
        // An empty field's column is where it would have started.
        let col = if f.is_empty() {
            field.as_ptr() as usize
        } else {
            f.as_ptr() as usize
        };
        out.push((col - base + 1, f));
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\r'] = s {
        s = rest;
    }
    s
}

/// True when a first line names its columns (a header) rather than holding values:
/// every field is a word (`userId,movieId,rating`). A line with any number in it
/// (`-1`, `1.0`, `0x1 1 5`) or an empty field is data, and its errors are reported.
fn is_header(fields: &[(usize, &[u8])]) -> bool {
    fields.iter().all(|(_, f)| {
        f.iter().any(u8::is_ascii_alphabetic)
            && std::str::from_utf8(f)
                .ok()
                .is_none_or(|s| s.parse::<f64>().is_err())
    })
}

/// Checks the fields of one data line against the shape and parses them.
fn parse_fields(
    f: &[(usize, &[u8])],
    shape: Shape,
    line_no: u64,
    lead: usize,
    line: &[u8],
) -> Result<(u64, u64, f32), ParseError> {
    if f.len() != shape.fields {
        return Err(ParseError::new(ParseErrorKind::FieldCount {
            expected: shape.expected(),
            found: f.len(),
        })
        .at(line_no, lead + 1)
        .token(line));
    }
    let fail =
        |kind, (col, tok): (usize, &[u8])| ParseError::new(kind).at(line_no, col + lead).token(tok);
    let user = parse_u64(f[0].1, FIELD_NAMES[0]).map_err(|k| fail(k, f[0]))?;
    let item = parse_u64(f[1].1, FIELD_NAMES[1]).map_err(|k| fail(k, f[1]))?;
    let rating = if shape.implicit() {
        1.0
    } else {
        parse_f32(f[2].1, FIELD_NAMES[2], "a rating").map_err(|k| fail(k, f[2]))?
    };
    if shape.fields == 4 {
        parse_u64(f[3].1, FIELD_NAMES[3]).map_err(|k| fail(k, f[3]))?;
    }
    Ok((user, item, rating))
}

/// Parses ratings text held in memory.
///
/// # Errors
/// A [`ParseError`] (without a path) locating the first malformed line.
pub fn parse(bytes: &[u8], opts: &RatingsOptions) -> Result<RatingsDataset> {
    // Find the first data line: it fixes the layout, the field count and whether there is
    // a header. Everything after it is parsed in parallel.
    let mut offset = 0usize;
    let mut line_no = 0u64;
    let mut first: Option<(Shape, bool)> = None;
    while offset < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[offset..]).map_or(bytes.len(), |i| offset + i + 1);
        line_no += 1;
        let mut raw = &bytes[offset..end];
        if raw.len() > opts.max_line_bytes + 2 {
            return Err(ParseError::new(ParseErrorKind::LineTooLong {
                limit: opts.max_line_bytes,
            })
            .at(line_no, opts.max_line_bytes + 1)
            .into());
        }
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let body = strip_comment(raw, line_no)?;
        let line = trim_blank(body);
        if !line.is_empty() {
            let layout = opts.layout.unwrap_or_else(|| detect_layout(line));
            let mut f = Vec::new();
            fields(body, layout, &mut f);
            let lead = body.as_ptr() as usize - raw.as_ptr() as usize;
            if !(2..=4).contains(&f.len()) {
                let at = line.as_ptr() as usize - raw.as_ptr() as usize;
                return Err(ParseError::new(ParseErrorKind::FieldCount {
                    expected: "2 to 4 (user, item[, rating[, timestamp]])",
                    found: f.len(),
                })
                .at(line_no, at + 1)
                .token(line)
                .into());
            }
            let shape = Shape {
                layout,
                fields: f.len(),
            };
            let header = is_header(&f);
            if header {
                offset = end;
            } else {
                // The first line is data: check it now, for a message on its own line.
                parse_fields(&f, shape, line_no, lead, line)?;
            }
            first = Some((shape, header));
            break;
        }
        offset = end;
    }
    let Some((shape, header)) = first else {
        return Err(ParseError::new(ParseErrorKind::Empty).into());
    };
    // Lines before `offset` (comments, blanks, a header) are already counted.
    let lines_before = if header { line_no } else { line_no - 1 };
    let body = &bytes[offset..];
    let results: Vec<Result<Chunk, ParseError>> = split_chunks(body, chunk_target(body.len()))
        .par_iter()
        .map(|c| parse_chunk(c, shape, opts.max_line_bytes))
        .collect();
    let mut chunks = Vec::with_capacity(results.len());
    let mut line_offset = lines_before;
    for r in results {
        match r {
            Ok(c) => {
                line_offset += c.lines;
                chunks.push(c);
            }
            Err(mut e) => {
                e.line = e.line.map(|l| l + line_offset);
                return Err(e.into());
            }
        }
    }
    let n: usize = chunks.iter().map(|c| c.ratings.len()).sum();
    if n == 0 {
        return Err(ParseError::new(ParseErrorKind::Empty).into());
    }
    let mut raw_users = Vec::with_capacity(n);
    let mut raw_items = Vec::with_capacity(n);
    let mut ratings = Vec::with_capacity(n);
    for c in chunks {
        raw_users.extend_from_slice(&c.users);
        raw_items.extend_from_slice(&c.items);
        ratings.extend_from_slice(&c.ratings);
    }
    let ((users, user_ids), (items, item_ids)) =
        rayon::join(|| dense_ids(&raw_users), || dense_ids(&raw_items));
    Ok(RatingsDataset {
        users,
        items,
        ratings,
        user_ids,
        item_ids,
        layout: shape.layout,
        implicit: shape.implicit(),
        header,
    })
}

fn parse_chunk(chunk: &[u8], shape: Shape, max_line: usize) -> Result<Chunk, ParseError> {
    let mut out = Chunk::default();
    let mut f = Vec::with_capacity(8);
    out.lines = for_each_line(chunk, max_line, |line_no, raw| {
        let body = strip_comment(raw, line_no)?;
        let line = trim_blank(body);
        if line.is_empty() {
            return Ok(());
        }
        let lead = body.as_ptr() as usize - raw.as_ptr() as usize;
        fields(body, shape.layout, &mut f);
        let (u, i, r) = parse_fields(&f, shape, line_no, lead, line)?;
        out.users.push(u);
        out.items.push(i);
        out.ratings.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Re-indexes ids densely in order of first appearance; returns the dense ids and the
/// map back. Small id ranges use a lookup table, others a hash map.
pub(crate) fn dense_ids(raw: &[u64]) -> (Vec<u32>, Vec<u64>) {
    let mut back = Vec::new();
    let max = raw.iter().copied().max().unwrap_or(0);
    let dense = if max < (1 << 26) && (max as usize) < 16 * raw.len() + 1024 {
        let mut table = vec![u32::MAX; max as usize + 1];
        raw.iter()
            .map(|&id| {
                let slot = &mut table[id as usize];
                if *slot == u32::MAX {
                    *slot = back.len() as u32;
                    back.push(id);
                }
                *slot
            })
            .collect()
    } else {
        let mut map: HashMap<u64, u32> = HashMap::new();
        raw.iter()
            .map(|&id| {
                *map.entry(id).or_insert_with(|| {
                    back.push(id);
                    (back.len() - 1) as u32
                })
            })
            .collect()
    };
    (dense, back)
}

/// Writes ratings as tab-separated `user item rating` lines with the original ids.
///
/// # Errors
/// Whatever the writer returns.
pub fn write<W: std::io::Write>(data: &RatingsDataset, mut w: W) -> std::io::Result<()> {
    let mut ib = itoa::Buffer::new();
    let mut fb = ryu::Buffer::new();
    let mut line = Vec::with_capacity(64);
    for k in 0..data.len() {
        line.clear();
        line.extend_from_slice(ib.format(data.user_ids[data.users[k] as usize]).as_bytes());
        line.push(b'\t');
        line.extend_from_slice(ib.format(data.item_ids[data.items[k] as usize]).as_bytes());
        line.push(b'\t');
        line.extend_from_slice(fb.format_finite(data.ratings[k]).as_bytes());
        line.push(b'\n');
        w.write_all(&line)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<RatingsDataset> {
        parse(text.as_bytes(), &RatingsOptions::default())
    }

    #[test]
    fn reads_every_layout() {
        for text in [
            "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t1\t1\n",
            "196::242::3::881250949\n186::302::3::891717742\n196::302::1::1\n",
            "userId,movieId,rating,timestamp\n196,242,3,881250949\n186,302,3,891717742\n196,302,1,1\n",
            "196 242 3\r\n186 302 3\r\n196 302 1\r\n",
        ] {
            let d = p(text).unwrap();
            assert_eq!(d.len(), 3, "{text}");
            assert_eq!(d.user_ids, vec![196, 186]);
            assert_eq!(d.item_ids, vec![242, 302]);
            assert_eq!(d.users, vec![0, 1, 0]);
            assert_eq!(d.items, vec![0, 1, 1]);
            assert_eq!(d.ratings, vec![3.0, 3.0, 1.0]);
        }
        assert!(p("a,b,c\n1,2,3\n").unwrap().header);
    }

    #[test]
    fn two_fields_mean_implicit_feedback() {
        let d = p("1\t5\n2\t5\n").unwrap();
        assert!(d.implicit);
        assert_eq!(d.ratings, vec![1.0, 1.0]);
        let e = p("1\t5\n2\t5\t3\n").unwrap_err().to_string();
        assert!(
            e.contains(":2:1: wrong number of fields: expected 2 (user, item)"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_located() {
        let e = p("1\t2\t3\n1\tx\t3\n").unwrap_err().to_string();
        assert!(e.contains(":2:3: expected an item id"), "{e}");
        let e = p("1,2,3\n1,2,nan\n").unwrap_err().to_string();
        assert!(e.contains(":2:5: a rating must be a finite number"), "{e}");
        let e = p("h1,h2,h3\n1,2,3\nh1,h2,h3\n").unwrap_err().to_string();
        assert!(e.contains(":3:1: expected a user id"), "{e}");
    }

    #[test]
    fn large_ids_use_the_hash_map() {
        let d = p("18446744073709551615 1 2\n5 1 2\n").unwrap();
        assert_eq!(d.user_ids, vec![u64::MAX, 5]);
    }
}
