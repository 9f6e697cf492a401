//! `train`, `predict`, `eval` and `compare` through the real binary.

use std::fs;

use serde_json::Value;

use crate::util::{arg, assert_bad_input, bundled, stderr, stdout, wildsgd};

#[test]
fn train_report_predict_eval_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("a9a.model");
    let report = dir.path().join("report.jsonl");
    let (train, test) = (arg(&bundled("a9a/a9a")), arg(&bundled("a9a/a9a.t")));
    let out = wildsgd([
        "train",
        "--data",
        &train,
        "--test",
        &test,
        "--epochs",
        "3",
        "--optimizer",
        "adagrad",
        "--output",
        &arg(&model),
        "--report",
        &arg(&report),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("test loss"), "{}", stdout(&out));
    let lines: Vec<Value> = fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (k, e) in lines[..3].iter().enumerate() {
        assert_eq!(e["event"], "epoch");
        assert_eq!(e["epoch"], k + 1);
        for key in [
            "seconds",
            "lr",
            "train_loss",
            "test_loss",
            "test_accuracy",
            "test_auc",
            "updates",
            "nnz",
            "nnz_per_sec",
        ] {
            assert!(e[key].is_number(), "epoch event lacks {key}: {e}");
        }
    }
    let done = &lines[3];
    assert_eq!(done["event"], "done");
    assert_eq!(done["optimizer"], "adagrad");
    assert_eq!(done["model"], "logistic");
    assert_eq!(done["epochs"], 3);
    assert_eq!(done["stopped_early"], false);

    let ev = wildsgd(["eval", "--model", &arg(&model), "--data", &test, "--json"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let ev: Value = serde_json::from_str(stdout(&ev).trim()).unwrap();
    assert!((ev["test_loss"].as_f64().unwrap() - done["test_loss"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(ev["test_accuracy"], done["test_accuracy"]);

    let preds = dir.path().join("preds.txt");
    let pr = wildsgd([
        "predict",
        "--model",
        &arg(&model),
        "--data",
        &test,
        "--output",
        &arg(&preds),
    ]);
    assert!(pr.status.success(), "{}", stderr(&pr));
    let p: Vec<f64> = fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(p.len(), 16281);
    assert!(p.iter().all(|&v| (0.0..=1.0).contains(&v)), "probabilities");
    let labels: Vec<f64> = fs::read_to_string(bundled("a9a/a9a.t"))
        .unwrap()
        .lines()
        .map(|l| if l.starts_with("+1") { 1.0 } else { -1.0 })
        .collect();
    let acc = p
        .iter()
        .zip(&labels)
        .filter(|(p, y)| (**p > 0.5) == (**y > 0.0))
        .count() as f64
        / p.len() as f64;
    assert!((acc - ev["test_accuracy"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn bad_model_files_exit_2_and_keep_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let test = arg(&bundled("a9a/a9a.t"));
    let m = dir.path().join("m.model");
    let out = wildsgd([
        "train",
        "--data",
        &test,
        "--epochs",
        "1",
        "--output",
        &arg(&m),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = fs::read(&m).unwrap();
    let preds = dir.path().join("p.txt");
    fs::write(&preds, "keep me").unwrap();
    for (bytes, want) in [
        (good[..good.len() / 2].to_vec(), "truncated"),
        (
            {
                let mut b = good.clone();
                b[8] = 9;
                b
            },
            "version 9",
        ),
        (
            {
                let mut b = good.clone();
                let k = b.len() - 10;
                b[k] ^= 4;
                b
            },
            "checksum",
        ),
        (b"not a model".to_vec(), "not a wildsgd model"),
    ] {
        let bad = dir.path().join("bad.model");
        fs::write(&bad, &bytes).unwrap();
        for cmd in ["predict", "eval"] {
            let mut args = vec![cmd, "--model", bad.to_str().unwrap(), "--data", &test];
            let p = arg(&preds);
            if cmd == "predict" {
                args.extend(["--output", &p]);
            }
            let err = assert_bad_input(&wildsgd(&args));
            assert!(
                err.contains("bad.model") && err.contains(want),
                "{cmd}: {err}"
            );
        }
        assert_eq!(fs::read_to_string(&preds).unwrap(), "keep me");
    }
    // A failed training run leaves an existing model untouched.
    let before = fs::read(&m).unwrap();
    let err = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &test,
        "--lr",
        "-1",
        "--output",
        &arg(&m),
    ]));
    assert!(err.contains("lr"), "{err}");
    assert_eq!(fs::read(&m).unwrap(), before);
}

#[test]
fn bad_training_parameters_exit_2() {
    let data = arg(&bundled("a9a/a9a.t"));
    for (args, want) in [
        (vec!["--epochs", "0"], "epochs"),
        (vec!["--early-stop", "2"], "early-stop"),
        (vec!["--holdout", "1.5"], "holdout"),
        (vec!["--optimizer", "adamm"], "adamm"),
        (vec!["--l2", "-1"], "l2"),
        (vec!["--C", "0"], "C"),
        (vec!["--batch-size", "half"], "batch-size"),
        (
            vec!["--lr-schedule", "step", "--lr-factor", "2"],
            "lr-factor",
        ),
        (vec!["--grad-noise", "nan"], "grad-noise"),
        (vec!["--scheme", "delay-tolerant"], "adagrad"),
        (
            vec![
                "--scheme",
                "delay-tolerant",
                "--optimizer",
                "adagrad",
                "--l1",
                "0.1",
            ],
            "L2 only",
        ),
        (vec!["--threads", "0"], "threads"),
        (vec!["--replicate", "some"], "replicate"),
        (vec!["--sync-every", "0"], "sync-every"),
        (vec!["--scheme", "wild"], "scheme"),
        (vec!["--delay", "5", "--batch-size", "4"], "delay"),
    ] {
        let mut a = vec!["train", "--data", &data, "-q"];
        a.extend(args.iter().copied());
        let err = assert_bad_input(&wildsgd(&a));
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let err = assert_bad_input(&wildsgd([
        "train",
        "--data",
        &arg(&bundled("msweb/interactions.tsv")),
        "-q",
    ]));
    assert!(err.contains("implicit feedback"), "{err}");
}

#[test]
fn holdout_early_stop_and_report_to_stdout() {
    let out = wildsgd([
        "train",
        "--data",
        &arg(&bundled("a9a/a9a.t")),
        "--holdout",
        "0.25",
        "--early-stop",
        "2",
        "--epochs",
        "6",
        "--report",
        "-",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert!(done["test_loss"].is_number());
    assert!(
        stderr(&out).contains("test loss"),
        "summary goes to stderr when the report takes stdout"
    );
}

#[test]
fn compare_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("opt.svg");
    let out = wildsgd([
        "compare",
        "--data",
        &arg(&bundled("a9a/a9a")),
        "--test",
        &arg(&bundled("a9a/a9a.t")),
        "--optimizers",
        "sgd,adam,ftrl",
        "--epochs",
        "2",
        "--plot",
        &arg(&svg),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in ["sgd", "adam", "ftrl"] {
        assert!(text.contains(name), "{text}");
    }
    let chart = fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("adam (lr") && chart.contains("<polyline"),
        "{}",
        &chart[..200]
    );
    let png = dir.path().join("opt.png");
    let out = wildsgd([
        "compare",
        "--data",
        &arg(&bundled("a9a/a9a.t")),
        "--optimizers",
        "sgd,dual-cd",
        "--epochs",
        "1",
        "--versus",
        "seconds",
        "--plot",
        &arg(&png),
        "-q",
    ]);
    assert!(stdout(&out).contains("dual-cd"), "{}", stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n"),
        "a PNG file"
    );
    let err = assert_bad_input(&wildsgd([
        "compare",
        "--data",
        &arg(&bundled("a9a/a9a.t")),
        "--optimizers",
        "sgd",
        "--plot",
        "x.gif",
        "-q",
    ]));
    assert!(err.contains(".svg"), "{err}");
}

#[test]
fn bench_prints_table_csv_events_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, svg, rep) = (
        dir.path().join("b.csv"),
        dir.path().join("b.svg"),
        dir.path().join("b.jsonl"),
    );
    let out = wildsgd([
        "bench",
        "--data",
        &arg(&bundled("a9a/a9a")),
        "--test",
        &arg(&bundled("a9a/a9a.t")),
        "--threads",
        "1,2,3",
        "--schemes",
        "hogwild,locked",
        "--repeat",
        "2",
        "--epochs",
        "1",
        "--csv",
        &arg(&csv),
        "--plot",
        &arg(&svg),
        "--report",
        &arg(&rep),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("sequential") && table.contains("hogwild") && table.contains("locked"),
        "{table}"
    );
    let lines: Vec<Value> = fs::read_to_string(&rep)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1 + 2 * 3,
        "sequential + 2 schemes x 3 thread counts"
    );
    for e in &lines {
        assert_eq!(e["event"], "bench");
        for key in [
            "epoch_seconds_median",
            "speedup_vs_sequential",
            "nnz_per_sec",
            "test_loss",
            "repeat",
        ] {
            assert!(e[key].is_number(), "{key} in {e}");
        }
        assert!(e["speedup_vs_1_thread"].is_number());
        let over = e["threads"].as_u64().unwrap() as usize > wildsgd::engine::cores();
        assert_eq!(e["oversubscribed"], over);
    }
    assert_eq!(fs::read_to_string(&csv).unwrap().lines().count(), 1 + 7);
    assert!(fs::read_to_string(&svg).unwrap().contains("hogwild"));
}

#[test]
fn distributed_flags_say_what_they_need() {
    let train = arg(&bundled("a9a/a9a.t"));
    // Without the feature, `--distributed` names the build that has it.
    #[cfg(not(feature = "distributed"))]
    {
        let o = wildsgd(["train", "--data", &train, "--distributed", "average", "-q"]);
        let err = assert_bad_input(&o);
        assert!(err.contains("--features distributed"), "{err}");
    }
    // The schemes' own settings apply only to runs across processes.
    let o = wildsgd(["train", "--data", &train, "--n-push", "8", "-q"]);
    let err = assert_bad_input(&o);
    assert!(
        err.contains("--n-push") && err.contains("--distributed"),
        "{err}"
    );
    let o = wildsgd(["train", "--data", &train, "--distributed", "ring", "-q"]);
    let err = assert_bad_input(&o);
    assert!(
        err.contains("'ring'") && err.contains("--distributed"),
        "{err}"
    );
}
