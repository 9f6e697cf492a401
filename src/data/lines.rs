//! Splitting a byte buffer into line-aligned chunks for parallel parsing, and
//! walking the lines of one chunk with their numbers.

use crate::error::{ParseError, ParseErrorKind};

/// Cuts `bytes` into pieces of about `target` bytes that each end just after a `\n`
/// (the last one may end without it), so no line is split between two pieces.
pub(crate) fn split_chunks(bytes: &[u8], target: usize) -> Vec<&[u8]> {
    let target = target.max(1);
    let mut chunks = Vec::with_capacity(bytes.len() / target + 1);
    let mut start = 0;
    while start < bytes.len() {
        let guess = (start + target).min(bytes.len());
        let end = match memchr::memchr(b'\n', &bytes[guess..]) {
            Some(i) if guess < bytes.len() => guess + i + 1,
            _ => bytes.len(),
        };
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks
}

/// Chunk size for parallel parsing: a few chunks per thread so that rayon can balance
/// load, but no smaller than 256 KiB so per-chunk overhead stays negligible.
pub(crate) fn chunk_target(len: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (len / (threads * 8)).max(256 << 10)
}

/// Calls `f(line_number, line)` for every line of `chunk`, numbered from 1 within the
/// chunk, with the `\n` and a trailing `\r` removed. Stops at the first error.
///
/// # Errors
/// [`ParseErrorKind::LineTooLong`] for a line over `max_line` bytes, or whatever `f` returns.
pub(crate) fn for_each_line<'a, F>(
    chunk: &'a [u8],
    max_line: usize,
    mut f: F,
) -> Result<u64, ParseError>
where
    F: FnMut(u64, &'a [u8]) -> Result<(), ParseError>,
{
    let mut line_no = 0u64;
    let mut rest = chunk;
    while !rest.is_empty() {
        line_no += 1;
        let (mut line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.len() > max_line {
            return Err(
                ParseError::new(ParseErrorKind::LineTooLong { limit: max_line })
                    .at(line_no, max_line + 1),
            );
        }
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        f(line_no, line)?;
    }
    Ok(line_no)
}

/// Removes a `#` comment and surrounding blanks. Checks the whole line is UTF-8 when it
/// holds any non-ASCII byte (comments may be UTF-8; data tokens are ASCII).
pub(crate) fn content(line: &[u8], line_no: u64) -> Result<&[u8], ParseError> {
    Ok(trim_blank(strip_comment(line, line_no)?))
}

/// Removes the bytes [`Tokens`] treats as blank (and `\n`) from both ends, so a line
/// that is not empty after trimming always has a token (`trim_ascii` keeps `\x0b`).
pub(crate) fn trim_blank(mut s: &[u8]) -> &[u8] {
    while let [b, rest @ ..] = s
        && (is_blank(*b) || *b == b'\n')
    {
        s = rest;
    }
    while let [rest @ .., b] = s
        && (is_blank(*b) || *b == b'\n')
    {
        s = rest;
    }
    s
}

/// Removes a `#` comment (nothing else), after the same UTF-8 check as [`content`].
pub(crate) fn strip_comment(line: &[u8], line_no: u64) -> Result<&[u8], ParseError> {
    if !line.is_ascii()
        && let Err(e) = std::str::from_utf8(line)
    {
        let at = e.valid_up_to();
        let bad = &line[at..at + e.error_len().unwrap_or(line.len() - at)];
        let mut err = ParseError::new(ParseErrorKind::InvalidUtf8).at(line_no, at + 1);
        err.token = Some(bad.iter().map(|b| format!("\\x{b:02x}")).collect());
        return Err(err);
    }
    Ok(match memchr::memchr(b'#', line) {
        Some(i) => &line[..i],
        None => line,
    })
}

/// Iterator over blank-separated tokens of a line, yielding each token's 1-based column.
pub(crate) struct Tokens<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Tokens { line, pos: 0 }
    }
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\x0b' || b == b'\x0c' || b == b'\r'
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (usize, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let line = self.line;
        let mut i = self.pos;
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            self.pos = i;
            return None;
        }
        let start = i;
        while i < line.len() && !is_blank(line[i]) {
            i += 1;
        }
        self.pos = i;
        Some((start + 1, &line[start..i]))
    }
}

/// Parses a finite f32, or says what was expected.
#[inline]
pub(crate) fn parse_f32(
    tok: &[u8],
    expected: &'static str,
    what: &'static str,
) -> Result<f32, ParseErrorKind> {
    let v: f32 = std::str::from_utf8(tok)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseErrorKind::NotANumber { expected })?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ParseErrorKind::NonFinite { what })
    }
}

/// Parses a non-negative decimal integer without sign, or says what was expected.
#[inline]
pub(crate) fn parse_u64(tok: &[u8], what: &'static str) -> Result<u64, ParseErrorKind> {
    if tok.is_empty() || tok.len() > 20 {
        return Err(ParseErrorKind::NotANumber { expected: what });
    }
    let mut v: u64 = 0;
    for &b in tok {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(ParseErrorKind::NotANumber { expected: what });
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(ParseErrorKind::NotANumber { expected: what })?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_newlines_and_cover_everything() {
        let text = b"a\nbb\nccc\ndddd\neeeee".to_vec();
        for target in 1..text.len() + 2 {
            let chunks = split_chunks(&text, target);
            assert_eq!(chunks.concat(), text);
            for c in &chunks[..chunks.len() - 1] {
                assert_eq!(c.last(), Some(&b'\n'));
            }
        }
    }

    #[test]
    fn a_trimmed_line_that_is_not_empty_has_a_token() {
        for line in [&b"\x0b"[..], b" \x0b\x0c\t", b"\x0b1\x0b", b"\r"] {
            let t = trim_blank(line);
            assert_eq!(t.is_empty(), Tokens::new(line).next().is_none(), "{line:?}");
        }
    }

    #[test]
    fn tokens_report_columns() {
        let t: Vec<_> = Tokens::new(b" +1\t3:1  7:2").collect();
        assert_eq!(
            t,
            vec![(2, &b"+1"[..]), (5, &b"3:1"[..]), (10, &b"7:2"[..])]
        );
    }

    #[test]
    fn integers_reject_signs_and_overflow() {
        assert_eq!(parse_u64(b"123", "x"), Ok(123));
        assert!(parse_u64(b"-1", "x").is_err());
        assert!(parse_u64(b"99999999999999999999", "x").is_err());
        assert!(parse_u64(b"", "x").is_err());
    }

    #[test]
    fn floats_must_be_finite() {
        assert_eq!(parse_f32(b"0.5", "v", "v"), Ok(0.5));
        assert!(matches!(
            parse_f32(b"nan", "v", "v"),
            Err(ParseErrorKind::NonFinite { .. })
        ));
        assert!(matches!(
            parse_f32(b"1e39", "v", "v"),
            Err(ParseErrorKind::NonFinite { .. })
        ));
        assert!(matches!(
            parse_f32(b"abc", "v", "v"),
            Err(ParseErrorKind::NotANumber { .. })
        ));
    }
}
