//! Every file in `tests/bad_files` must be refused with exit code 2 and a message
//! naming the file, the line and column listed in `EXPECTED.tsv`, and what was
//! expected; the library must return the same located error.

use std::fs;

use wildsgd::data::{LoadOptions, load};

use crate::util::{arg, assert_bad_input, root, wildsgd};

fn cases() -> Vec<(String, String, String)> {
    let dir = root().join("tests/bad_files");
    let text = fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "bad EXPECTED.tsv line {l:?}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn corpus_is_large_and_complete() {
    let cases = cases();
    assert!(cases.len() >= 25, "only {} bad files", cases.len());
    let listed: std::collections::HashSet<_> = cases.iter().map(|c| c.0.clone()).collect();
    for entry in fs::read_dir(root().join("tests/bad_files")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "EXPECTED.tsv" || listed.contains(&name),
            "{name} is not listed in EXPECTED.tsv"
        );
    }
}

#[test]
fn every_bad_file_is_a_located_error_in_the_cli() {
    for (name, loc, fragment) in cases() {
        let path = root().join("tests/bad_files").join(&name);
        let out = wildsgd(["info", &arg(&path)]);
        let err = assert_bad_input(&out);
        let located = if loc.is_empty() {
            format!("{name}: ")
        } else {
            format!("{name}:{loc}:")
        };
        assert!(
            err.contains(&located),
            "{name}: expected `{located}` in {err}"
        );
        assert!(
            err.contains(&fragment),
            "{name}: expected `{fragment}` in {err}"
        );
        assert_eq!(
            err.lines().count(),
            1,
            "{name}: one line of error expected: {err}"
        );
    }
}

#[test]
fn every_bad_file_is_a_located_error_in_the_library() {
    for (name, loc, fragment) in cases() {
        let path = root().join("tests/bad_files").join(&name);
        let err = load(&path, &LoadOptions::default()).unwrap_err();
        assert!(err.is_bad_input(), "{name}");
        let wildsgd::Error::Parse(p) = &err else {
            panic!("{name}: not a parse error: {err}")
        };
        assert_eq!(p.path.as_deref(), Some(path.as_path()), "{name}");
        let mut parts = loc
            .split(':')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().unwrap());
        assert_eq!(p.line, parts.next(), "{name}: line");
        if let Some(col) = parts.next() {
            assert_eq!(p.column, Some(col as usize), "{name}: column");
        }
        assert!(err.to_string().contains(&fragment), "{name}: {err}");
    }
}

#[test]
fn very_long_line_is_refused() {
    let mut opts = LoadOptions::default();
    opts.libsvm.max_line_bytes = 100;
    let mut text = b"+1 1:1\n-1".to_vec();
    for i in 1..100 {
        text.extend_from_slice(format!(" {i}:1").as_bytes());
    }
    text.push(b'\n');
    let err = wildsgd::data::parse_bytes(&text, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:101: line longer than 100 bytes"), "{err}");
    opts.format = wildsgd::Format::Ratings;
    opts.ratings.max_line_bytes = 10;
    let err = wildsgd::data::parse_bytes(b"1 2 3\n1 2 3.000000000001\n", &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:11: line longer than 10 bytes"), "{err}");
}

#[test]
fn missing_file_is_exit_2_and_named() {
    let out = wildsgd(["info", "/no/such/file.libsvm"]);
    let err = assert_bad_input(&out);
    assert!(err.contains("/no/such/file.libsvm: cannot read"), "{err}");
}
