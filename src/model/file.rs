//! The model file: versioned, checksummed, written atomically.
//!
//! Layout (little-endian): magic `WSGDMODL`, format version (u32), length of a JSON
//! header (u32), the JSON header (model kind, loss, feature count, training metadata),
//! the weights (f32 each, then the bias), and a CRC-32 of everything before it.
//! A file that is not a model, from another format version, truncated or damaged is
//! refused with a [`ParseError`] naming the file.

use std::path::Path;

use super::{LinearModel, LossKind};
use crate::error::{Error, ParseError, ParseErrorKind, Result};

const MAGIC: &[u8; 8] = b"WSGDMODL";
/// Model file format version written by this build.
pub const MODEL_VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    kind: String,
    loss: LossKind,
    n_features: u64,
    meta: serde_json::Value,
}

/// Writes `model` to `path` atomically (temporary file, then rename).
///
/// # Errors
/// [`Error::Write`] when the file cannot be written; an existing file is then untouched.
pub fn save_model(model: &LinearModel, path: &Path) -> Result<()> {
    let header = serde_json::to_vec(&Header {
        kind: "linear".into(),
        loss: model.loss,
        n_features: model.weights.len() as u64,
        meta: model.meta.clone(),
    })
    .expect("header serializes");
    let mut out = Vec::with_capacity(32 + header.len() + 4 * (model.weights.len() + 1));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&MODEL_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for w in model.weights.iter().chain(std::iter::once(&model.bias)) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    crate::atomic::write_atomic(path, &out).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a model written by [`save_model`].
///
/// # Errors
/// [`Error::Read`] when the file cannot be read; a [`ParseError`] naming the file when
/// it is not a model, is from another version, is truncated or fails its checksum.
pub fn load_model(path: &Path) -> Result<LinearModel> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|msg| {
        ParseError::new(ParseErrorKind::BadBinary(msg))
            .in_file(path)
            .into()
    })
}

fn decode(b: &[u8]) -> std::result::Result<LinearModel, String> {
    if b.len() < 16 || &b[..8] != MAGIC {
        return Err("not a wildsgd model file (bad magic bytes)".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != MODEL_VERSION {
        return Err(format!(
            "model file format version {version}; this wildsgd reads version {MODEL_VERSION}: retrain or use a matching release"
        ));
    }
    if b.len() < 20 {
        return Err("truncated model file".into());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    let hlen = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
    if 16 + hlen > body.len() {
        return Err("truncated model file (header cut short)".into());
    }
    let header: Header = serde_json::from_slice(&b[16..16 + hlen]).map_err(|e| {
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            "damaged model file (checksum mismatch)".to_string()
        } else {
            format!("bad model header: {e}")
        }
    })?;
    let n =
        usize::try_from(header.n_features).map_err(|_| "feature count too large".to_string())?;
    let expected = 16 + hlen + 4 * (n + 1);
    if body.len() < expected {
        return Err(format!(
            "truncated model file ({} of {} bytes)",
            b.len(),
            expected + 4
        ));
    }
    if body.len() > expected {
        return Err("damaged model file (trailing bytes)".into());
    }
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("damaged model file (checksum mismatch)".into());
    }
    if header.kind != "linear" {
        return Err(format!(
            "a `{}` model, expected a linear model",
            header.kind
        ));
    }
    let mut w: Vec<f32> = body[16 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if w.iter().any(|v| !v.is_finite()) {
        return Err("damaged model file (non-finite weight)".into());
    }
    let bias = w.pop().expect("bias present");
    Ok(LinearModel {
        loss: header.loss,
        weights: w,
        bias,
        meta: header.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LinearModel {
        LinearModel {
            loss: LossKind::Hinge,
            weights: vec![0.5, -1.25, 3.0],
            bias: 0.125,
            meta: serde_json::json!({"optimizer": "sgd"}),
        }
    }

    #[test]
    fn round_trip_and_every_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.wsgd");
        save_model(&model(), &p).unwrap();
        assert_eq!(load_model(&p).unwrap(), model());
        let good = std::fs::read(&p).unwrap();
        let check = |bytes: &[u8], want: &str| {
            std::fs::write(&p, bytes).unwrap();
            let e = load_model(&p).unwrap_err();
            assert!(e.is_bad_input());
            let s = e.to_string();
            assert!(s.contains("m.wsgd") && s.contains(want), "{s}");
        };
        for cut in [0, 10, 17, good.len() / 2, good.len() - 1] {
            check(
                &good[..cut],
                if cut < 16 { "not a wildsgd model" } else { "" },
            );
        }
        let mut v2 = good.clone();
        v2[8] = 2;
        check(&v2, "version 2");
        let mut flipped = good.clone();
        let k = good.len() - 8;
        flipped[k] ^= 1;
        check(&flipped, "checksum");
        check(b"+1 1:1\n-1 2:1\n", "not a wildsgd model");
    }
}
