//! The model file: versioned, checksummed, written atomically.
//!
//! Layout (little-endian): magic `WSGDMODL`, format version (u32), length of a JSON
//! header (u32), the JSON header (model kind and sizes, training metadata), the
//! payload, and a CRC-32 of everything before it. Payloads:
//! * `linear`: the weights (f32 each), then the bias.
//! * `mf`: user biases, item biases, user factors, item factors (f32, row-major), the
//!   original user and item ids (u64), then the items each user rated in training as
//!   offsets (u64, users + 1) and dense item indices (u32).
//!
//! A file that is not a model, from another format version, of the wrong kind,
//! truncated or damaged is refused with a [`ParseError`] naming the file.

use std::path::Path;

use super::{LinearModel, LossKind};
use crate::data::{Classes, IndexBase};
use crate::error::{Error, ParseError, ParseErrorKind, Result};
use crate::mf::MfModel;

const MAGIC: &[u8; 8] = b"WSGDMODL";
/// Model file format version written by this build.
pub const MODEL_VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    kind: String,
    loss: LossKind,
    n_features: u64,
    meta: serde_json::Value,
    /// Absent in files from before it was recorded: 1-based (LIBSVM's convention).
    #[serde(default = "one_based")]
    index_base: IndexBase,
    /// Absent in files from before it was recorded: −1 and +1.
    #[serde(default)]
    classes: Classes,
}

fn one_based() -> IndexBase {
    IndexBase::One
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MfHeader {
    kind: String,
    rank: u64,
    users: u64,
    items: u64,
    rated: u64,
    mean: f32,
    scale: f32,
    min_rating: f32,
    max_rating: f32,
    meta: serde_json::Value,
}

/// A model of either kind, as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyModel {
    /// A linear model.
    Linear(LinearModel),
    /// A matrix-factorization model.
    Mf(MfModel),
}

fn write_framed(path: &Path, header: &[u8], payload: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(20 + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&MODEL_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    crate::atomic::write_atomic(path, &out).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `model` to `path` atomically (temporary file, then rename).
///
/// # Errors
/// [`Error::Write`] when the file cannot be written; an existing file is then untouched.
pub fn save_model(model: &LinearModel, path: &Path) -> Result<()> {
    if !model.is_finite() {
        return Err(Error::config(
            "weights",
            "the model has non-finite weights (it diverged); it is not saved, as it could not be loaded",
        ));
    }
    let header = serde_json::to_vec(&Header {
        kind: "linear".into(),
        loss: model.loss,
        n_features: model.weights.len() as u64,
        meta: model.meta.clone(),
        index_base: model.index_base,
        classes: model.classes,
    })
    .expect("header serializes");
    let mut payload = Vec::with_capacity(4 * (model.weights.len() + 1));
    for w in model.weights.iter().chain(std::iter::once(&model.bias)) {
        payload.extend_from_slice(&w.to_le_bytes());
    }
    write_framed(path, &header, &payload)
}

/// Writes a matrix-factorization model to `path` atomically.
///
/// # Errors
/// [`Error::Write`] when the file cannot be written; an existing file is then untouched.
pub fn save_mf_model(m: &MfModel, path: &Path) -> Result<()> {
    let header = serde_json::to_vec(&MfHeader {
        kind: "mf".into(),
        rank: m.rank as u64,
        users: m.n_users() as u64,
        items: m.n_items() as u64,
        rated: m.rated_items.len() as u64,
        mean: m.mean,
        scale: m.scale,
        min_rating: m.min_rating,
        max_rating: m.max_rating,
        meta: m.meta.clone(),
    })
    .expect("header serializes");
    let mut p = Vec::new();
    for v in [&m.user_bias, &m.item_bias, &m.user_factors, &m.item_factors] {
        v.iter().for_each(|x| p.extend_from_slice(&x.to_le_bytes()));
    }
    for v in [&m.user_ids, &m.item_ids, &m.rated_offsets] {
        v.iter().for_each(|x| p.extend_from_slice(&x.to_le_bytes()));
    }
    m.rated_items
        .iter()
        .for_each(|x| p.extend_from_slice(&x.to_le_bytes()));
    write_framed(path, &header, &p)
}

/// Reads a model of either kind.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read; a [`ParseError`] naming the file when
/// it is not a model, is from another version, is truncated or fails its checksum.
pub fn load_any_model(path: &Path) -> Result<AnyModel> {
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

/// Decodes model-file bytes already in memory (for fuzzing and tools).
///
/// # Errors
/// A [`ParseError`] without a path, as [`load_any_model`] gives with one.
pub fn decode_model(bytes: &[u8]) -> Result<AnyModel> {
    decode(bytes).map_err(|msg| ParseError::new(ParseErrorKind::BadBinary(msg)).into())
}

fn wrong_kind(path: &Path, msg: &str) -> Error {
    ParseError::new(ParseErrorKind::BadBinary(msg.to_string()))
        .in_file(path)
        .into()
}

/// Reads a linear model written by [`save_model`].
///
/// # Errors
/// As [`load_any_model`], and a [`ParseError`] when the file holds another kind.
pub fn load_model(path: &Path) -> Result<LinearModel> {
    match load_any_model(path)? {
        AnyModel::Linear(m) => Ok(m),
        AnyModel::Mf(_) => Err(wrong_kind(
            path,
            "a matrix-factorization (`mf`) model, expected a linear model",
        )),
    }
}

/// Reads a matrix-factorization model written by [`save_mf_model`].
///
/// # Errors
/// As [`load_any_model`], and a [`ParseError`] when the file holds another kind.
pub fn load_mf_model(path: &Path) -> Result<MfModel> {
    match load_any_model(path)? {
        AnyModel::Mf(m) => Ok(m),
        AnyModel::Linear(_) => Err(wrong_kind(
            path,
            "a `linear` model, expected a matrix-factorization (`mf`) model",
        )),
    }
}

type Decoded<T> = std::result::Result<T, String>;

fn decode(b: &[u8]) -> Decoded<AnyModel> {
    if b.len() < 16 && !b.is_empty() && MAGIC.starts_with(&b[..b.len().min(8)]) {
        return Err(format!("truncated model file ({} bytes)", b.len()));
    }
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
    let crc_ok = crc32fast::hash(body) == u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    let hlen = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
    if 16 + hlen > body.len() {
        return Err("truncated model file (header cut short)".into());
    }
    let bad_header = |e: serde_json::Error| {
        if crc_ok {
            format!("bad model header: {e}")
        } else {
            "damaged model file (checksum mismatch)".to_string()
        }
    };
    let header: serde_json::Value =
        serde_json::from_slice(&b[16..16 + hlen]).map_err(bad_header)?;
    let payload = &body[16 + hlen..];
    let sized = |expected: Option<usize>| -> Decoded<()> {
        let expected = expected.ok_or("model sizes too large")?;
        if payload.len() < expected {
            return Err(format!(
                "truncated model file ({} of {} bytes)",
                b.len(),
                (16 + hlen).saturating_add(expected).saturating_add(4)
            ));
        }
        if payload.len() > expected {
            return Err("damaged model file (trailing bytes)".into());
        }
        if !crc_ok {
            return Err("damaged model file (checksum mismatch)".into());
        }
        Ok(())
    };
    match header.get("kind").and_then(|k| k.as_str()) {
        Some("linear") => {
            let h: Header = serde_json::from_value(header).map_err(bad_header)?;
            let n =
                usize::try_from(h.n_features).map_err(|_| "feature count too large".to_string())?;
            sized(n.checked_add(1).and_then(|m| m.checked_mul(4)))?;
            let mut w = f32s(payload);
            if w.iter().any(|v| !v.is_finite()) {
                return Err("damaged model file (non-finite weight)".into());
            }
            let bias = w.pop().expect("bias present");
            let classes = h.classes;
            if !(classes.negative.is_finite()
                && classes.positive.is_finite()
                && classes.negative != classes.positive)
                || h.index_base == IndexBase::Auto
            {
                return Err("bad model header: classes or index base".into());
            }
            Ok(AnyModel::Linear(LinearModel {
                loss: h.loss,
                weights: w,
                bias,
                meta: h.meta,
                index_base: h.index_base,
                classes,
            }))
        }
        Some("mf") => decode_mf(
            serde_json::from_value(header).map_err(bad_header)?,
            payload,
            sized,
        ),
        Some(other) => Err(format!("a `{other}` model, which this wildsgd cannot read")),
        None => Err(if crc_ok {
            "bad model header: no `kind`".into()
        } else {
            "damaged model file (checksum mismatch)".into()
        }),
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

fn decode_mf(
    h: MfHeader,
    payload: &[u8],
    sized: impl Fn(Option<usize>) -> Decoded<()>,
) -> Decoded<AnyModel> {
    let big = |v: u64| usize::try_from(v).map_err(|_| "model sizes too large".to_string());
    let (k, nu, ni, nr) = (big(h.rank)?, big(h.users)?, big(h.items)?, big(h.rated)?);
    if k == 0 {
        return Err("bad model header: rank 0".into());
    }
    let floats = nu
        .checked_add(ni)
        .and_then(|s| s.checked_add(nu.checked_mul(k)?))
        .and_then(|s| s.checked_add(ni.checked_mul(k)?));
    let longs = nu
        .checked_add(ni)
        .and_then(|s| s.checked_add(nu.checked_add(1)?));
    let size = floats
        .and_then(|f| f.checked_mul(4))
        .and_then(|f| f.checked_add(longs?.checked_mul(8)?))
        .and_then(|s| s.checked_add(nr.checked_mul(4)?));
    sized(size)?;
    let floats = floats.expect("sized checked it");
    let f = f32s(&payload[..4 * floats]);
    // Trained parameters are in standardized units, of order 1; far larger values can
    // only come from tampering and could overflow a prediction to inf − inf.
    if f.iter()
        .any(|v| !v.is_finite() || v.abs() > crate::mf::MAX_PARAM)
        || ![h.mean, h.scale, h.min_rating, h.max_rating]
            .iter()
            .all(|v| v.is_finite())
    {
        return Err("damaged model file (non-finite or out-of-range parameter)".into());
    }
    let mut rest = &payload[4 * floats..];
    let mut u64s = |n: usize| {
        let (a, r) = rest.split_at(8 * n);
        rest = r;
        a.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect::<Vec<u64>>()
    };
    let user_ids = u64s(nu);
    let item_ids = u64s(ni);
    let rated_offsets = u64s(nu + 1);
    let rated_items: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if !(h.min_rating <= h.max_rating && h.scale > 0.0) {
        return Err("bad model header: rating range or scale out of order".into());
    }
    let offsets_ok = rated_offsets.first() == Some(&0)
        && rated_offsets.last() == Some(&(nr as u64))
        && rated_offsets.windows(2).all(|w| w[0] <= w[1]);
    // Each user's rated items strictly increasing (recommend binary-searches them).
    let items_ok = offsets_ok
        && rated_offsets.windows(2).all(|w| {
            let list = &rated_items[w[0] as usize..w[1] as usize];
            list.windows(2).all(|p| p[0] < p[1]) && list.iter().all(|&i| (i as usize) < ni)
        });
    if !items_ok {
        return Err("damaged model file (bad rated-items index)".into());
    }
    let unique =
        |ids: &[u64]| ids.iter().collect::<std::collections::HashSet<_>>().len() == ids.len();
    if !unique(&user_ids) || !unique(&item_ids) {
        return Err("damaged model file (duplicate user or item id)".into());
    }
    let (ub, rest) = f.split_at(nu);
    let (ib, rest) = rest.split_at(ni);
    let (uf, itf) = rest.split_at(nu * k);
    Ok(AnyModel::Mf(MfModel {
        rank: k,
        mean: h.mean,
        scale: h.scale,
        min_rating: h.min_rating,
        max_rating: h.max_rating,
        user_bias: ub.to_vec(),
        item_bias: ib.to_vec(),
        user_factors: uf.to_vec(),
        item_factors: itf.to_vec(),
        user_ids,
        item_ids,
        rated_offsets,
        rated_items,
        meta: h.meta,
    }))
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
            index_base: IndexBase::Zero,
            classes: Classes {
                negative: 2.0,
                positive: 4.0,
            },
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
                match cut {
                    0 => "not a wildsgd model",
                    1..16 => "truncated model file",
                    _ => "",
                },
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

    #[test]
    fn mf_round_trip_and_kind_checks() {
        let m = MfModel {
            rank: 2,
            mean: 3.5,
            scale: 1.1,
            min_rating: 1.0,
            max_rating: 5.0,
            user_bias: vec![0.1, -0.2],
            item_bias: vec![0.3, 0.0, -0.5],
            user_factors: vec![1.0, 2.0, 3.0, 4.0],
            item_factors: vec![0.5, 0.25, -1.0, 2.0, 0.0, 1.5],
            user_ids: vec![10, 7],
            item_ids: vec![100, 200, 300],
            rated_offsets: vec![0, 2, 3],
            rated_items: vec![0, 2, 1],
            meta: serde_json::json!({"optimizer": "adagrad"}),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.wsgd");
        save_mf_model(&m, &p).unwrap();
        assert_eq!(load_mf_model(&p).unwrap(), m);
        let e = load_model(&p).unwrap_err().to_string();
        assert!(
            e.contains("m.wsgd") && e.contains("expected a linear model"),
            "{e}"
        );
        let good = std::fs::read(&p).unwrap();
        for cut in [20, good.len() / 2, good.len() - 5, good.len() - 1] {
            std::fs::write(&p, &good[..cut]).unwrap();
            let e = load_mf_model(&p).unwrap_err();
            assert!(e.is_bad_input() && e.to_string().contains("m.wsgd"));
        }
        let mut flipped = good.clone();
        let k = good.len() - 10;
        flipped[k] ^= 0x40;
        std::fs::write(&p, &flipped).unwrap();
        assert!(
            load_mf_model(&p)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        // Well-formed files with impossible contents (a checksum is no proof of intent).
        for (bad, want) in [
            (
                MfModel {
                    min_rating: 6.0,
                    ..m.clone()
                },
                "rating range",
            ),
            (
                MfModel {
                    user_ids: vec![7, 7],
                    ..m.clone()
                },
                "duplicate",
            ),
            (
                MfModel {
                    rated_items: vec![2, 0, 1],
                    ..m.clone()
                },
                "rated-items",
            ),
        ] {
            save_mf_model(&bad, &p).unwrap();
            let e = load_mf_model(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let lin = dir.path().join("l.wsgd");
        save_model(&model(), &lin).unwrap();
        let e = load_mf_model(&lin).unwrap_err().to_string();
        assert!(e.contains("expected a matrix-factorization"), "{e}");
    }
}
