//! Reading through the gzip layer (`from_bufread`): never panics, on the raw bytes
//! (plain text, or gzip streams to take apart) and on the bytes gzip-compressed here
//! (valid streams, so the parsers behind the decompressor are reached). Compressing
//! must change nothing: `from_bufread(gz(data))` agrees with `parse_bytes(data)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::{LoadOptions, from_bufread, parse_bytes};
use wildsgd_fuzz::{check_dataset_parsed, describe, gz, report};

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions::default();

    let raw = from_bufread(data, &opts);
    report("gzip raw", &raw, describe);
    if let Ok(d) = &raw {
        check_dataset_parsed(d);
    }

    let packed = gz(data);
    let via_gz = from_bufread(&packed[..], &opts);
    report("gzip gz(data)", &via_gz, describe);
    if let Ok(d) = &via_gz {
        check_dataset_parsed(d);
    }
    let direct = parse_bytes(data, &opts);
    match (&via_gz, &direct) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "gzip-compressing changed the result"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "gzip-compressing changed acceptance: via gzip {:?}, direct {:?}",
            a.as_ref().map(describe),
            b.as_ref().map(describe)
        ),
    }
    // A 64-byte line limit, checked while decompressing and again while parsing, only
    // adds errors: when it still succeeds, the result is the same.
    let mut short = opts.clone();
    short.libsvm.max_line_bytes = 64;
    short.ratings.max_line_bytes = 64;
    let limited = from_bufread(&packed[..], &short);
    report("gzip gz(data) max_line_bytes=64", &limited, describe);
    if let Ok(d) = &limited {
        assert_eq!(Some(d), direct.as_ref().ok(), "max_line_bytes=64 changed an accepted result");
    }
    // Plain (non-gzip) bytes go through unchanged.
    if !data.starts_with(&[0x1f, 0x8b]) {
        assert_eq!(raw.is_ok(), direct.is_ok(), "from_bufread differs from parse_bytes");
        if let (Ok(a), Ok(b)) = (&raw, &direct) {
            assert_eq!(a, b, "from_bufread differs from parse_bytes");
        }
    }
});
