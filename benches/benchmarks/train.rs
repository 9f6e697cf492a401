//! Sequential training throughput (non-zeros per second) on RCV1-shaped data from the
//! generator, beside the per-core ceiling: a plain loop of logistic SGD over the same
//! CSR arrays in file order, with a plain `Vec<f32>` and no abstraction.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use wildsgd::data::{LibsvmOptions, SparseDataset, libsvm};
use wildsgd::generate::SparseGenConfig;
use wildsgd::optim::OptimizerKind;
use wildsgd::schedule::Schedule;
use wildsgd::train::{Order, TrainConfig, fit};

/// 100,000 RCV1-shaped rows (7.5 M non-zeros).
fn data() -> SparseDataset {
    let cfg = SparseGenConfig {
        rows: 100_000,
        ..Default::default()
    };
    let mut text = Vec::new();
    cfg.write(&mut text, |_| {})
        .expect("config")
        .expect("write");
    libsvm::parse(&text, &LibsvmOptions::default()).expect("parse")
}

/// The ceiling: one epoch of logistic SGD with a bias, file order, plain memory, no
/// bounds checks.
fn plain_epoch(d: &SparseDataset, w: &mut [f32], lr: f32) {
    let x = d.x();
    let ptr = x.indptr();
    let ptr = ptr.raw_storage();
    let (idx, val, y) = (x.indices(), x.data(), d.y());
    let b = w.len() - 1;
    for r in 0..d.rows() {
        let (lo, hi) = (ptr[r], ptr[r + 1]);
        let (ri, rv) = (&idx[lo..hi], &val[lo..hi]);
        let mut z = w[b];
        for (&j, &v) in ri.iter().zip(rv) {
            // SAFETY: every index of a valid CSR matrix is below cols < w.len().
            z += unsafe { *w.get_unchecked(j as usize) } * v;
        }
        let g = -y[r] / (1.0 + (y[r] * z).exp());
        for (&j, &v) in ri.iter().zip(rv) {
            // SAFETY: as above.
            unsafe { *w.get_unchecked_mut(j as usize) -= lr * g * v };
        }
        w[b] -= lr * g;
    }
}

fn train(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("sequential_nnz_per_s");
    g.throughput(Throughput::Elements(d.nnz() as u64));
    g.sample_size(15);
    g.bench_function("plain_loop_ceiling", |b| {
        let mut w = vec![0f32; d.cols() + 1];
        b.iter(|| plain_epoch(black_box(&d), &mut w, 0.1))
    });
    let configs = [
        (
            "sgd_file_order_no_l2",
            TrainConfig {
                lr: Some(0.1),
                l2: Some(0.0),
                order: Order::None,
                schedule: Some(Schedule::Constant),
                epochs: 1,
                ..Default::default()
            },
        ),
        (
            "sgd_defaults",
            TrainConfig {
                lr: Some(0.1),
                epochs: 1,
                ..Default::default()
            },
        ),
        (
            "sgd_block_shuffle_no_l2",
            TrainConfig {
                lr: Some(0.1),
                l2: Some(0.0),
                epochs: 1,
                ..Default::default()
            },
        ),
        (
            "sgd_file_order_lazy_l2",
            TrainConfig {
                lr: Some(0.1),
                order: Order::None,
                epochs: 1,
                ..Default::default()
            },
        ),
        (
            "adagrad_file_order_no_l2",
            TrainConfig {
                optimizer: OptimizerKind::from_name("adagrad").expect("known"),
                l2: Some(0.0),
                order: Order::None,
                epochs: 1,
                ..Default::default()
            },
        ),
        (
            "adam_file_order_no_l2",
            TrainConfig {
                optimizer: OptimizerKind::from_name("adam").expect("known"),
                l2: Some(0.0),
                order: Order::None,
                epochs: 1,
                ..Default::default()
            },
        ),
    ];
    for (name, mut cfg) in configs {
        cfg.engine.scheme = wildsgd::engine::Scheme::Sequential;
        // Time the training epoch only (fit's own clock), not setup or snapshots.
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let out = fit(black_box(&d), None, &cfg, |_| {}).expect("fit");
                    let outside = start.elapsed().as_secs_f64() - out.done.train_seconds;
                    total += start.elapsed() - Duration::from_secs_f64(outside.max(0.0));
                }
                total
            })
        });
    }
    g.finish();
}

/// One epoch of AdaGrad logistic regression in a plain loop, with the weight and its
/// accumulator interleaved per coordinate (`[w0, G0, w1, G1, ...]`, the layout of
/// `SharedParams`) or in two separate arrays.
fn adagrad_epoch<const INTERLEAVED: bool>(
    d: &SparseDataset,
    a: &mut [f32],
    b: &mut [f32],
    lr: f32,
) {
    let x = d.x();
    let ptr = x.indptr();
    let ptr = ptr.raw_storage();
    let (idx, val, y) = (x.indices(), x.data(), d.y());
    for r in 0..d.rows() {
        let (ri, rv) = (&idx[ptr[r]..ptr[r + 1]], &val[ptr[r]..ptr[r + 1]]);
        let mut z = 0f32;
        for (&j, &v) in ri.iter().zip(rv) {
            let w = if INTERLEAVED {
                a[2 * j as usize]
            } else {
                a[j as usize]
            };
            z += w * v;
        }
        let g0 = -y[r] / (1.0 + (y[r] * z).exp());
        for (&j, &v) in ri.iter().zip(rv) {
            let g = g0 * v;
            let j = j as usize;
            if INTERLEAVED {
                a[2 * j + 1] += g * g;
                a[2 * j] -= lr * g / (a[2 * j + 1] + 1e-8).sqrt();
            } else {
                b[j] += g * g;
                a[j] -= lr * g / (b[j] + 1e-8).sqrt();
            }
        }
    }
}

fn layout(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("layout_adagrad_nnz_per_s");
    g.throughput(Throughput::Elements(d.nnz() as u64));
    g.sample_size(15);
    g.bench_function("interleaved", |bch| {
        let mut a = vec![0f32; 2 * d.cols()];
        bch.iter(|| adagrad_epoch::<true>(black_box(&d), &mut a, &mut [], 0.1))
    });
    g.bench_function("separate", |bch| {
        let (mut a, mut b) = (vec![0f32; d.cols()], vec![0f32; d.cols()]);
        bch.iter(|| adagrad_epoch::<false>(black_box(&d), &mut a, &mut b, 0.1))
    });
    g.finish();
}

/// Seconds of training per epoch for each scheme and thread count (the engine's
/// per-example update throughput), 2 epochs per run, training time only.
fn schemes(c: &mut Criterion) {
    use wildsgd::engine::{EngineConfig, Scheme};
    let d = data();
    let mut g = c.benchmark_group("scheme_nnz_per_s");
    g.throughput(Throughput::Elements(d.nnz() as u64));
    g.sample_size(10);
    for (scheme, threads) in [
        (Scheme::Sequential, 1),
        (Scheme::Hogwild, 1),
        (Scheme::Hogwild, 2),
        (Scheme::Locked, 1),
        (Scheme::Locked, 2),
    ] {
        let cfg = TrainConfig {
            epochs: 1,
            engine: EngineConfig {
                scheme,
                threads,
                ..EngineConfig::default()
            },
            ..Default::default()
        };
        g.bench_function(criterion::BenchmarkId::new(scheme.name(), threads), |b| {
            b.iter_custom(|iters| {
                let mut total = 0.0;
                for _ in 0..iters {
                    total += fit(black_box(&d), None, &cfg, |_| {})
                        .expect("fit")
                        .done
                        .train_seconds;
                }
                Duration::from_secs_f64(total)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, train, layout, schemes);
