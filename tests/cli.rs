//! The command-line contract of SPEC.md: `info`, `gen`, exit codes, atomic outputs.

use std::fs;

use serde_json::Value;

use crate::util::{arg, assert_bad_input, bundled, shared, stdout, wildsgd};

fn info_json(args: &[&str]) -> Value {
    let mut all = vec!["info", "--json"];
    all.extend_from_slice(args);
    let out = wildsgd(&all);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

#[test]
fn info_on_bundled_a9a() {
    let v = info_json(&[&arg(&bundled("a9a/a9a"))]);
    assert_eq!(v["format"], "libsvm");
    assert_eq!(v["rows"], 32561);
    assert_eq!(v["columns"], 123);
    assert_eq!(v["nnz"], 451592);
    assert_eq!(v["omega"], 14);
    assert_eq!(v["rho_exact"], true);
    assert_eq!(v["rho"], 1.0);
    let pos = v["positive_fraction"].as_f64().unwrap();
    assert!((pos - 7841.0 / 32561.0).abs() < 1e-12);
    for key in ["density", "delta"] {
        assert!(v[key].is_f64(), "{key}");
    }
}

#[test]
fn test_file_lines_up_with_n_features() {
    let v = info_json(&["--n-features", "123", &arg(&bundled("a9a/a9a.t"))]);
    assert_eq!(v["columns"], 123);
    assert_eq!(v["rows"], 16281);
    let out = wildsgd(["info", "--n-features", "100", &arg(&bundled("a9a/a9a.t"))]);
    let err = assert_bad_input(&out);
    assert!(
        err.contains("a9a.t:") && err.contains("beyond the declared 100 features"),
        "{err}"
    );
}

#[test]
fn info_on_implicit_ratings() {
    let v = info_json(&[&arg(&bundled("msweb/interactions.tsv"))]);
    assert_eq!(v["format"], "ratings");
    assert_eq!(v["ratings"], 98653);
    assert_eq!(v["users"], 32710);
    assert_eq!(v["items"], 285);
    assert_eq!(v["implicit"], true);
    assert_eq!(v["min_rating"], 1.0);
    assert_eq!(v["max_rating"], 1.0);
}

#[test]
fn info_on_shared_ratings() {
    if let Some(p) = shared("movielens-100k/u.data") {
        let v = info_json(&[&arg(&p)]);
        assert_eq!(
            (
                v["ratings"].as_u64(),
                v["users"].as_u64(),
                v["items"].as_u64()
            ),
            (Some(100_000), Some(943), Some(1682))
        );
        assert_eq!(
            (v["min_rating"].as_f64(), v["max_rating"].as_f64()),
            (Some(1.0), Some(5.0))
        );
    }
    if let Some(p) = shared("filmtrust/ratings.txt") {
        let v = info_json(&[&arg(&p)]);
        assert_eq!(
            (
                v["ratings"].as_u64(),
                v["users"].as_u64(),
                v["items"].as_u64()
            ),
            (Some(35_497), Some(1508), Some(2071))
        );
        assert_eq!(v["duplicate_pairs"], 3);
        assert_eq!(
            (v["min_rating"].as_f64(), v["max_rating"].as_f64()),
            (Some(0.5), Some(4.0))
        );
    }
    if let Some(p) = shared("rcv1-vw-subset/rcv1_small.libsvm") {
        let v = info_json(&["--n-features", "47236", &arg(&p)]);
        assert_eq!(
            (v["rows"].as_u64(), v["nnz"].as_u64(), v["columns"].as_u64()),
            (Some(1000), Some(77_739), Some(47_236))
        );
    }
}

#[test]
fn forced_format_and_index_base() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero.txt");
    fs::write(&p, "+1 0:1 2:1\n-1 1:1\n").unwrap();
    let v = info_json(&[&arg(&p)]);
    assert_eq!(v["index_base"], 0);
    assert_eq!(v["columns"], 3);
    let out = wildsgd(["info", "--index-base", "one", &arg(&p)]);
    let err = assert_bad_input(&out);
    assert!(err.contains("zero.txt:1:4: feature index 0"), "{err}");
    let out = wildsgd(["info", "--format", "ratings", &arg(&p)]);
    assert_bad_input(&out);
}

#[test]
fn cache_is_written_then_hit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a9a");
    fs::copy(bundled("a9a/a9a"), &p).unwrap();
    let first = info_json(&["--cache", &arg(&p)]);
    assert_eq!(first["cache"], "written");
    assert!(dir.path().join("a9a.wsgd-cache").exists());
    let second = info_json(&["--cache", &arg(&p)]);
    assert_eq!(second["cache"], "hit");
    assert_eq!(first["nnz"], second["nnz"]);
    assert_eq!(first["rho"], second["rho"]);
}

#[test]
fn gen_sparse_then_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("synth.libsvm.gz");
    let out = wildsgd([
        "gen",
        "sparse",
        "--rows",
        "3000",
        "--features",
        "5000",
        "--nnz-per-row",
        "30",
        "--seed",
        "7",
        "--output",
        &arg(&p),
    ]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let v = info_json(&[&arg(&p)]);
    assert_eq!(v["rows"], 3000);
    assert_eq!(v["nnz"], 90000);
    assert_eq!(v["omega"], 30);
    // Power law: the hottest feature is in far more rows than 30/5000 of them.
    assert!(v["delta"].as_f64().unwrap() > 0.1, "{v}");
}

#[test]
fn gen_ratings_then_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.tsv");
    let out = wildsgd([
        "gen",
        "ratings",
        "--users",
        "500",
        "--items",
        "300",
        "--rank",
        "4",
        "--density",
        "0.1",
        "--output",
        &arg(&p),
    ]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let v = info_json(&[&arg(&p)]);
    assert_eq!(v["format"], "ratings");
    let n = v["ratings"].as_f64().unwrap();
    assert!((n - 15000.0).abs() < 1000.0, "{n}");
}

#[test]
fn bad_parameters_exit_2_and_keep_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keep.txt");
    fs::write(&p, "precious").unwrap();
    let out_arg = arg(&p);
    for args in [
        vec![
            "gen",
            "sparse",
            "--rows",
            "10",
            "--features",
            "5",
            "--nnz-per-row",
            "6",
        ],
        vec!["gen", "sparse", "--rows", "0"],
        vec!["gen", "sparse", "--noise", "nan"],
        vec!["gen", "ratings", "--density", "1.5"],
        vec!["gen", "ratings", "--rank", "-3"],
        vec!["gen", "sparse", "--bogus-flag"],
    ] {
        let mut a = args.clone();
        a.extend(["--output", out_arg.as_str()]);
        let out = wildsgd(&a);
        assert_bad_input(&out);
        assert_eq!(fs::read_to_string(&p).unwrap(), "precious", "{args:?}");
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}

#[test]
fn unwritable_output_is_exit_1() {
    let out = wildsgd([
        "gen",
        "sparse",
        "--rows",
        "10",
        "--output",
        "/no/such/dir/x.libsvm",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::util::stderr(&out));
    assert!(crate::util::stderr(&out).contains("/no/such/dir/x.libsvm: cannot write"));
}

#[test]
fn usage_errors_exit_2() {
    assert_bad_input(&wildsgd(["info"]));
    assert_bad_input(&wildsgd(["frobnicate"]));
    assert_bad_input(&wildsgd(["info", "--format", "csvish", "x"]));
    assert_bad_input(&wildsgd([
        "info",
        "--n-features",
        "0",
        &arg(&bundled("a9a/a9a")),
    ]));
    assert!(wildsgd(["--help"]).status.success());
}
