//! Format detection plus both text parsers: never panics; an accepted file is a
//! consistent data set of the format `detect_format` names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::{Format, LoadOptions, detect_format, parse_bytes};
use wildsgd_fuzz::{check_dataset_parsed, describe, report};

fuzz_target!(|data: &[u8]| {
    let detected = detect_format(data);
    report("detect_format", &detected, |f| format!("{f:?}"));
    let r = parse_bytes(data, &LoadOptions::default());
    report("auto", &r, describe);
    if let Ok(d) = &r {
        check_dataset_parsed(d);
        let f = detected.as_ref().expect("parsed a file whose format detection failed");
        assert_ne!(*f, Format::Auto, "detect_format returned Auto");
        assert_eq!(d.format(), *f, "parsed as another format than detected");
        // Forcing the detected format is the same as detecting it.
        let forced = LoadOptions {
            format: *f,
            ..Default::default()
        };
        let again = parse_bytes(data, &forced).expect("forcing the detected format failed");
        assert_eq!(&again, d, "forcing the detected format changed the result");
    }
});
