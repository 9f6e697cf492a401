//! Matrix factorization: quality on MovieLens and FilmTrust, every scheme against the
//! sequential reference, rating-scale invariance of the defaults, model files and the
//! `predict` / `eval` / `recommend` / `bench` commands.

use serde_json::Value;
use wildsgd::data::{RatingsDataset, RatingsOptions, ratings};
use wildsgd::engine::{MfEngine, MfScheme as Scheme};
use wildsgd::mf::{self, MfConfig, MfL2Form, MfOptimizer};

use crate::util::{arg, assert_bad_input, shared, stdout, wildsgd};

/// Low-rank ratings from the generator (always available; no shared data needed).
fn generated(users: usize, items: usize, density: f64, seed: u64) -> RatingsDataset {
    let cfg = wildsgd::generate::RatingsGenConfig {
        users,
        items,
        rank: 5,
        density,
        noise: 0.3,
        seed,
    };
    let mut buf = Vec::new();
    cfg.write(&mut buf, |_| {}).unwrap().unwrap();
    ratings::parse(&buf, &RatingsOptions::default()).unwrap()
}

fn load(rel: &str) -> Option<RatingsDataset> {
    let p = shared(rel)?;
    Some(ratings::parse(&std::fs::read(p).unwrap(), &RatingsOptions::default()).unwrap())
}

fn engine(scheme: Scheme, threads: usize) -> MfEngine {
    MfEngine {
        scheme,
        threads,
        ..MfEngine::default()
    }
}

fn done_event(out: &str) -> Value {
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event"] == "done")
        .expect("a done event")
}

#[test]
fn movielens_u1_defaults_reach_the_published_rmse() {
    let (Some(base), Some(test)) = (
        shared("movielens-100k/u1.base"),
        shared("movielens-100k/u1.test"),
    ) else {
        return;
    };
    // The bar: exactly these flags, nothing else (default scheme: hogwild).
    for extra in [&[][..], &["--scheme", "block"][..]] {
        let mut args = vec![
            "train".to_string(),
            "--data".into(),
            arg(&base),
            "--test".into(),
            arg(&test),
            "--model".into(),
            "mf".into(),
            "--rank".into(),
            "32".into(),
            "--epochs".into(),
            "20".into(),
            "--quiet".into(),
            "--report".into(),
            "-".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = wildsgd(&args);
        assert!(o.status.success(), "{}", crate::util::stderr(&o));
        let done = done_event(&stdout(&o));
        let rmse = done["test_rmse"].as_f64().unwrap();
        assert!(rmse <= 0.92, "{extra:?}: test RMSE {rmse}");
        assert!(done["test_mae"].as_f64().unwrap() < 0.74);
        assert_eq!(done["model"], "mf");
        assert_eq!(done["rank"], 32);
    }
}

#[test]
fn defaults_hold_across_rating_scales() {
    // MovieLens' 1–5 stars mapped linearly onto 0.5–4 and −10–10: the standardized
    // training sees the same numbers, so the RMSE scales with the range.
    let (Some(train), Some(test)) = (
        load("movielens-100k/u1.base"),
        load("movielens-100k/u1.test"),
    ) else {
        return;
    };
    let cfg = MfConfig {
        epochs: 10,
        engine: engine(Scheme::Sequential, 1),
        ..MfConfig::default()
    };
    let base = mf::fit(&train, Some(&test), &cfg, |_| {})
        .unwrap()
        .done
        .test_rmse
        .unwrap();
    assert!(base < 0.93, "{base}");
    for (lo, hi) in [(0.5f32, 4.0f32), (-10.0, 10.0)] {
        let a = (hi - lo) / 4.0;
        let map = |d: &RatingsDataset| RatingsDataset {
            ratings: d.ratings.iter().map(|r| lo + (r - 1.0) * a).collect(),
            ..d.clone()
        };
        let r = mf::fit(&map(&train), Some(&map(&test)), &cfg, |_| {})
            .unwrap()
            .done
            .test_rmse
            .unwrap();
        assert!(
            (r / f64::from(a) - base).abs() < 0.002,
            "scale {lo}..{hi}: {r} (= {} in stars) vs {base}",
            r / f64::from(a)
        );
    }
    // FilmTrust is natively on 0.5–4 (half stars): the README's run, `--holdout 0.2`
    // with the default seed and 20 epochs (sequential here, for repeatability).
    if let Some(ft) = load("filmtrust/ratings.txt") {
        let cfg = MfConfig { epochs: 20, ..cfg };
        let (tr, va) = ft.split_holdout(0.2, cfg.seed).unwrap();
        let r = mf::fit(&tr, Some(&va), &cfg, |_| {})
            .unwrap()
            .done
            .test_rmse
            .unwrap();
        assert!(r < 0.80, "FilmTrust RMSE {r}");
    }
}

#[test]
fn every_scheme_matches_the_sequential_reference() {
    let all = generated(600, 300, 0.1, 5);
    let (train, test) = all.split_holdout(0.2, 2).unwrap();
    let fit = |scheme, threads, rule| {
        let cfg = MfConfig {
            epochs: 20,
            optimizer: rule,
            engine: engine(scheme, threads),
            ..MfConfig::default()
        };
        mf::fit(&train, Some(&test), &cfg, |_| {}).unwrap()
    };
    for rule in [
        MfOptimizer::AdaGrad,
        MfOptimizer::Sgd,
        MfOptimizer::from_name("rmsprop").unwrap(),
    ] {
        let seq = fit(Scheme::Sequential, 1, rule);
        let r0 = seq.done.test_rmse.unwrap();
        // Mean predictor: the standard deviation of the test ratings.
        let m = test.ratings.iter().map(|&r| f64::from(r)).sum::<f64>() / test.len() as f64;
        let sd = (test
            .ratings
            .iter()
            .map(|&r| (f64::from(r) - m).powi(2))
            .sum::<f64>()
            / test.len() as f64)
            .sqrt();
        assert!(r0 < 0.6 * sd, "{rule:?}: {r0} vs mean predictor {sd}");
        // One hogwild thread walks the same order: the same model bit for bit.
        let h1 = fit(Scheme::Hogwild, 1, rule);
        let (a, b) = (&h1.model, &seq.model);
        assert!(
            a.user_factors == b.user_factors
                && a.item_factors == b.item_factors
                && a.user_bias == b.user_bias
                && a.item_bias == b.item_bias,
            "{rule:?}: one hogwild thread differs from sequential"
        );
        // Three threads on two cores are oversubscribed: correctness only.
        for (s, t) in [
            (Scheme::Hogwild, 2),
            (Scheme::Hogwild, 3),
            (Scheme::Locked, 2),
            (Scheme::Block, 1),
            (Scheme::Block, 2),
            (Scheme::Block, 3),
        ] {
            let out = fit(s, t, rule);
            let r = out.done.test_rmse.unwrap();
            assert!((r - r0).abs() < 0.01, "{rule:?} {s:?} x{t}: {r} vs {r0}");
            assert_eq!(out.done.threads, t);
            assert_eq!(out.done.blocks.is_some(), s == Scheme::Block);
        }
    }
}

#[test]
fn degree_scaled_l2_and_early_stopping() {
    let all = generated(400, 200, 0.1, 9);
    let (train, test) = all.split_holdout(0.2, 3).unwrap();
    let base = MfConfig {
        epochs: 8,
        engine: engine(Scheme::Sequential, 1),
        ..MfConfig::default()
    };
    let plain = mf::fit(&train, Some(&test), &base, |_| {}).unwrap();
    let degree = mf::fit(
        &train,
        Some(&test),
        &MfConfig {
            l2_form: MfL2Form::Degree,
            ..base.clone()
        },
        |_| {},
    )
    .unwrap();
    let (a, b) = (
        plain.done.test_rmse.unwrap(),
        degree.done.test_rmse.unwrap(),
    );
    assert!(a != b && (a - b).abs() < 0.05, "plain {a} degree {b}");
    // A rate far too high overfits quickly: early stopping keeps the best epoch.
    let cfg = MfConfig {
        epochs: 30,
        lr: Some(0.5),
        l2: Some(0.0),
        early_stop: Some(2),
        ..base
    };
    let (mut epochs_seen, mut max_done) = (0, 0);
    let out = mf::fit(&train, Some(&test), &cfg, |p| match p {
        mf::MfProgress::Epoch(r) => {
            epochs_seen += 1;
            assert_eq!(r.epoch, epochs_seen);
        }
        mf::MfProgress::Ratings { done, .. } => max_done = max_done.max(done),
    })
    .unwrap();
    assert_eq!(epochs_seen, out.epochs.len());
    assert!(max_done <= train.len() + 256);
    let best = out
        .epochs
        .iter()
        .map(|e| e.test_rmse.unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(out.done.stopped_early);
    assert_eq!(out.done.test_rmse, Some(best));
    assert_eq!(out.epochs[out.done.best_epoch - 1].test_rmse, Some(best));
}

#[test]
fn bad_settings_are_refused() {
    let d = generated(50, 40, 0.2, 1);
    let bad = [
        MfConfig {
            rank: 0,
            ..MfConfig::default()
        },
        MfConfig {
            lr: Some(f32::NAN),
            ..MfConfig::default()
        },
        MfConfig {
            l2: Some(-1.0),
            ..MfConfig::default()
        },
        MfConfig {
            early_stop: Some(3),
            ..MfConfig::default()
        },
        MfConfig {
            blocks: 100_000,
            ..MfConfig::default()
        },
        MfConfig {
            engine: engine(Scheme::Block, 1000),
            ..MfConfig::default()
        },
    ];
    for cfg in bad {
        let e = mf::fit(&d, None, &cfg, |_| {}).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
    }
    let empty = RatingsDataset {
        users: vec![],
        items: vec![],
        ratings: vec![],
        ..d.clone()
    };
    assert!(mf::fit(&empty, None, &MfConfig::default(), |_| {}).is_err());
    // Diverging: reported, not a panic and not NaN output.
    let e = mf::fit(
        &d,
        None,
        &MfConfig {
            optimizer: MfOptimizer::Sgd,
            lr: Some(1e6),
            engine: engine(Scheme::Sequential, 1),
            ..MfConfig::default()
        },
        |_| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("diverged") || e.to_string().contains("rate"),
        "{e}"
    );
}

#[test]
fn cli_train_predict_eval_recommend() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("r.tsv");
    let o = wildsgd([
        "gen",
        "ratings",
        "--users",
        "300",
        "--items",
        "120",
        "--rank",
        "4",
        "--density",
        "0.2",
        "--seed",
        "4",
        "-q",
        "--output",
        &arg(&data),
    ]);
    assert!(o.status.success());
    let model = dir.path().join("m.wsgd");
    // A ratings file trains mf without --model.
    let o = wildsgd([
        "train",
        "--data",
        &arg(&data),
        "--holdout",
        "0.2",
        "--epochs",
        "5",
        "--scheme",
        "block",
        "--threads",
        "2",
        "--quiet",
        "--report",
        "-",
        "--output",
        &arg(&model),
    ]);
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let out = stdout(&o);
    let epochs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "epoch")
        .collect();
    assert_eq!(epochs.len(), 5);
    for e in &epochs {
        for k in [
            "test_rmse",
            "test_mae",
            "train_rmse",
            "ratings_per_sec",
            "seconds",
        ] {
            assert!(e[k].as_f64().is_some_and(f64::is_finite), "{k} in {e}");
        }
        assert!(e.get("test_loss").is_none());
    }
    let done = done_event(&out);
    assert_eq!(done["scheme"], "block");
    assert_eq!(done["optimizer"], "adagrad");

    // predict: one rating per line, within the training range.
    let o = wildsgd(["predict", "--model", &arg(&model), "--data", &arg(&data)]);
    assert!(o.status.success());
    let n_lines = std::fs::read_to_string(&data).unwrap().lines().count();
    let preds: Vec<f32> = stdout(&o).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(preds.len(), n_lines);
    let d = ratings::parse(&std::fs::read(&data).unwrap(), &RatingsOptions::default()).unwrap();
    let (lo, hi) = d
        .ratings
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &r| (a.min(r), b.max(r)));
    assert!(preds.iter().all(|&p| p >= lo && p <= hi));

    // eval agrees with the library on the same model.
    let o = wildsgd([
        "eval",
        "--model",
        &arg(&model),
        "--data",
        &arg(&data),
        "--json",
    ]);
    assert!(o.status.success());
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let m = wildsgd::model::load_mf_model(&model).unwrap();
    let r = m.evaluate(&d);
    assert!((v["test_rmse"].as_f64().unwrap() - r.rmse).abs() < 1e-9);

    // recommend: n items, none rated by the user in training, best first, original ids.
    let user = m.user_ids[7];
    let o = wildsgd([
        "recommend",
        "--model",
        &arg(&model),
        "--user",
        &user.to_string(),
        "-n",
        "10",
        "--json",
    ]);
    assert!(o.status.success());
    let recs: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 10);
    let u = m.user_index(user).unwrap() as usize;
    let rated: Vec<u64> = m.rated_items
        [m.rated_offsets[u] as usize..m.rated_offsets[u + 1] as usize]
        .iter()
        .map(|&i| m.item_ids[i as usize])
        .collect();
    assert!(!rated.is_empty());
    for r in &recs {
        assert!(!rated.contains(&r["item"].as_u64().unwrap()));
    }
    let scores: Vec<f64> = recs.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    // The best unrated item by the library's own ranking comes first.
    assert_eq!(
        recs[0]["item"].as_u64(),
        Some(m.recommend(u as u32, 1)[0].item)
    );

    // Errors: exit 2, clear message, no panic.
    let e = assert_bad_input(&wildsgd([
        "recommend",
        "--model",
        &arg(&model),
        "--user",
        "999999",
    ]));
    assert!(e.contains("999999") && e.contains("not in"), "{e}");
    let a9a = crate::util::bundled("a9a/a9a.t");
    let e = assert_bad_input(&wildsgd([
        "predict",
        "--model",
        &arg(&model),
        "--data",
        &arg(&a9a),
    ]));
    assert!(e.contains("LIBSVM"), "{e}");
    let e = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&a9a),
        "--model",
        "mf",
        "-q",
    ]));
    assert!(e.contains("ratings file"), "{e}");
    let e = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&data),
        "--model",
        "logistic",
        "-q",
    ]));
    assert!(e.contains("--model mf"), "{e}");
    let e = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&data),
        "--optimizer",
        "adam",
        "--beta1",
        "1.5",
        "-q",
    ]));
    assert!(e.contains("beta1"), "{e}");
    let e = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&a9a),
        "--scheme",
        "block",
        "-q",
    ]));
    assert!(e.contains("matrix factorization"), "{e}");
    let e = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&data),
        "--rank",
        "0",
        "-q",
    ]));
    assert!(e.contains("rank"), "{e}");
    let bytes = std::fs::read(&model).unwrap();
    let cut = dir.path().join("cut.wsgd");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = assert_bad_input(&wildsgd([
        "recommend",
        "--model",
        &arg(&cut),
        "--user",
        &user.to_string(),
    ]));
    assert!(e.contains("cut.wsgd") && e.contains("truncated"), "{e}");
    // A failed run leaves the existing model untouched.
    let o = wildsgd([
        "train",
        "--data",
        &arg(&data),
        "--lr",
        "-1",
        "-q",
        "--output",
        &arg(&model),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&model).unwrap(), bytes);
}

#[test]
fn bench_runs_on_ratings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("r.tsv");
    assert!(
        wildsgd([
            "gen",
            "ratings",
            "--users",
            "200",
            "--items",
            "100",
            "--density",
            "0.2",
            "-q",
            "--output",
            &arg(&data),
        ])
        .status
        .success()
    );
    let csv = dir.path().join("b.csv");
    let o = wildsgd([
        "bench",
        "--data",
        &arg(&data),
        "--threads",
        "1,2",
        "--schemes",
        "hogwild,block,locked",
        "--epochs",
        "2",
        "--repeat",
        "1",
        "-q",
        "--report",
        "-",
        "--csv",
        &arg(&csv),
    ]);
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    for v in &lines {
        assert_eq!(v["event"], "bench");
        assert!(v["ratings_per_sec"].as_f64().unwrap() > 0.0);
        assert!(v["ratings_per_sec_per_thread"].as_f64().unwrap() > 0.0);
        assert!(v["train_rmse"].as_f64().is_some());
    }
    let schemes: Vec<&str> = lines
        .iter()
        .map(|v| v["scheme"].as_str().unwrap())
        .collect();
    assert!(schemes.contains(&"block") && schemes.contains(&"locked"));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("scheme,threads,epoch_seconds_median"));
    // compare: every optimizer by default, test RMSE per epoch on one chart.
    let svg = dir.path().join("c.svg");
    let o = wildsgd([
        "compare",
        "--data",
        &arg(&data),
        "--holdout",
        "0.2",
        "--epochs",
        "3",
        "--plot",
        &arg(&svg),
        "-q",
    ]);
    assert!(o.status.success(), "{}", crate::util::stderr(&o));
    let table = stdout(&o);
    for name in wildsgd::optim::OptimizerKind::NAMES {
        assert!(table.contains(name), "{name} missing: {table}");
    }
    assert!(table.contains("rmse"));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("test RMSE"));
    assert!(text.lines().next().unwrap().contains("ratings_per_sec"));
}
