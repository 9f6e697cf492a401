//! Property tests: writing then parsing gives the same data; random corruption of a
//! valid file gives an error on the corrupted line; arbitrary bytes never panic.

use proptest::prelude::*;
use sprs::CsMatI;
use wildsgd::data::{
    IndexBase, LibsvmOptions, RatingsDataset, RatingsLayout, SparseDataset, libsvm, ratings,
};

fn sparse_strategy() -> impl Strategy<Value = SparseDataset> {
    (1usize..40, 1usize..60).prop_flat_map(|(rows, cols)| {
        let row = (
            prop::collection::btree_map(
                0..cols as u32,
                any::<f32>().prop_filter("finite", |v| v.is_finite()),
                0..cols.min(12),
            ),
            any::<bool>(),
        );
        prop::collection::vec(row, rows).prop_map(move |rs| {
            let mut indptr = vec![0usize];
            let (mut idx, mut val, mut y) = (vec![], vec![], vec![]);
            for (m, pos) in rs {
                for (i, v) in m {
                    idx.push(i);
                    val.push(v);
                }
                indptr.push(idx.len());
                y.push(if pos { 1.0 } else { -1.0 });
            }
            let x = CsMatI::try_new((indptr.len() - 1, cols), indptr, idx, val).unwrap();
            SparseDataset::new(x, y, IndexBase::One).unwrap()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn libsvm_write_then_parse_is_identity(d in sparse_strategy(), zero in any::<bool>()) {
        let mut text = Vec::new();
        libsvm::write(&d, zero, &mut text).unwrap();
        let opts = LibsvmOptions {
            index_base: if zero { IndexBase::Zero } else { IndexBase::One },
            n_features: Some(d.cols()),
            ..Default::default()
        };
        let back = libsvm::parse(&text, &opts).unwrap();
        prop_assert_eq!(back.x(), d.x());
        prop_assert_eq!(back.y(), d.y());
    }

    #[test]
    fn ratings_write_then_parse_is_identity(
        triplets in prop::collection::vec((0u64..50, 0u64..1_000_000_000_000, -1e6f32..1e6), 1..200)
    ) {
        let mut users = Vec::new();
        let mut items = Vec::new();
        let mut uid: Vec<u64> = Vec::new();
        let mut iid: Vec<u64> = Vec::new();
        for &(u, i, _) in &triplets {
            let du = uid.iter().position(|&x| x == u).unwrap_or_else(|| { uid.push(u); uid.len() - 1 });
            let di = iid.iter().position(|&x| x == i).unwrap_or_else(|| { iid.push(i); iid.len() - 1 });
            users.push(du as u32);
            items.push(di as u32);
        }
        let d = RatingsDataset {
            users, items, ratings: triplets.iter().map(|t| t.2).collect(),
            user_ids: uid, item_ids: iid, layout: RatingsLayout::Tab, implicit: false, header: false,
        };
        let mut text = Vec::new();
        ratings::write(&d, &mut text).unwrap();
        let back = ratings::parse(&text, &Default::default()).unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn corrupting_one_line_is_reported_on_that_line(
        d in sparse_strategy(),
        line_pick in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![
            "x:1", "1:abc", "nan", "-5:1", "7", "2:inf", "1:", "qid:q", "3:1e99", "\u{fffd}", "2.5",
        ]),
        replace_label in any::<bool>(),
    ) {
        let mut text = Vec::new();
        libsvm::write(&d, false, &mut text).unwrap();
        let mut lines: Vec<String> = String::from_utf8(text).unwrap().lines().map(String::from).collect();
        let k = line_pick.index(lines.len());
        let mut toks: Vec<String> = lines[k].split(' ').map(String::from).collect();
        if replace_label || toks.len() == 1 {
            // A bad label, or a bad feature appended after the label.
            if ["nan", "7", "2.5", "\u{fffd}"].contains(&bad) { toks[0] = bad.to_string(); } else { toks.push(bad.to_string()); }
        } else {
            let j = 1 + line_pick.index(toks.len() - 1);
            toks[j] = bad.to_string();
        }
        lines[k] = toks.join(" ");
        let text = lines.join("\n");
        let err = libsvm::parse(text.as_bytes(), &LibsvmOptions::default());
        // A number as a label is a class of its own: the file is bad only with three
        // classes, reported where the third one first appears.
        if ["7", "2.5"].contains(&toks[0].as_str()) {
            let mut seen: Vec<&str> = Vec::new();
            let third = lines.iter().position(|l| {
                let lab = l.split(' ').next().unwrap_or("");
                if !seen.contains(&lab) { seen.push(lab); }
                seen.len() == 3
            });
            match (third, err) {
                (None, Ok(back)) => prop_assert_eq!(back.rows(), lines.len()),
                (Some(t), Err(wildsgd::Error::Parse(p))) => prop_assert_eq!(p.line, Some(t as u64 + 1), "{}", p),
                (t, other) => prop_assert!(false, "third class at {:?}, got {:?}", t, other.map(|d| d.rows())),
            }
            return Ok(());
        }
        match err {
            Err(wildsgd::Error::Parse(p)) => prop_assert_eq!(p.line, Some(k as u64 + 1), "{}", p),
            other => prop_assert!(false, "expected a parse error on line {}, got {:?}", k + 1, other.map(|d| d.rows())),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = wildsgd::data::parse_bytes(&bytes, &Default::default());
        let _ = libsvm::parse(&bytes, &LibsvmOptions::default());
        let _ = ratings::parse(&bytes, &Default::default());
    }

    #[test]
    fn libsvm_like_noise_never_panics(
        lines in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![
            "+1", "-1", "0", "1", "1:1", "0:2", "3:0.5", ":", "1:", ":1", "qid:1", "#", " ", "\t", "\r", "4:-0", "99999999999:1", "2:1e-45",
        ]), 0..8), 0..20)
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let _ = wildsgd::data::parse_bytes(text.as_bytes(), &Default::default());
    }
}

/// A small trained-looking mf model written to a file, as bytes.
fn mf_model_bytes(dir: &std::path::Path) -> Vec<u8> {
    let m = wildsgd::mf::MfModel {
        rank: 3,
        mean: 3.5,
        scale: 1.1,
        min_rating: 1.0,
        max_rating: 5.0,
        user_bias: vec![0.1, -0.2, 0.0],
        item_bias: vec![0.3, -0.5],
        user_factors: vec![0.1, 0.2, 0.3, -0.1, 0.0, 0.5, 0.2, 0.2, 0.2],
        item_factors: vec![1.0, -1.0, 0.5, 0.0, 0.25, -0.75],
        user_ids: vec![10, 7, 3],
        item_ids: vec![100, 200],
        rated_offsets: vec![0, 1, 3, 3],
        rated_items: vec![1, 0, 1],
        meta: serde_json::json!({"optimizer": "adagrad"}),
    };
    let p = dir.join("m.wsgd");
    wildsgd::model::save_mf_model(&m, &p).unwrap();
    std::fs::read(&p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any byte of an mf model file changed, with its checksum recomputed so that the
    /// decoder's own checks are what stands between the bytes and the model: loading
    /// never panics, and a model that loads predicts and recommends without panicking.
    #[test]
    fn tampered_mf_model_files_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = mf_model_bytes(dir.path());
        let body = b.len() - 4;
        let k = pos.index(body);
        if cut {
            b.truncate(k.max(16));
            let crc = crc32fast::hash(&b);
            b.extend_from_slice(&crc.to_le_bytes());
        } else {
            b[k] = byte;
            let crc = crc32fast::hash(&b[..body]);
            b[body..].copy_from_slice(&crc.to_le_bytes());
        }
        let p = dir.path().join("t.wsgd");
        std::fs::write(&p, &b).unwrap();
        if let Ok(m) = wildsgd::model::load_mf_model(&p) {
            for u in 0..m.n_users() as u32 {
                for i in 0..m.n_items() as u32 {
                    prop_assert!(m.predict_dense(Some(u), Some(i)).is_finite());
                }
                let _ = m.recommend(u, 5);
            }
        }
    }
}
