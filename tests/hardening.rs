//! The cases of the adversarial pass (issue "Hardening"): each ran into a hang, an
//! allocation abort, a silent misparse or lost data before; each must now end in a clear
//! error (exit 2) or the right answer, within a bounded time and under `ulimit -v`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wildsgd::data::{Classes, IndexBase};
use wildsgd::model::{LinearModel, LossKind, load_model, save_model};

use crate::util::{arg, assert_bad_input, bundled, shared, stderr, stdout, wildsgd};

const BIN: &str = env!("CARGO_BIN_EXE_wildsgd");

/// Runs `wildsgd args` (through `sh` with `ulimit -v limit_kb` when given), killing it
/// and failing the test if it runs longer than `secs`.
fn run_bounded(args: &[&str], limit_kb: Option<u64>, secs: u64) -> Output {
    let mut cmd = match limit_kb {
        Some(kb) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -v {kb} && exec \"$0\" \"$@\""))
                .arg(BIN)
                .args(args);
            c
        }
        None => {
            let mut c = Command::new(BIN);
            c.args(args);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wildsgd");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "wildsgd {args:?} ran past {secs} s (a hang); stderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// Asserts exit 2 with `fragment` in a one-line message that is not a panic.
fn refused(out: &Output, fragment: &str) {
    let err = assert_bad_input(out);
    assert!(err.contains(fragment), "expected `{fragment}` in: {err}");
}

#[test]
fn nan_scores_end_in_a_divergence_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = write(dir.path(), "two.libsvm", "+1 1:1 2:1\n-1 2:1\n");
    let d = arg(&d);
    let out = run_bounded(
        &[
            "train",
            "--data",
            &d,
            "--test",
            &d,
            "--model",
            "hinge",
            "--lr",
            "2",
            "--scheme",
            "sequential",
            "--epochs",
            "5",
            "--quiet",
        ],
        None,
        60,
    );
    refused(&out, "training diverged");
}

#[test]
fn diverged_hinge_models_are_never_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = arg(&write(dir.path(), "two.libsvm", "+1 1:1 2:1\n-1 2:1\n"));
    let m = dir.path().join("m.wsgd");
    fs::write(&m, "old").unwrap();
    // lr × L2 = 3: every step flips and doubles the weights, while the hinge loss of
    // huge margins is 0.
    let out = wildsgd([
        "train",
        "--data",
        &d,
        "--model",
        "hinge",
        "--lr",
        "3",
        "--l2",
        "1",
        "--epochs",
        "100",
        "--scheme",
        "sequential",
        // A constant rate and the last iterate: the default per-update decay would
        // bring lr × L2 below 1 after the first step.
        "--lr-schedule",
        "constant",
        "--average",
        "none",
        "--quiet",
        "--output",
        &arg(&m),
    ]);
    refused(&out, "lower the L2 strength");
    assert_eq!(fs::read(&m).unwrap(), b"old");
    // A huge L2 alone (at a constant rate): the message points at L2, not at the
    // learning rate.
    let out = wildsgd([
        "train",
        "--data",
        &d,
        "--l2",
        "1e30",
        // Bottou's per-update rate 1/(λ·t) would tame even this L2 after one step.
        "--lr-schedule",
        "constant",
        "--quiet",
        "--output",
        &arg(&m),
    ]);
    let err = assert_bad_input(&out);
    assert!(
        err.contains("L2 1e30") && err.contains("lower the L2 strength"),
        "{err}"
    );
    assert_eq!(fs::read(&m).unwrap(), b"old");
    // The library refuses to save non-finite weights for any loss.
    let bad = LinearModel {
        loss: LossKind::Logistic,
        weights: vec![f32::NAN],
        bias: 0.0,
        meta: serde_json::Value::Null,
        index_base: IndexBase::One,
        classes: Classes::PLUS_MINUS_ONE,
    };
    assert!(save_model(&bad, &m).is_err());
    assert_eq!(fs::read(&m).unwrap(), b"old");
}

#[test]
fn huge_indices_and_counts_are_errors_within_a_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = arg(&write(
        dir.path(),
        "big.libsvm",
        "+1 1:1\n-1 4294967295:1\n",
    ));
    let mid = arg(&write(dir.path(), "mid.libsvm", "+1 1:1\n-1 100000000:1\n"));
    let small = arg(&write(dir.path(), "s.libsvm", "+1 1:1\n-1 2:1\n"));
    let out_file = arg(&dir.path().join("gen.out"));
    let limit = Some(4_000_000);
    // info works on the used features only.
    let out = run_bounded(&["info", &big, "--json"], limit, 60);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"columns\":4294967295"));
    for args in [
        vec!["train", "--data", &big, "--quiet"],
        vec!["train", "--data", &mid, "--quiet"],
        vec![
            "train",
            "--data",
            &small,
            "--n-features",
            "2000000000",
            "--quiet",
        ],
        vec![
            "gen",
            "sparse",
            "--features",
            "1000000000",
            "--rows",
            "10",
            "--nnz-per-row",
            "5",
            "--output",
            &out_file,
            "--quiet",
        ],
        vec![
            "gen",
            "sparse",
            "--features",
            "1000000000",
            "--rows",
            "10",
            "--nnz-per-row",
            "500000000",
            "--output",
            &out_file,
            "--quiet",
        ],
        vec![
            "gen",
            "ratings",
            "--users",
            "1000000000",
            "--items",
            "1000000000",
            "--output",
            &out_file,
            "--quiet",
        ],
        vec![
            "gen",
            "ratings",
            "--users",
            "100",
            "--items",
            "200000000",
            "--density",
            "1",
            "--rank",
            "1",
            "--output",
            &out_file,
            "--quiet",
        ],
    ] {
        let out = run_bounded(&args, limit, 60);
        let err = assert_bad_input(&out);
        assert!(
            err.contains("memory") || err.contains("must be"),
            "{args:?}: {err}"
        );
    }
    assert!(!Path::new(&out_file).exists());
    // An explicit budget is honoured and named.
    let out = wildsgd(["train", "--data", &mid, "--quiet", "--max-memory", "100M"]);
    refused(&out, "needs 4.1 GB of memory, more than the");
}

#[test]
fn huge_counts_do_not_preallocate() {
    let dir = tempfile::tempdir().unwrap();
    let small = arg(&write(dir.path(), "s.libsvm", "+1 1:1\n-1 2:1\n"));
    // Each would run for a long time (that is what was asked); what matters is that it
    // starts without allocating for all of it: alive after a second, under the limit.
    for args in [
        vec![
            "train",
            "--data",
            &small,
            "--epochs",
            "100000000",
            "--quiet",
            "--threads",
            "1",
        ],
        vec![
            "bench",
            "--data",
            &small,
            "--repeat",
            "1000000000",
            "--quiet",
            "--threads",
            "1",
            "--schemes",
            "sequential",
        ],
    ] {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 4000000 && exec \"$0\" \"$@\"")
            .arg(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let status = child.try_wait().unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(
            status.is_none(),
            "{args:?} ended early: {status:?} {}",
            stderr(&out)
        );
    }
}

#[test]
fn predict_refuses_overflowing_scores() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.wsgd");
    save_model(
        &LinearModel {
            loss: LossKind::Hinge,
            weights: vec![3e38, 3e38],
            bias: 0.0,
            meta: serde_json::Value::Null,
            index_base: IndexBase::One,
            classes: Classes::PLUS_MINUS_ONE,
        },
        &m,
    )
    .unwrap();
    let d = arg(&write(dir.path(), "d.libsvm", "+1 1:0.5\n-1 1:1 2:1\n"));
    let out = wildsgd(["predict", "--model", &arg(&m), "--data", &d]);
    refused(&out, "score for row 2 is not finite");
    assert!(!stdout(&out).contains("NaN") && !stdout(&out).contains("inf"));
    // eval: the same refusal, never a JSON null.
    let out = wildsgd(["eval", "--model", &arg(&m), "--data", &d, "--json"]);
    refused(&out, "not finite");
    assert!(!stdout(&out).contains("null"));
}

#[test]
fn large_finite_scores_give_finite_json() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.wsgd");
    save_model(
        &LinearModel {
            loss: LossKind::Squared,
            weights: vec![1e30],
            bias: 0.0,
            meta: serde_json::Value::Null,
            index_base: IndexBase::One,
            classes: Classes::PLUS_MINUS_ONE,
        },
        &m,
    )
    .unwrap();
    let d = arg(&write(dir.path(), "d.libsvm", "+1 1:1\n-1 1:1\n"));
    let out = wildsgd(["eval", "--model", &arg(&m), "--data", &d, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v["test_loss"].as_f64().unwrap() > 1e59, "{v}");
}

#[test]
fn outputs_that_collide_are_refused_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let text = "+1 1:1\n-1 2:1\n";
    let d = write(dir.path(), "d.libsvm", text);
    let x = write(dir.path(), "x", "keep me");
    let link = dir.path().join("link");
    #[cfg(unix)]
    std::os::unix::fs::symlink("d.libsvm", &link).unwrap();
    let (d, xs) = (arg(&d), arg(&x));
    for args in [
        vec![
            "train", "--data", &d, "--report", &xs, "--output", &xs, "--quiet",
        ],
        vec![
            "bench", "--data", &d, "--csv", &xs, "--report", &xs, "--quiet", "--repeat", "1",
        ],
    ] {
        let out = wildsgd(&args);
        refused(&out, "name the same file");
    }
    for args in [
        vec!["train", "--data", &d, "--output", &d, "--quiet"],
        vec!["train", "--data", &d, "--output", &arg(&link), "--quiet"],
        vec!["predict", "--model", &xs, "--data", &d, "--output", &d],
    ] {
        let out = wildsgd(&args);
        refused(&out, "writing it would destroy the input");
    }
    assert_eq!(fs::read_to_string(&x).unwrap(), "keep me");
    assert_eq!(
        fs::read_to_string(dir.path().join("d.libsvm")).unwrap(),
        text
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn outputs_go_through_links_and_into_special_files() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = arg(&write(dir.path(), "d.libsvm", "+1 1:1\n-1 2:1\n"));
    let real = dir.path().join("model.wsgd");
    let link = dir.path().join("latest.wsgd");
    std::os::unix::fs::symlink("model.wsgd", &link).unwrap();
    let out = wildsgd(["train", "--data", &d, "--quiet", "--output", &arg(&link)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    load_model(&real).unwrap();
    // `--output /dev/null` discards the model and leaves the device node in place.
    let out = wildsgd(["train", "--data", &d, "--quiet", "--output", "/dev/null"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A full disk on stdout or on a report names the output.
    if Path::new("/dev/full").exists() {
        let out = Command::new(BIN)
            .args(["info", &d])
            .stdout(fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("<standard output>"),
            "{}",
            stderr(&out)
        );
        let out = wildsgd(["train", "--data", &d, "--quiet", "--report", "/dev/full"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("/dev/full"), "{}", stderr(&out));
    }
}

#[test]
fn any_two_labels_are_classes_and_come_back_in_predictions() {
    let dir = tempfile::tempdir().unwrap();
    // breast-cancer's labels: 2 (benign, negative) and 4 (malignant, positive).
    let train: String = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                "4 1:1 3:0.5\n"
            } else {
                "2 2:1 3:0.5\n"
            }
        })
        .collect();
    let t = arg(&write(dir.path(), "t.libsvm", &train));
    let test = arg(&write(dir.path(), "v.libsvm", "2 2:1\n4 1:1\n4 1:1 3:1\n"));
    let m = arg(&dir.path().join("m.wsgd"));
    let out = wildsgd([
        "train",
        "--data",
        &t,
        "--test",
        &test,
        "--quiet",
        "--output",
        &m,
        "--scheme",
        "sequential",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("accuracy 1.0000"), "{}", stdout(&out));
    let model = load_model(Path::new(&m)).unwrap();
    assert_eq!(
        model.classes,
        Classes {
            negative: 2.0,
            positive: 4.0
        }
    );
    let out = wildsgd(["predict", "--model", &m, "--data", &test, "--labels"]);
    assert_eq!(stdout(&out), "2\n4\n4\n", "{}", stderr(&out));
    // A test file with a label that is neither class, or a third class in training.
    let other = arg(&write(dir.path(), "o.libsvm", "2 1:1\n1 2:1\n"));
    refused(
        &wildsgd(["eval", "--model", &m, "--data", &other]),
        "label 1 is neither of the model's two classes (2 and 4)",
    );
    let three = arg(&write(dir.path(), "3.libsvm", "2 1:1\n4 2:1\n# c\n3 1:1\n"));
    refused(
        &wildsgd(["info", &three]),
        "3.libsvm:4:1: a third label value 3",
    );
}

#[test]
fn libsvm_panel_sets_with_other_labels_train() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.wsgd");
    for (name, classes) in [
        ("mushrooms", (1.0, 2.0)),
        ("breast-cancer_scale", (2.0, 4.0)),
    ] {
        let Some(p) = shared(&format!("libsvm-panel/{name}/{name}")) else {
            continue;
        };
        let out = wildsgd([
            "train",
            "--data",
            &arg(&p),
            "--holdout",
            "0.2",
            "--epochs",
            "3",
            "--quiet",
            "--output",
            &arg(&m),
        ]);
        let c = load_model(&m).unwrap().classes;
        assert_eq!((c.negative, c.positive), classes, "{name}");
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let acc: f64 = stdout(&out)
            .split("accuracy ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(acc > 0.9, "{name}: accuracy {acc}");
    }
}

#[test]
fn the_index_base_of_training_applies_to_test_and_predict_files() {
    let dir = tempfile::tempdir().unwrap();
    let train: String = "+1 0:1\n-1 1:1\n".repeat(50);
    let t = arg(&write(dir.path(), "t.libsvm", &train));
    // 0-based like its training file, but without an index 0 to give it away.
    let test = arg(&write(dir.path(), "v.libsvm", "-1 1:1\n-1 1:1\n"));
    let m = arg(&dir.path().join("m.wsgd"));
    let out = wildsgd([
        "train",
        "--data",
        &t,
        "--test",
        &test,
        "--quiet",
        "--output",
        &m,
        "--scheme",
        "sequential",
    ]);
    assert!(
        stdout(&out).contains("accuracy 1.0000"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        load_model(Path::new(&m)).unwrap().index_base,
        IndexBase::Zero
    );
    let out = wildsgd(["predict", "--model", &m, "--data", &test]);
    for p in stdout(&out).lines() {
        assert!(p.parse::<f64>().unwrap() < 0.5, "{}", stdout(&out));
    }
    let out = wildsgd(["eval", "--model", &m, "--data", &test, "--json"]);
    assert!(
        stdout(&out).contains("\"test_accuracy\":1.0"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn flags_for_another_model_optimizer_or_schedule_are_refused() {
    let a9a = arg(&bundled("a9a/a9a.t"));
    for (flags, fragment) in [
        (vec!["--rank", "0"], "--rank does not apply"),
        (vec!["--blocks", "0"], "--blocks does not apply"),
        (vec!["--init-std", "-1"], "--init-std does not apply"),
        (vec!["--momentum", "2"], "--momentum does not apply"),
        (
            vec!["--optimizer", "adagrad", "--lr-decay", "0.5"],
            "--lr-decay does not apply",
        ),
        (vec!["--lr-patience", "3"], "--lr-patience does not apply"),
        (
            vec!["--grad-noise-gamma", "0.5"],
            "--grad-noise-gamma does not apply",
        ),
        (
            vec!["--scheme", "sequential", "--threads", "2"],
            "--threads does not apply",
        ),
        (
            vec!["--scheme", "locked", "--replicate", "all"],
            "--replicate does not apply",
        ),
        (vec!["--lr-schedule", "step", "--lr-step", "0"], "lr-step"),
        (
            vec!["--n-features", "1000000000000"],
            "must be between 1 and 4294967295",
        ),
    ] {
        let mut args = vec!["train", "--data", &a9a, "--epochs", "1", "--quiet"];
        args.extend(flags.iter().copied());
        refused(&wildsgd(&args), fragment);
    }
    // Ratings files refuse LIBSVM-only flags, and mf refuses linear-only ones.
    let dir = tempfile::tempdir().unwrap();
    let r = arg(&write(dir.path(), "r.tsv", "1\t1\t3\n1\t2\t4\n2\t1\t5\n"));
    refused(
        &wildsgd(["train", "--data", &r, "--index-base", "zero", "--quiet"]),
        "--index-base is for LIBSVM data",
    );
    refused(
        &wildsgd(["train", "--data", &r, "--eps", "1e-6", "--quiet"]),
        "--eps does not apply",
    );
    // sgd's default schedule (bottou) has no --lr-decay; with inv-time it tunes k.
    refused(
        &wildsgd(["train", "--data", &a9a, "--lr-decay", "0.5", "--quiet"]),
        "--lr-decay does not apply",
    );
    let report = |extra: &[&str]| -> Vec<f64> {
        let mut args = vec![
            "train", "--data", &a9a, "--epochs", "2", "--quiet", "--report", "-",
        ];
        args.extend(extra);
        let out = wildsgd(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "epoch")
            .map(|v| v["lr"].as_f64().unwrap())
            .collect()
    };
    let (k1, k05) = (
        report(&["--lr-schedule", "inv-time"]),
        report(&["--lr-schedule", "inv-time", "--lr-decay", "0.5"]),
    );
    assert!((k1[1] / k1[0] - 0.5).abs() < 1e-6, "{k1:?}");
    assert!((k05[1] / k05[0] - 1.0 / 1.5).abs() < 1e-6, "{k05:?}");
}

#[cfg(unix)]
#[test]
fn interrupted_runs_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.libsvm");
    let mut child = Command::new(BIN)
        .args([
            "gen",
            "sparse",
            "--rows",
            "50000000",
            "--quiet",
            "--output",
            &arg(&out),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the temporary file exists, then interrupt.
    let start = Instant::now();
    while fs::read_dir(dir.path()).unwrap().count() == 0
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A child `train --output M` killed with SIGKILL at random moments: M is always either
/// the previous complete model or the new one, never a mix or a fragment.
#[cfg(unix)]
#[test]
fn sigkill_at_any_moment_leaves_the_old_or_the_new_model() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let data = arg(&bundled("a9a/a9a"));
    let m = dir.path().join("m.wsgd");
    // The old model: one epoch. The new ones: differently seeded runs.
    let out = wildsgd([
        "train",
        "--data",
        &data,
        "--epochs",
        "1",
        "--quiet",
        "--output",
        &arg(&m),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut known = vec![fs::read(&m).unwrap()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut completed = 0;
    for round in 0..30 {
        let seed = (round + 1).to_string();
        let mut child = Command::new(BIN)
            .args([
                "train",
                "--data",
                &data,
                "--epochs",
                "2",
                "--quiet",
                "--seed",
                &seed,
                "--scheme",
                "sequential",
                "--output",
                &arg(&m),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        completed += usize::from(status.success());
        let now = fs::read(&m).unwrap();
        let model = load_model(&m).expect("the model file always loads");
        assert!(model.is_finite());
        if !known.contains(&now) {
            // A new complete model: it loaded above; remember it.
            known.push(now);
        }
    }
    eprintln!(
        "{completed} of 30 runs completed before the kill; {} models seen",
        known.len()
    );
}

/// The second adversarial pass (a helper tried ~1,800 cases on the fixed binary).
#[test]
fn second_pass_aborts_and_panics_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wide = arg(&write(dir.path(), "wide.svm", "+1 150000000:1\n-1 1:1\n"));
    let big = arg(&write(dir.path(), "big.svm", "+1 4000000000:1\n-1 3:1\n"));
    let a9a = arg(&bundled("a9a/a9a.t"));
    let out_file = arg(&dir.path().join("g.out"));
    let limit = Some(4_000_000);
    for (args, fragment) in [
        // Snapshots, early stopping and delay queues are counted in the model's memory.
        (
            vec![
                "train",
                "--data",
                &wide,
                "--epochs",
                "1",
                "--threads",
                "2",
                "--scheme",
                "locked",
                "--quiet",
            ],
            "memory",
        ),
        (
            vec![
                "train",
                "--data",
                &wide,
                "--epochs",
                "1",
                "--threads",
                "1",
                "--early-stop",
                "1",
                "--test",
                &wide,
                "--quiet",
            ],
            "memory",
        ),
        // --max-memory cannot raise the system's limit.
        (
            vec![
                "train",
                "--data",
                &big,
                "--epochs",
                "1",
                "--threads",
                "1",
                "--max-memory",
                "1T",
                "--quiet",
            ],
            "memory",
        ),
        (
            vec![
                "gen",
                "sparse",
                "--rows",
                "10",
                "--features",
                "1000000000",
                "--nnz-per-row",
                "2",
                "--output",
                &out_file,
                "--max-memory",
                "1T",
                "--quiet",
            ],
            "memory",
        ),
        // Thread stacks count too; a thread that cannot start is an error, not a panic.
        (
            vec![
                "train",
                "--data",
                &a9a,
                "--epochs",
                "1",
                "--threads",
                "4000",
                "--quiet",
            ],
            "threads",
        ),
        (
            vec![
                "gen",
                "ratings",
                "--users",
                "10",
                "--items",
                "10",
                "--rank",
                "2",
                "--density",
                "0.5",
                "--noise",
                "1e39",
                "--output",
                &out_file,
                "--quiet",
            ],
            "noise",
        ),
        // The parsed data is budgeted, not only the file's bytes.
        (
            vec!["info", &arg(&bundled("a9a/a9a")), "--max-memory", "12M"],
            "needs",
        ),
    ] {
        let out = run_bounded(&args, limit, 60);
        refused(&out, fragment);
    }
    assert!(!Path::new(&out_file).exists());
    let leftovers = fs::read_dir(dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")
    });
    assert_eq!(leftovers.count(), 0);
    // Endless inputs stop at the budget, with or without a limit.
    let out = run_bounded(&["info", "/dev/zero", "--max-memory", "100M"], None, 60);
    refused(&out, "/dev/zero: reading the input needs");
}

#[test]
fn second_pass_silent_misreadings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small: String = fs::read_to_string(bundled("a9a/a9a.t"))
        .unwrap()
        .lines()
        .take(200)
        .map(|l| format!("{l}\n"))
        .collect();
    let s = arg(&write(dir.path(), "s.svm", &small));
    let m = arg(&dir.path().join("m.wsgd"));
    assert!(
        wildsgd(["train", "--data", &s, "--quiet", "--output", &m])
            .status
            .success()
    );
    // An explicit --index-base that contradicts the model would shift every feature.
    refused(
        &wildsgd(["eval", "--model", &m, "--data", &s, "--index-base", "zero"]),
        "contradicts the training data",
    );
    // A model that cannot score its own training data is not written.
    let vbig = arg(&write(
        dir.path(),
        "vbig.svm",
        "+1 1:1e18\n-1 1:-1e18 2:1\n+1 2:3e38\n-1 1:1\n",
    ));
    refused(
        &wildsgd([
            "train",
            "--data",
            &vbig,
            "--quiet",
            "--output",
            &arg(&dir.path().join("v.wsgd")),
        ]),
        "scores on the training data",
    );
    assert!(!dir.path().join("v.wsgd").exists());
    // A cache path that is a link is not written through.
    #[cfg(unix)]
    {
        let keep = write(dir.path(), "keep.txt", "keep");
        std::os::unix::fs::symlink(&keep, dir.path().join("s.svm.wsgd-cache")).unwrap();
        let out = wildsgd(["info", &s, "--cache"]);
        assert!(out.status.success() && stderr(&out).contains("not a regular file"));
        assert_eq!(fs::read_to_string(&keep).unwrap(), "keep");
    }
    // Flags that would not change the run.
    let r = arg(&write(
        dir.path(),
        "r.tsv",
        "1\t1\t5\n1\t2\t3\n2\t1\t4\n3\t3\t3\n",
    ));
    for (args, fragment) in [
        (
            vec!["train", "--data", &r, "--threads", "2", "--blocks", "2"],
            "too few for 2 threads",
        ),
        (
            vec![
                "train",
                "--data",
                &s,
                "--threads",
                "1",
                "--replicate",
                "all",
            ],
            "--replicate does not apply",
        ),
        (
            vec![
                "train",
                "--data",
                &s,
                "--order",
                "none",
                "--shuffle-block",
                "4",
            ],
            "--shuffle-block does not apply",
        ),
        (
            vec![
                "train",
                "--data",
                &s,
                "--batch-size",
                "full",
                "--order",
                "curriculum",
            ],
            "--order does not apply",
        ),
        (
            vec![
                "train",
                "--data",
                &s,
                "--scheme",
                "sequential",
                "--lossless",
            ],
            "--lossless does not apply",
        ),
        (
            vec!["bench", "--data", &s, "--schemes", "hogwild,hogwild"],
            "listed twice",
        ),
        (
            vec!["bench", "--data", &s, "--threads", "2,1,2"],
            "listed twice",
        ),
        (
            vec![
                "compare",
                "--data",
                &s,
                "--optimizers",
                "sgd,sgd",
                "--plot",
                "x.svg",
            ],
            "listed twice",
        ),
        (
            vec![
                "gen",
                "sparse",
                "--rows",
                "5",
                "--features",
                "5",
                "--nnz-per-row",
                "0",
                "-o",
                "z",
            ],
            "nnz-per-row",
        ),
        (
            vec![
                "gen",
                "ratings",
                "--users",
                "5",
                "--items",
                "5",
                "--density",
                "1e-300",
                "-o",
                "z",
            ],
            "less than one expected rating",
        ),
        (
            vec!["train", "--data", &s, "--lr", "3.5e38"],
            "beyond the largest value an f32 holds",
        ),
        (
            vec![
                "train",
                "--data",
                &s,
                "--optimizer",
                "ftrl",
                "--ftrl-beta",
                "-1",
            ],
            "`ftrl-beta`",
        ),
    ] {
        let mut args = args;
        args.push("--quiet");
        refused(&wildsgd(&args), fragment);
    }
    let out = wildsgd([
        "train",
        "--data",
        &s,
        "--scheme",
        "sequential",
        "--threads",
        "1",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn second_pass_usability() {
    let dir = tempfile::tempdir().unwrap();
    let d = write(dir.path(), "d.svm", "\u{feff}+1 1:1\n-1 2:1\n");
    let d = arg(&d);
    // A byte-order mark is not data.
    assert!(wildsgd(["info", &d]).status.success());
    // Usage errors are one line.
    let out = wildsgd(["train", "--data", &d, "--lr", "abc"]);
    assert_eq!(
        assert_bad_input(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    // Names near the 255-byte limit, a missing directory found before training, a
    // truncated model named as such, `-` and /dev/stdout as outputs.
    let long = dir.path().join(format!("{}.wsgd", "b".repeat(244)));
    assert!(
        wildsgd(["train", "--data", &d, "--quiet", "--output", &arg(&long)])
            .status
            .success()
    );
    let out = wildsgd([
        "train",
        "--data",
        &d,
        "--quiet",
        "--output",
        &arg(&dir.path().join("no/x")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the directory") && stderr(&out).contains("does not exist"));
    let t = dir.path().join("t10");
    fs::write(&t, &fs::read(&long).unwrap()[..10]).unwrap();
    refused(
        &wildsgd(["predict", "--model", &arg(&t), "--data", &d]),
        "truncated model file",
    );
    let out = wildsgd([
        "predict",
        "--model",
        &arg(&long),
        "--data",
        &d,
        "--output",
        "-",
    ]);
    assert_eq!(stdout(&out).lines().count(), 2);
    #[cfg(unix)]
    {
        let out = wildsgd([
            "predict",
            "--model",
            &arg(&long),
            "--data",
            &d,
            "--output",
            "/dev/stdout",
        ]);
        assert_eq!(stdout(&out).lines().count(), 2, "{}", stderr(&out));
    }
}
