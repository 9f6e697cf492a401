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
/// # Errors
/// [`Error::Read`] when the file cannot be opened or read; a [`ParseError`] naming the
/// file for a truncated or corrupt gzip stream.
pub fn read_path(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut raw = Vec::with_capacity(len);
    io::BufReader::with_capacity(1 << 20, file)
        .read_to_end(&mut raw)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    decompress_if_gzip(raw).map_err(|e| locate(e, path))
}

/// Reads everything from `reader`, decompressing gzip as [`read_path`] does.
///
/// # Errors
/// A [`ParseError`] without a path for a bad gzip stream, [`Error::Read`] (path `-`) for
/// an I/O failure.
pub fn read_bufread<R: BufRead>(mut reader: R) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).map_err(|source| Error::Read {
        path: "-".into(),
        source,
    })?;
    decompress_if_gzip(raw)
}

fn decompress_if_gzip(raw: Vec<u8>) -> Result<Vec<u8>> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    match MultiGzDecoder::new(&raw[..]).read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(ParseError::new(ParseErrorKind::TruncatedGzip).into())
        }
        Err(e) => Err(ParseError::new(ParseErrorKind::CorruptGzip(e.to_string())).into()),
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
        assert_eq!(read_bufread(&data[..]).unwrap(), data);
        assert_eq!(read_bufread(&gz(&data)[..]).unwrap(), data);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data = b"+1 1:0.5\n-1 2:1\n".repeat(1000);
        let z = gz(&data);
        let err = read_bufread(&z[..z.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("truncated gzip"), "{err}");
    }
}
