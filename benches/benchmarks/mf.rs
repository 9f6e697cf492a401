//! The matrix-factorization kernel: one pass of SGD over 100,000 ratings of a
//! MovieLens-100k-sized matrix (943 users × 1,682 items) at rank 32, for the textbook
//! scalar loop (one running sum for the dot product, index loops), the vectorized
//! kernel compiled for the baseline target (SSE2), and the same kernel with AVX2
//! chosen at run time (what training uses). Throughput is in ratings.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use wildsgd::mf::kernel::{AUX, Entry, Variant, sgd_pass};

fn bench_kernel(c: &mut Criterion) {
    let (users, items, n) = (943usize, 1682usize, 100_000usize);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let entries: Vec<Entry> = (0..n)
        .map(|_| Entry {
            u: rng.random_range(0..users as u32),
            i: rng.random_range(0..items as u32),
            r: rng.random_range(-2.0..2.0),
        })
        .collect();
    let mut g = c.benchmark_group("mf_kernel");
    g.throughput(Throughput::Elements(n as u64));
    for k in [8usize, 32, 128] {
        let init = |rows: usize, rng: &mut Xoshiro256PlusPlus| -> Vec<f32> {
            (0..rows * k).map(|_| rng.random_range(-0.1..0.1)).collect()
        };
        let mut p = init(users, &mut rng);
        let mut q = init(items, &mut rng);
        let mut pa = [0.0, 1.0, 1.0, 0.05].repeat(users);
        let mut qa = [0.0, 1.0, 1.0, 0.05].repeat(items);
        assert_eq!(pa.len(), users * AUX);
        for (name, v) in [
            ("scalar", Variant::Naive),
            ("vectorized_sse2", Variant::Baseline),
            ("vectorized_best", Variant::Best),
        ] {
            g.bench_function(format!("{name}/k{k}"), |b| {
                b.iter(|| {
                    black_box(sgd_pass(
                        v, k, &mut p, &mut pa, &mut q, &mut qa, &entries, 1e-4,
                    ))
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_kernel
}
