//! Ratings text parser: never panics; what it accepts has one user, item and finite
//! rating per entry with dense ids in range, and forcing the detected layout or a
//! short line limit does not change an accepted result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wildsgd::data::{Dataset, Format, LoadOptions, RatingsDataset, RatingsLayout, parse_bytes};
use wildsgd_fuzz::{check_ratings_parsed, describe, report};

fn parse(data: &[u8], opts: &LoadOptions, what: &str) -> Option<RatingsDataset> {
    let r = parse_bytes(data, opts);
    report(what, &r, describe);
    match r {
        Ok(Dataset::Ratings(d)) => {
            check_ratings_parsed(&d);
            Some(d)
        }
        Ok(other) => panic!("{what}: format forced to ratings gave {}", describe(&other)),
        Err(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let base = LoadOptions {
        format: Format::Ratings,
        ..Default::default()
    };
    let full = parse(data, &base, "ratings");

    let mut short = base.clone();
    short.ratings.max_line_bytes = 64;
    if let Some(d) = parse(data, &short, "ratings max_line_bytes=64") {
        assert_eq!(Some(&d), full.as_ref(), "max_line_bytes=64 changed an accepted result");
    }

    for layout in [
        RatingsLayout::Tab,
        RatingsLayout::DoubleColon,
        RatingsLayout::Comma,
        RatingsLayout::Blank,
    ] {
        let mut forced = base.clone();
        forced.ratings.layout = Some(layout);
        let got = parse(data, &forced, &format!("ratings layout={layout:?}"));
        if let Some(d) = &got {
            assert_eq!(d.layout, layout, "forced layout not kept");
        }
        // Forcing the layout that detection picks is the same as detecting it.
        if let Some(f) = &full
            && f.layout == layout
        {
            assert_eq!(got.as_ref(), Some(f), "forcing the detected layout changed the result");
        }
    }
});
