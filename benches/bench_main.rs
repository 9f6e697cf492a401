//! Criterion benches. Run with `cargo bench` (all) or `cargo bench -- parse` (one group).

mod benchmarks;

criterion::criterion_main!(
    benchmarks::parse::benches,
    benchmarks::train::benches,
    benchmarks::mf::benches
);
