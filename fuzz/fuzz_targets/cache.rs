//! Binary data cache decoder (`decode_bytes`, with the identity recorded in the bytes):
//! never panics; an accepted cache holds a consistent data set. Each input is decoded
//! as given and again with its CRC-32 recomputed, so mutations get past the checksum to
//! the structural checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::cache::decode_bytes;
use wildsgd_fuzz::{check_dataset, describe, report, with_fixed_crc};

/// magic (8) + version (4) + options fingerprint (8) + source length (8) + mtime (16).
const HEADER: usize = 44;

fn decode(bytes: &[u8], what: &str) {
    let r = decode_bytes(bytes);
    report(what, &r, describe);
    if let Ok(d) = &r {
        check_dataset(d);
    }
}

fuzz_target!(|data: &[u8]| {
    decode(data, "cache");
    if let Some(fixed) = with_fixed_crc(data, HEADER)
        && fixed[..] != data[..]
    {
        decode(&fixed, "cache crc fixed");
    }
});
