//! Model file decoder (`decode_model`, linear and matrix-factorization models share the
//! frame): never panics; an accepted model is usable: finite parameters and finite
//! predictions, recommendations within the rating range. Each input is decoded as
//! given and again with its CRC-32 recomputed, so mutations get past the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::IndexBase;
use wildsgd::model::{AnyModel, decode_model};
use wildsgd_fuzz::{report, with_fixed_crc};

fn describe(m: &AnyModel) -> String {
    match m {
        AnyModel::Linear(m) => format!("linear {:?}, {} weights", m.loss, m.weights.len()),
        AnyModel::Mf(m) => format!(
            "mf rank {}, {} users, {} items, {} rated",
            m.rank,
            m.n_users(),
            m.n_items(),
            m.rated_items.len()
        ),
    }
}

fn check(m: &AnyModel) {
    match m {
        AnyModel::Linear(m) => {
            assert!(m.weights.iter().all(|w| w.is_finite()), "non-finite weight");
            assert!(m.bias.is_finite(), "non-finite bias");
            let c = m.classes;
            assert!(
                c.negative.is_finite() && c.positive.is_finite() && c.negative != c.positive,
                "classes {c:?} are not two distinct finite values"
            );
            assert_ne!(m.index_base, IndexBase::Auto, "index base is resolved");
            let z = m.score(&[], &[]);
            assert!(z.is_finite(), "score of the empty row {z} not finite");
        }
        AnyModel::Mf(m) => {
            let (nu, ni, k) = (m.n_users(), m.n_items(), m.rank);
            assert!(k > 0, "rank 0");
            assert_eq!(m.user_bias.len(), nu);
            assert_eq!(m.item_bias.len(), ni);
            assert_eq!(Some(m.user_factors.len()), nu.checked_mul(k));
            assert_eq!(Some(m.item_factors.len()), ni.checked_mul(k));
            assert_eq!(m.rated_offsets.len(), nu + 1);
            assert!(m.min_rating <= m.max_rating, "rating range out of order");
            let in_range = |v: f32| v.is_finite() && m.min_rating <= v && v <= m.max_rating;
            let p = m.predict_dense(None, None);
            assert!(in_range(p), "prediction for an unknown pair {p} out of range");
            if nu > 0 && ni > 0 {
                for (u, i) in [(0, 0), (nu - 1, ni - 1)] {
                    let p = m.predict_dense(Some(u as u32), Some(i as u32));
                    assert!(in_range(p), "prediction ({u}, {i}) = {p} out of range");
                }
            }
            if nu > 0 {
                for u in [0, nu - 1] {
                    let recs = m.recommend(u as u32, 5);
                    assert!(recs.len() <= 5.min(ni), "{} recommendations", recs.len());
                    for r in &recs {
                        assert!(in_range(r.score), "recommended score {} out of range", r.score);
                        assert!(m.item_ids.contains(&r.item), "recommended unknown item {}", r.item);
                    }
                }
            }
        }
    }
}

fn decode(bytes: &[u8], what: &str) {
    let r = decode_model(bytes);
    report(what, &r, describe);
    if let Ok(m) = &r {
        check(m);
    }
}

fuzz_target!(|data: &[u8]| {
    decode(data, "model");
    if let Some(fixed) = with_fixed_crc(data, 0)
        && fixed[..] != data[..]
    {
        decode(&fixed, "model crc fixed");
    }
});
