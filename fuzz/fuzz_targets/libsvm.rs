//! LIBSVM text parser: never panics; what it accepts is a consistent CSR data set, and
//! the options that should not change an accepted result do not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::{Dataset, Format, IndexBase, LabelRule, LoadOptions, SparseDataset, parse_bytes};
use wildsgd_fuzz::{check_sparse_parsed, describe, report};

fn parse(data: &[u8], opts: &LoadOptions, what: &str) -> Option<SparseDataset> {
    let r = parse_bytes(data, opts);
    report(what, &r, describe);
    match r {
        Ok(Dataset::Sparse(d)) => {
            check_sparse_parsed(&d);
            Some(d)
        }
        Ok(other) => panic!("{what}: format forced to libsvm gave {}", describe(&other)),
        Err(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let base = LoadOptions {
        format: Format::Libsvm,
        ..Default::default()
    };
    let full = parse(data, &base, "libsvm");

    // A short line limit only adds errors: when it still succeeds, the result is the same.
    let mut short = base.clone();
    short.libsvm.max_line_bytes = 64;
    if let Some(d) = parse(data, &short, "libsvm max_line_bytes=64") {
        assert_eq!(Some(&d), full.as_ref(), "max_line_bytes=64 changed an accepted result");
    }

    // Forced 1-based: accepted only without index 0, where `auto` reads 1-based too.
    let mut one = base.clone();
    one.libsvm.index_base = IndexBase::One;
    if let Some(d) = parse(data, &one, "libsvm index_base=one") {
        assert_eq!(Some(&d), full.as_ref(), "index_base=one differs from auto");
    }

    // Forced 0-based: the same tokens are valid, so `auto` accepts them as well, and
    // reads them identically when it chose 0-based itself.
    let mut zero = base.clone();
    zero.libsvm.index_base = IndexBase::Zero;
    if let Some(d) = parse(data, &zero, "libsvm index_base=zero") {
        assert_eq!(d.index_base(), IndexBase::Zero);
        let f = full.as_ref().expect("index_base=zero accepted what auto refused");
        if f.index_base() == IndexBase::Zero {
            assert_eq!(&d, f, "index_base=zero differs from auto's 0-based reading");
        }
    }

    // Labels ignored: every number is a valid label, every row reads +1, the rest is as
    // with detected labels.
    let mut ignore = base.clone();
    ignore.libsvm.labels = LabelRule::Ignore;
    let ignored = parse(data, &ignore, "libsvm labels=ignore");
    if let Some(d) = &ignored {
        assert!(d.y().iter().all(|&y| y == 1.0), "labels=ignore gave a row other than +1");
    }
    if let Some(f) = &full {
        let d = ignored.as_ref().expect("labels=ignore refused what labels=detect accepted");
        assert_eq!(d.x(), f.x(), "labels=ignore changed the features");
        assert_eq!(d.index_base(), f.index_base(), "labels=ignore changed the index base");

        // The detected classes, given as known, read the file the same way.
        let mut known = base.clone();
        known.libsvm.labels = LabelRule::Known(f.classes());
        let d = parse(data, &known, "libsvm labels=known(detected)")
            .expect("labels=known(detected classes) refused the same data");
        assert_eq!(&d, f, "labels=known(detected classes) changed the result");
    }

    // A fixed feature count equal to the one found changes nothing; one less is refused
    // whenever some row uses the last feature. (A count of 0 is a configuration error.)
    if let Some(f) = full.as_ref().filter(|f| f.cols() > 0) {
        let mut fixed = base.clone();
        fixed.libsvm.n_features = Some(f.cols());
        let d = parse(data, &fixed, "libsvm n_features=cols")
            .expect("n_features = the detected count refused the same data");
        assert_eq!(&d, f, "n_features = the detected count changed the result");
        if f.cols() > 1 && f.nnz() > 0 {
            let mut less = base.clone();
            less.libsvm.n_features = Some(f.cols() - 1);
            assert!(
                parse(data, &less, "libsvm n_features=cols-1").is_none(),
                "n_features = cols - 1 accepted an index >= it"
            );
        }
    }
});
