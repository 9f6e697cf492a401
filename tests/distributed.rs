//! Training across MPI ranks (`--features distributed`): the real binary under
//! `mpirun` (Open MPI), on the bundled a9a. Tolerances: every scheme's test loss within
//! 2% of one process's (hogwild, one thread, the same passes over the data); measured
//! spreads are under 0.5% (README: Across machines).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::util::{arg, bundled, shared, stderr, stdout, wildsgd};

/// `mpirun -n ranks wildsgd args` (oversubscribed when ranks exceed the cores, threads
/// not bound by Open MPI: the engine pins its own).
fn mpirun_cmd(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--oversubscribe",
        "--bind-to",
        "none",
        "-n",
        &ranks.to_string(),
    ])
    .arg(env!("CARGO_BIN_EXE_wildsgd"))
    .args(args)
    // Tests run as root in CI containers.
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    c
}

fn mpirun(ranks: usize, args: &[&str]) -> Output {
    mpirun_cmd(ranks, args)
        .output()
        .expect("run mpirun (Open MPI: apt-get install openmpi-bin)")
}

/// The JSON events of a report written to stdout.
fn events(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn done(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    events(o)
        .into_iter()
        .find(|e| e["event"] == "done")
        .unwrap_or_else(|| panic!("no done event: {}", stdout(o)))
}

fn a9a() -> (String, String) {
    (arg(&bundled("a9a/a9a")), arg(&bundled("a9a/a9a.t")))
}

/// One process's test loss on a9a (hogwild, one thread), the reference.
fn single_loss(train: &str, test: &str) -> f64 {
    let o = wildsgd([
        "train",
        "--data",
        train,
        "--test",
        test,
        "--threads",
        "1",
        "--report",
        "-",
        "-q",
    ]);
    done(&o)["test_loss"].as_f64().expect("test loss")
}

#[test]
fn every_scheme_on_two_ranks_reaches_one_process_test_loss() {
    let (train, test) = a9a();
    let reference = single_loss(&train, &test);
    let dir = tempfile::tempdir().unwrap();
    for scheme in ["average", "easgd", "downpour", "delay-tolerant"] {
        let model = dir.path().join(format!("{scheme}.model"));
        let o = mpirun(
            2,
            &[
                "train",
                "--data",
                &train,
                "--test",
                &test,
                "--distributed",
                scheme,
                "--output",
                &arg(&model),
                "--report",
                "-",
                "-q",
            ],
        );
        let d = done(&o);
        let loss = d["test_loss"].as_f64().unwrap();
        assert!(
            loss <= reference * 1.02,
            "{scheme}: test loss {loss} vs one process's {reference}"
        );
        assert_eq!(d["distributed"], scheme);
        assert_eq!(d["ranks"], 2);
        assert!(d["comm_bytes"].as_u64().unwrap() > 0, "{scheme}: {d}");
        assert!(d["comm_seconds"].as_f64().unwrap() >= 0.0);
        // Every epoch reports what it communicated; rows are the whole data set's.
        let epochs: Vec<_> = events(&o)
            .into_iter()
            .filter(|e| e["event"] == "epoch")
            .collect();
        assert_eq!(epochs.len(), 10, "{scheme}");
        for e in &epochs {
            assert_eq!(e["ranks"], 2);
            assert!(e["comm_bytes"].as_u64().unwrap() > 0);
            assert_eq!(e["updates"], 32561, "{scheme}: every row once per epoch");
        }
        // Rank 0 wrote the model once, and it predicts.
        let p = wildsgd(["eval", "--model", &arg(&model), "--data", &test]);
        assert!(p.status.success(), "{scheme}: {}", stderr(&p));
    }
}

#[test]
fn four_oversubscribed_ranks_agree_with_one_process() {
    // Four ranks on this machine's two cores: correctness only, not speed.
    let (train, test) = a9a();
    let reference = single_loss(&train, &test);
    for scheme in ["average", "delay-tolerant"] {
        let o = mpirun(
            4,
            &[
                "train",
                "--data",
                &train,
                "--test",
                &test,
                "--distributed",
                scheme,
                "--report",
                "-",
                "-q",
            ],
        );
        let d = done(&o);
        let loss = d["test_loss"].as_f64().unwrap();
        assert_eq!(d["ranks"], 4);
        assert!(loss <= reference * 1.02, "{scheme}: {loss} vs {reference}");
    }
}

#[test]
fn delay_tolerant_copes_with_a_slowed_rank_where_downpour_does_not() {
    // Rank 1's messages take 300 ms, longer than its whole epoch on a9a: every gradient
    // it sends was computed against parameters an epoch old. AdaGrad on the server
    // (downpour) takes them at face value; AdaptiveRevision revises for the backlog.
    let (train, test) = a9a();
    let reference = single_loss(&train, &test);
    let run = |scheme: &str| {
        let o = mpirun(
            2,
            &[
                "train",
                "--data",
                &train,
                "--test",
                &test,
                "--distributed",
                scheme,
                "--slow-rank",
                "1:300",
                "--epochs",
                "5",
                "--report",
                "-",
                "-q",
            ],
        );
        done(&o)["test_loss"].as_f64().unwrap()
    };
    let (dp, dt) = (run("downpour"), run("delay-tolerant"));
    assert!(dt <= dp, "delay-tolerant {dt} vs downpour {dp}");
    assert!(
        dt <= reference * 1.02,
        "delay-tolerant {dt} vs one process {reference}"
    );
}

/// Rank `rank`'s process among `mpirun`'s children, found by Open MPI's environment.
fn rank_pid(mpirun_pid: u32, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the 4th field, after the parenthesized command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(mpirun_pid) {
            continue;
        }
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_in_bounded_time_without_output() {
    let (train, test) = a9a();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("never.model");
    let report = dir.path().join("never.jsonl");
    // Long enough to be killed mid-run: rank 1 is slowed, and there are many epochs.
    let mut child = mpirun_cmd(
        2,
        &[
            "train",
            "--data",
            &train,
            "--test",
            &test,
            "--distributed",
            "downpour",
            "--slow-rank",
            "1:2",
            "--n-push",
            "8",
            "--epochs",
            "1000",
            "--output",
            &arg(&model),
            "--report",
            &arg(&report),
            "-q",
            "--comm-timeout",
            "20",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start mpirun");
    let start = Instant::now();
    let victim = loop {
        if let Some(p) = rank_pid(child.id(), 1) {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rank 1 never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let it train (load the data, run an epoch or so), then kill it.
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()), "kill rank 1");
    let killed_at = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if killed_at.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the job did not end within 60 s of rank 1's death");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "the job succeeded without rank 1: {err}");
    assert!(err.contains("rank 1"), "the message names the rank: {err}");
    assert!(
        !model.exists() && !report.exists(),
        "no output after a failed job"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no temporary file left"
    );
}

#[test]
fn a_rank_error_ends_the_job_naming_the_rank() {
    let (train, _) = a9a();
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &train,
            "--distributed",
            "downpour",
            "--n-push",
            "2",
            "--n-fetch",
            "3",
            "-q",
        ],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains(" of 2: "), "names the rank: {err}");
    assert!(
        err.contains("`n-fetch`") && err.contains("multiple of --n-push"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Settings the scheme does not take are refused the same way.
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &train,
            "--distributed",
            "downpour",
            "--optimizer",
            "adam",
            "-q",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("adagrad"), "{}", stderr(&o));
    // A slowed rank must be one of the job's.
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &train,
            "--distributed",
            "average",
            "--slow-rank",
            "5:1",
            "-q",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("rank 5 is not in this job of 2"),
        "{}",
        stderr(&o)
    );
    // A ratings file takes dsgd, and LIBSVM data does not.
    let dir = tempfile::tempdir().unwrap();
    let ratings = dir.path().join("r.txt");
    std::fs::write(&ratings, "1 1 5\n1 2 3\n2 1 4\n2 2 1\n").unwrap();
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &arg(&ratings),
            "--distributed",
            "average",
            "-q",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("with dsgd"), "{}", stderr(&o));
    let o = mpirun(
        2,
        &["train", "--data", &train, "--distributed", "dsgd", "-q"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("matrix factorization"),
        "{}",
        stderr(&o)
    );
}

/// One process's and `ranks` ranks' (dsgd) test RMSE on `train`/`test`, 20 epochs.
fn mf_pair(train: &str, test: &str, ranks: usize) -> (f64, f64, serde_json::Value) {
    let common = [
        "train", "--data", train, "--test", test, "--epochs", "20", "--report", "-", "-q",
    ];
    let one = done(&wildsgd(common));
    let mut args = common.to_vec();
    args.extend(["--distributed", "dsgd"]);
    let o = mpirun(ranks, &args);
    let d = done(&o);
    for e in events(&o).iter().filter(|e| e["event"] == "epoch") {
        assert_eq!(e["ranks"], ranks);
        assert!(e["comm_bytes"].as_u64().unwrap() > 0);
    }
    (
        one["test_rmse"].as_f64().unwrap(),
        d["test_rmse"].as_f64().unwrap(),
        d,
    )
}

#[test]
fn dsgd_factorizes_across_ranks_as_one_process_does() {
    // Low-rank generated ratings (always here), then MovieLens u1 (when shared).
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("r.train"), dir.path().join("r.test"));
    let all = dir.path().join("r.all");
    let g = wildsgd([
        "gen",
        "ratings",
        "--users",
        "800",
        "--items",
        "500",
        "--density",
        "0.05",
        "-q",
        "-o",
        &arg(&all),
    ]);
    assert!(g.status.success(), "{}", stderr(&g));
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.len() * 4 / 5;
    std::fs::write(&train, lines[..cut].join("\n")).unwrap();
    std::fs::write(&test, lines[cut..].join("\n")).unwrap();
    for ranks in [2, 3] {
        let (one, many, d) = mf_pair(&arg(&train), &arg(&test), ranks);
        assert!((many - one).abs() <= 0.01, "{ranks} ranks: {many} vs {one}");
        assert_eq!(d["distributed"], "dsgd");
    }
    if let (Some(tr), Some(te)) = (
        shared("movielens-100k/u1.base"),
        shared("movielens-100k/u1.test"),
    ) {
        let (one, many, _) = mf_pair(&arg(&tr), &arg(&te), 2);
        assert!((many - one).abs() <= 0.01, "MovieLens u1: {many} vs {one}");
    }
}

#[test]
fn one_process_without_mpirun_is_a_job_of_one_rank() {
    let (train, test) = a9a();
    let reference = single_loss(&train, &test);
    let o = wildsgd([
        "train",
        "--data",
        &train,
        "--test",
        &test,
        "--distributed",
        "average",
        "--threads",
        "1",
        "--report",
        "-",
        "-q",
    ]);
    let d = done(&o);
    assert_eq!(d["ranks"], 1);
    let loss = d["test_loss"].as_f64().unwrap();
    assert!(
        (loss - reference).abs() <= 0.002 * reference,
        "{loss} vs {reference}"
    );
}

#[test]
fn tau_exchanges_within_an_epoch() {
    // τ = 4,000 rows: four exchanges per epoch of a rank's 16,280 a9a rows.
    let (train, test) = a9a();
    let reference = single_loss(&train, &test);
    for scheme in ["average", "easgd"] {
        let run = |tau: Option<&str>| {
            let mut args = vec![
                "train",
                "--data",
                &train,
                "--test",
                &test,
                "--distributed",
                scheme,
                "--report",
                "-",
                "-q",
            ];
            if let Some(t) = tau {
                args.extend(["--tau", t]);
            }
            done(&mpirun(2, &args))
        };
        let (once, four) = (run(None), run(Some("4000")));
        let loss = four["test_loss"].as_f64().unwrap();
        assert!(loss <= reference * 1.02, "{scheme}: {loss} vs {reference}");
        // Three more exchanges of the weights per epoch, each at least a model's size.
        let more = four["comm_bytes"].as_u64().unwrap() - once["comm_bytes"].as_u64().unwrap();
        assert!(more >= 10 * 3 * 124 * 8, "{scheme}: {more} more bytes");
    }
    // τ is for the allreduce schemes.
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &train,
            "--distributed",
            "downpour",
            "--tau",
            "10",
            "-q",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("`tau`"), "{}", stderr(&o));
}

#[test]
fn mismatched_ranks_bad_values_and_timeouts_end_cleanly() {
    let (train, test) = a9a();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("never.jsonl");
    // A rank that waits past --comm-timeout ends the job, leaving no file behind.
    let o = mpirun(
        2,
        &[
            "train",
            "--data",
            &train,
            "--test",
            &test,
            "--distributed",
            "average",
            "--slow-rank",
            "1:3000",
            "--comm-timeout",
            "1",
            "--epochs",
            "2",
            "--report",
            &arg(&report),
            "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no answer within 1 s"),
        "{}",
        stderr(&o)
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no report and no temporary file"
    );
    // Ranks started with different commands refuse to train together.
    let bin = env!("CARGO_BIN_EXE_wildsgd");
    let o = Command::new("mpirun")
        .args(["--oversubscribe", "--bind-to", "none", "-n", "1", bin])
        .args([
            "train",
            "--data",
            &train,
            "--distributed",
            "average",
            "-q",
            ":",
        ])
        .args([
            "-n",
            "1",
            bin,
            "train",
            "--data",
            &train,
            "--distributed",
            "easgd",
            "-q",
        ])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("different settings"), "{}", stderr(&o));
    // Values that cannot work, and flags the scheme would ignore, are refused.
    for (args, says) in [
        (
            &["--distributed", "average", "--slow-rank", "1:1e300"][..],
            "`slow-rank`",
        ),
        (
            &["--distributed", "easgd", "--elastic-alpha", "0.9"][..],
            "at most 1",
        ),
        (
            &["--distributed", "average", "--n-push", "8"][..],
            "--n-push",
        ),
        (
            &["--distributed", "average", "--elastic-alpha", "0.4"][..],
            "is for easgd",
        ),
        (
            &["--distributed", "downpour", "--threads", "2"][..],
            "--threads",
        ),
        (
            &["--distributed", "downpour", "--batch-size", "8"][..],
            "mini-batches",
        ),
    ] {
        let mut all = vec!["train", "--data", &train, "-q"];
        all.extend_from_slice(args);
        let o = mpirun(3, &all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
