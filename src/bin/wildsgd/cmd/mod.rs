//! One module per subcommand.

pub mod bench;
pub mod compare;
pub mod generate;
pub mod info;
pub mod predict;
pub mod train;

use anyhow::Result;
use wildsgd::data::{Dataset, Format, IndexBase, LoadOptions};

use crate::args::{DataArgs, FormatArg, IndexBaseArg};
use crate::progress;

/// Converts the data flags to the library's options.
pub fn load_options(a: &DataArgs) -> LoadOptions {
    let mut o = LoadOptions {
        format: match a.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Libsvm => Format::Libsvm,
            FormatArg::Ratings => Format::Ratings,
        },
        cache: a.cache,
        ..LoadOptions::default()
    };
    o.libsvm.index_base = match a.index_base {
        IndexBaseArg::Auto => IndexBase::Auto,
        IndexBaseArg::One => IndexBase::One,
        IndexBaseArg::Zero => IndexBase::Zero,
    };
    o.libsvm.n_features = a.n_features;
    o
}

/// Loads a data file with a spinner, warning on stderr when its cache could not be used.
pub fn load(
    path: &std::path::Path,
    a: &DataArgs,
    quiet: bool,
) -> Result<(Dataset, wildsgd::data::cache::CacheStatus)> {
    if a.n_features == Some(0) {
        return Err(wildsgd::Error::config("n-features", "must be at least 1").into());
    }
    let pb = progress::spinner(&format!("reading {}", path.display()), quiet);
    let loaded = wildsgd::data::load_with_status(path, &load_options(a));
    pb.finish_and_clear();
    let (data, status) = loaded?;
    if let wildsgd::data::cache::CacheStatus::WriteFailed(why) = &status {
        eprintln!("warning: cache not written: {why}");
    }
    Ok((data, status))
}
