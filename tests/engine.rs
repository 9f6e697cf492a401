//! The parallel engine: schemes, threads, replicas, delays.

use wildsgd::data::{LibsvmOptions, SparseDataset, load_libsvm};
use wildsgd::engine::{EngineConfig, Replication, Scheme, cores};
use wildsgd::optim::OptimizerKind;
use wildsgd::train::{TrainConfig, TrainOutcome, fit};

use crate::util::bundled;

fn a9a() -> (SparseDataset, SparseDataset) {
    let opts = LibsvmOptions {
        n_features: Some(123),
        ..Default::default()
    };
    (
        load_libsvm(&bundled("a9a/a9a"), &opts).unwrap(),
        load_libsvm(&bundled("a9a/a9a.t"), &opts).unwrap(),
    )
}

fn run(
    train: &SparseDataset,
    test: &SparseDataset,
    scheme: Scheme,
    threads: usize,
    f: impl FnOnce(&mut TrainConfig),
) -> TrainOutcome {
    // The engine's own trajectory: the last iterate (averaging has a test of its own).
    let mut cfg = TrainConfig {
        epochs: 3,
        average: None,
        engine: EngineConfig {
            scheme,
            threads,
            ..EngineConfig::default()
        },
        ..TrainConfig::default()
    };
    f(&mut cfg);
    // The heuristic rate and the per-epoch schedule, not the calibrated per-update one
    // with averaging: these tests compare the schemes' last iterates after a few epochs.
    if cfg.schedule.is_none() && !cfg.optimizer.is_adaptive() {
        cfg.schedule = Some(wildsgd::schedule::Schedule::InvTime { k: 1.0 });
    }
    if cfg.lr.is_none() {
        cfg.lr = Some(cfg.effective_lr(train));
    }
    fit(train, Some(test), &cfg, |_| {}).unwrap()
}

#[test]
fn one_hogwild_thread_is_bit_for_bit_sequential() {
    let (train, test) = a9a();
    for opt in ["sgd", "adam", "adagrad"] {
        let set = |c: &mut TrainConfig| c.optimizer = OptimizerKind::from_name(opt).unwrap();
        let a = run(&train, &test, Scheme::Sequential, 1, set);
        let b = run(&train, &test, Scheme::Hogwild, 1, set);
        assert_eq!(b.done.threads, 1);
        assert!(
            a.model
                .weights
                .iter()
                .zip(&b.model.weights)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{opt}"
        );
        assert_eq!(a.model.bias.to_bits(), b.model.bias.to_bits(), "{opt}");
    }
}

/// Hogwild! with several threads lands within this of sequential's test log loss on a9a
/// (races and replica merges perturb the trajectory, not the optimum).
const TOLERANCE: f64 = 0.005;

#[test]
fn several_threads_land_near_sequential() {
    let (train, test) = a9a();
    let reference = run(&train, &test, Scheme::Sequential, 1, |_| {})
        .done
        .test_loss
        .unwrap();
    for (threads, rep, lossless) in [
        (2, Replication::Auto, false),
        (2, Replication::None, false),
        (2, Replication::All, false),
        (2, Replication::None, true),
        (4, Replication::Auto, false),
    ] {
        let out = run(&train, &test, Scheme::Hogwild, threads, |c| {
            c.engine.replicate = rep;
            c.engine.lossless = lossless;
        });
        let loss = out.done.test_loss.unwrap();
        assert!(
            (loss - reference).abs() <= TOLERANCE,
            "{threads} threads {rep:?} lossless={lossless}: {loss} vs {reference}"
        );
        assert_eq!(out.done.threads, threads);
        assert_eq!(out.done.oversubscribed, threads > cores());
        assert_eq!(out.done.scheme, "hogwild");
        if rep == Replication::None || lossless {
            assert_eq!(out.done.replicated, 0);
        } else {
            assert!(out.done.replicated > 0);
        }
    }
}

#[test]
fn every_optimizer_under_every_scheme() {
    let (train, test) = a9a();
    for name in OptimizerKind::NAMES {
        for (scheme, threads) in [
            (Scheme::Sequential, 1),
            (Scheme::Hogwild, 2),
            (Scheme::Locked, 2),
        ] {
            let out = run(&train, &test, scheme, threads, |c| {
                c.optimizer = OptimizerKind::from_name(name).unwrap();
                c.epochs = 2;
            });
            let acc = out.done.test_accuracy.unwrap();
            assert!(acc > 0.83, "{name} {scheme:?} x{threads}: {acc}");
        }
    }
    // Mini-batches and the hinge loss under hogwild too.
    let out = run(&train, &test, Scheme::Hogwild, 2, |c| {
        c.batch_size = 16;
        c.loss = wildsgd::model::LossKind::Hinge;
        c.optimizer = OptimizerKind::from_name("adagrad").unwrap();
    });
    assert!(out.done.test_accuracy.unwrap() > 0.83);
}

#[test]
fn adaptive_revision_without_delay_is_adagrad_and_handles_delay() {
    let (train, test) = a9a();
    let no_l2 = |c: &mut TrainConfig| {
        c.optimizer = OptimizerKind::from_name("adagrad").unwrap();
        c.l2 = Some(0.0);
    };
    let ada = run(&train, &test, Scheme::Sequential, 1, no_l2);
    let ar = run(&train, &test, Scheme::DelayTolerant, 1, no_l2);
    for (a, b) in ada.model.weights.iter().zip(&ar.model.weights) {
        assert!((a - b).abs() < 1e-4, "AdaGrad {a} vs AdaptiveRevision {b}");
    }
    for scheme in [Scheme::Hogwild, Scheme::DelayTolerant] {
        let out = run(&train, &test, scheme, 2, |c| {
            no_l2(c);
            c.engine.delay = 1000;
        });
        assert!(
            out.done.test_accuracy.unwrap() > 0.8,
            "{scheme:?} with delay"
        );
    }
    let bad = TrainConfig {
        engine: EngineConfig {
            scheme: Scheme::DelayTolerant,
            ..EngineConfig::default()
        },
        ..TrainConfig::default()
    };
    assert!(
        fit(&train, None, &bad, |_| {}).is_err(),
        "delay-tolerant needs adagrad"
    );
}

#[test]
fn replicas_do_not_overshoot_the_bias_with_many_threads() {
    // Long merge intervals on power-law data: every thread corrects the bias from the same
    // stale value, so summing their changes would overshoot it by the thread count.
    let cfg = wildsgd::generate::SparseGenConfig {
        rows: 24_000,
        features: 3_000,
        nnz_per_row: 20,
        ..Default::default()
    };
    let mut text = Vec::new();
    cfg.write(&mut text, |_| {}).unwrap().unwrap();
    let all = wildsgd::data::libsvm::parse(&text, &LibsvmOptions::default()).unwrap();
    let (train, test) = all.split_holdout(0.25, 3).unwrap();
    let reference = run(&train, &test, Scheme::Sequential, 1, |_| {})
        .done
        .test_loss
        .unwrap();
    for threads in [3, 4] {
        let out = run(&train, &test, Scheme::Hogwild, threads, |c| {
            c.engine.replicate = Replication::All;
            c.engine.sync_every = 3_000;
        });
        let loss = out.done.test_loss.unwrap();
        assert!(
            (loss - reference).abs() < 0.02,
            "{threads} threads: {loss} vs sequential {reference}"
        );
    }
}

#[test]
fn round_robin_takes_turns_deterministically() {
    let (train, test) = a9a();
    let reference = run(&train, &test, Scheme::Sequential, 1, |_| {})
        .done
        .test_loss
        .unwrap();
    for opt in ["sgd", "adagrad"] {
        let set = |c: &mut TrainConfig| c.optimizer = OptimizerKind::from_name(opt).unwrap();
        let a = run(&train, &test, Scheme::RoundRobin, 2, set);
        let b = run(&train, &test, Scheme::RoundRobin, 2, set);
        // Updates are serialized in a fixed order, so two runs agree bit for bit.
        assert_eq!(a.model.weights, b.model.weights, "{opt}");
        assert_eq!(a.done.scheme, "round-robin");
        if opt == "sgd" {
            assert!((a.done.test_loss.unwrap() - reference).abs() <= TOLERANCE);
        }
    }
    // Uneven shares (one thread gets a row more) and more threads than cores still finish.
    let small = train.select(&(0..1001).collect::<Vec<_>>());
    let out = run(&small, &test, Scheme::RoundRobin, 4, |c| c.epochs = 1);
    assert_eq!(out.epochs[0].updates, 1001);
}

/// The engine's replication policy is in the summary line and the report, and a merge
/// interval never exceeds a thread's share of an epoch.
#[test]
fn the_replication_policy_is_reported_and_bounded_by_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("small.libsvm");
    let rows: String = (0..2000)
        .map(|r| {
            format!(
                "{} {}:1 {}:0.5\n",
                if r % 3 == 0 { "+1" } else { "-1" },
                1 + r % 7,
                8 + r % 5
            )
        })
        .collect();
    std::fs::write(&d, rows).unwrap();
    let out = crate::util::wildsgd([
        "train",
        "--data",
        &crate::util::arg(&d),
        "--threads",
        "2",
        "--quiet",
        "--report",
        "-",
    ]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let text = crate::util::stdout(&out);
    let done: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .unwrap();
    let every = done["merge_every"]
        .as_u64()
        .expect("replicas report their interval");
    assert!((1..=1000).contains(&every), "{every}");
    assert!(crate::util::stderr(&out).contains("whole-model replicas, merged every"));
}
