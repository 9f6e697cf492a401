//! Parsing throughput (MB/s and rows/s) on the real LIBSVM files and a large generated
//! RCV1-shaped file, and loading the same data from its binary cache.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group};
use wildsgd::data::{LibsvmOptions, LoadOptions, cache, libsvm, source};
use wildsgd::generate::SparseGenConfig;

/// Rows of the generated file (about 75 non-zeros each, ~140 MB of text).
const GEN_ROWS: usize = 200_000;

fn inputs() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![("a9a".to_string(), root.join("datasets/a9a/a9a"))];
    let rcv1 = root.join("../shared/datasets/rcv1-vw-subset/rcv1_small.libsvm");
    if rcv1.exists() {
        v.push(("rcv1_small".into(), rcv1));
    } else {
        eprintln!("skipping rcv1_small: {} is not present", rcv1.display());
    }
    let gen_path = std::env::temp_dir().join(format!("wildsgd-bench-gen-{GEN_ROWS}.libsvm"));
    if !gen_path.exists() {
        let cfg = SparseGenConfig {
            rows: GEN_ROWS,
            ..Default::default()
        };
        let f = std::io::BufWriter::new(
            std::fs::File::create(&gen_path).expect("create generated file"),
        );
        cfg.write(f, |_| {})
            .expect("config")
            .expect("write generated file");
    }
    v.push((format!("gen_rcv1_like_{}k", GEN_ROWS / 1000), gen_path));
    v
}

fn parse(c: &mut Criterion) {
    for (name, path) in inputs() {
        let bytes = source::read_path(&path, wildsgd::data::DEFAULT_MAX_LINE).expect("read");
        let rows = libsvm::parse(&bytes, &LibsvmOptions::default())
            .expect("parse")
            .rows();
        for (unit, throughput) in [
            ("MB/s", Throughput::Bytes(bytes.len() as u64)),
            ("rows/s", Throughput::Elements(rows as u64)),
        ] {
            let mut g = c.benchmark_group(format!("parse_{unit}"));
            g.throughput(throughput);
            if bytes.len() > 20 << 20 {
                g.sample_size(10);
            }
            g.bench_function(&name, |b| {
                b.iter(|| {
                    libsvm::parse(black_box(&bytes), &LibsvmOptions::default()).expect("parse")
                })
            });
            g.finish();
        }
        // Loading from the binary cache (file read included), same byte count for comparison.
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("data");
        std::fs::copy(&path, &copy).expect("copy");
        let opts = LoadOptions {
            cache: true,
            ..LoadOptions::default()
        };
        cache::load_or_build(&copy, &opts).expect("build cache");
        let mut g = c.benchmark_group("cache_load_MB/s");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        if bytes.len() > 20 << 20 {
            g.sample_size(10);
        }
        g.bench_function(&name, |b| {
            b.iter(|| {
                let (d, status) = cache::load_or_build(black_box(&copy), &opts).expect("load");
                assert_eq!(status, cache::CacheStatus::Hit);
                d
            })
        });
        g.finish();
    }
}

criterion_group!(benches, parse);
