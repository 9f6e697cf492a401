//! Reading raw input bytes from a path or any reader, with transparent gzip.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use crate::error::{Error, ParseError, ParseErrorKind, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file into memory, decompressing it when it is gzip (detected by its
/// magic bytes, so a `.gz` name is not required and a misnamed file still works).
///
/// Memory is checked against the budget ([`crate::memory`]) before it is taken. A gzip
/// stream is decompressed piece by piece and its lines measured as they come, so a
/// line over `max_line` bytes (a "gzip bomb" without newlines) stops the read at once.
///
/// # Errors
/// [`Error::Read`] when the file cannot be opened or read; a [`ParseError`] naming the
/// file for a truncated or corrupt gzip stream or an over-long line; [`Error::Memory`]
/// when the data does not fit.
pub fn read_path(path: &Path, max_line: usize) -> Result<Vec<u8>> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    let mut raw = io::BufReader::with_capacity(1 << 20, file);
    let gzip = raw.fill_buf().map_err(read_err)?.starts_with(&GZIP_MAGIC);
    let name = |e: Error| locate(name_source(e, path), path);
    if gzip {
        return decompress(raw, max_line).map_err(name);
    }
    // A regular file's size is known: take it at once. Anything else (a pipe, a device)
    // is read piece by piece within the budget, so /dev/zero ends in an error.
    let out = if meta.is_file() {
        reserve(Vec::new(), meta.len(), "reading the input").map_err(name)?
    } else {
        Vec::new()
    };
    read_pieces(raw, out).map_err(name)
}

/// Reads `reader` to its end into `out`, growing it within the budget.
fn read_pieces<R: Read>(mut reader: R, mut out: Vec<u8>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let k = match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Read {
                    path: "-".into(),
                    source: e,
                });
            }
        };
        out = reserve(out, k as u64, "reading the input")?;
        out.extend_from_slice(&buf[..k]);
    }
}

/// Reads everything from `reader`, decompressing gzip as [`read_path`] does.
///
/// # Errors
/// A [`ParseError`] without a path for a bad gzip stream or an over-long line,
/// [`Error::Read`] (path `-`) for an I/O failure, [`Error::Memory`] when it does not fit.
pub fn read_bufread<R: BufRead>(mut reader: R, max_line: usize) -> Result<Vec<u8>> {
    let gzip = reader
        .fill_buf()
        .map_err(|source| Error::Read {
            path: "-".into(),
            source,
        })?
        .starts_with(&GZIP_MAGIC);
    if gzip {
        decompress(reader, max_line)
    } else {
        read_pieces(reader, Vec::new())
    }
}

/// Grows `v` by `more` bytes of capacity, within the memory budget.
fn reserve(mut v: Vec<u8>, more: u64, what: &str) -> Result<Vec<u8>> {
    let total = (v.len() as u64).saturating_add(more);
    if total > v.capacity() as u64 {
        // Grow geometrically so that piecewise reads stay linear in time.
        let want = total.max(2 * v.capacity() as u64);
        let hint = "the input is too large for this machine's memory (or for `max_memory`)";
        crate::memory::check(what, want, hint)
            .or_else(|_| crate::memory::check(what, total, hint))?;
        let len = v.len() as u64;
        let grow = |n: u64| usize::try_from(n - len).ok();
        let ok = grow(want).is_some_and(|g| v.try_reserve_exact(g).is_ok())
            || grow(total).is_some_and(|g| v.try_reserve_exact(g).is_ok());
        if !ok {
            return Err(Error::Memory {
                what: what.into(),
                needed: total,
                available: crate::memory::budget(),
                hint,
            });
        }
    }
    Ok(v)
}

/// Decompresses a gzip stream (several members are read as one), 1 MiB at a time,
/// refusing a line longer than `max_line` as soon as it is seen.
fn decompress<R: BufRead>(reader: R, max_line: usize) -> Result<Vec<u8>> {
    let mut dec = MultiGzDecoder::new(reader);
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    let (mut lines, mut since_newline) = (0u64, 0usize);
    loop {
        let k = match dec.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ParseError::new(ParseErrorKind::TruncatedGzip).into());
            }
            Err(e)
                if e.kind() == io::ErrorKind::InvalidInput
                    || e.kind() == io::ErrorKind::InvalidData =>
            {
                return Err(ParseError::new(ParseErrorKind::CorruptGzip(e.to_string())).into());
            }
            Err(e) => {
                return Err(Error::Read {
                    path: "-".into(),
                    source: e,
                });
            }
        };
        let piece = &buf[..k];
        let mut rest = piece;
        loop {
            let len = match memchr::memchr(b'\n', rest) {
                Some(i) => since_newline + i,
                None => since_newline + rest.len(),
            };
            if len > max_line {
                return Err(
                    ParseError::new(ParseErrorKind::LineTooLong { limit: max_line })
                        .at(lines + 1, max_line + 1)
                        .into(),
                );
            }
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    lines += 1;
                    since_newline = 0;
                    rest = &rest[i + 1..];
                }
                None => {
                    since_newline = len;
                    break;
                }
            }
        }
        out = reserve(out, k as u64, "decompressing the gzip input")?;
        out.extend_from_slice(piece);
    }
}

/// Names the file in a read or memory error from inside the readers.
fn name_source(e: Error, path: &Path) -> Error {
    match e {
        Error::Read { source, .. } => Error::Read {
            path: path.to_path_buf(),
            source,
        },
        Error::Memory {
            what,
            needed,
            available,
            hint,
        } => Error::Memory {
            what: format!("{}: {what}", path.display()),
            needed,
            available,
            hint,
        },
        other => other,
    }
}

/// Attaches `path` to a parse error that has none.
pub(crate) fn locate(e: Error, path: &Path) -> Error {
    match e {
        Error::Parse(mut p) => {
            if p.path.is_none() {
                p.path = Some(path.to_path_buf());
            }
            Error::Parse(p)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_give_the_same_bytes() {
        let data = b"+1 1:0.5\n-1 2:1\n".repeat(100);
        assert_eq!(read_bufread(&data[..], 100).unwrap(), data);
        assert_eq!(read_bufread(&gz(&data)[..], 100).unwrap(), data);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data = b"+1 1:0.5\n-1 2:1\n".repeat(1000);
        let z = gz(&data);
        let err = read_bufread(&z[..z.len() / 2], 100).unwrap_err();
        assert!(err.to_string().contains("truncated gzip"), "{err}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_line_limit() {
        // 64 MiB of zeros compress to ~64 kB; with a 1 MiB line limit the read stops
        // after the first piece, located on line 3.
        let mut data = b"+1 1:1\n-1 2:1\n".to_vec();
        data.resize(64 << 20, b'0');
        let z = gz(&data);
        assert!(z.len() < 1 << 20);
        let err = read_bufread(&z[..], 1 << 20).unwrap_err().to_string();
        assert!(
            err.contains(":3:") && err.contains("line longer than 1048576"),
            "{err}"
        );
        // Lines exactly at the limit pass.
        let ok = b"abcd\nefgh\n".repeat(3);
        assert_eq!(read_bufread(&gz(&ok)[..], 4).unwrap(), ok);
        assert!(read_bufread(&gz(b"abcde\n")[..], 4).is_err());
    }
}
