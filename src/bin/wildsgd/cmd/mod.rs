//! One module per subcommand.

pub mod bench;
pub mod compare;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod generate;
pub mod info;
pub mod predict;
pub mod train;

use std::path::Path;

use anyhow::Result;
use wildsgd::data::{Dataset, Format, IndexBase, LabelRule, LoadOptions};

use crate::args::{DataArgs, FormatArg, IndexBaseArg};
use crate::progress;

/// A failed write to standard output, named as such (a full disk behind a redirection
/// says which output failed).
pub fn stdout_error(source: std::io::Error) -> wildsgd::Error {
    wildsgd::Error::Write {
        path: "<standard output>".into(),
        source,
    }
}

/// Runs `f` on buffered standard output and flushes it, naming stdout in any error.
pub fn to_stdout(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    f(&mut out)
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;
    Ok(())
}

/// Refuses to run when two outputs, or an output and an input, are the same file (one
/// would overwrite the other), or when an output's directory does not exist (found
/// before the work, not after it). Outputs are `(flag, path)`; `-` is stdout.
pub fn check_distinct(
    outputs: &[(&str, Option<&Path>)],
    inputs: &[(&str, Option<&Path>)],
) -> Result<()> {
    let outs: Vec<(&str, &Path)> = outputs
        .iter()
        .filter_map(|(f, p)| p.filter(|p| *p != Path::new("-")).map(|p| (*f, p)))
        .collect();
    for (flag, p) in &outs {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(wildsgd::Error::Write {
                path: p.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{flag}: the directory {} does not exist", dir.display()),
                ),
            }
            .into());
        }
        if p.is_dir() {
            return Err(wildsgd::Error::config(
                "output",
                format!("{flag} {} is a directory", p.display()),
            )
            .into());
        }
    }
    for (i, (fa, a)) in outs.iter().enumerate() {
        for (fb, b) in &outs[i + 1..] {
            if wildsgd::atomic::same_file(a, b) {
                return Err(wildsgd::Error::config(
                    "output",
                    format!(
                        "{fa} and {fb} name the same file ({}): each output needs its own",
                        a.display()
                    ),
                )
                .into());
            }
        }
        for (fb, b) in inputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))) {
            if wildsgd::atomic::same_file(a, b) {
                return Err(wildsgd::Error::config(
                    "output",
                    format!(
                        "{fa} {} is the {fb} input file: writing it would destroy the input",
                        a.display()
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// What a trained model says about reading more LIBSVM data for it: the training
/// file's index base (used when `--index-base` is `auto`) and how to read labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadAs {
    pub index_base: Option<IndexBase>,
    pub labels: LabelRule,
}

impl ReadAs {
    /// Read as the training data `d` was.
    pub fn like(d: &wildsgd::SparseDataset) -> Self {
        ReadAs {
            index_base: Some(d.index_base()),
            labels: LabelRule::Known(d.classes()),
        }
    }
}

/// Converts the data flags to the library's options.
pub fn load_options(a: &DataArgs, read_as: ReadAs) -> LoadOptions {
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
        IndexBaseArg::Auto => read_as.index_base.unwrap_or(IndexBase::Auto),
        IndexBaseArg::One => IndexBase::One,
        IndexBaseArg::Zero => IndexBase::Zero,
    };
    o.libsvm.n_features = a.n_features;
    o.libsvm.labels = read_as.labels;
    o
}

/// Loads a data file with a spinner, warning on stderr when its cache could not be used.
pub fn load(
    path: &std::path::Path,
    a: &DataArgs,
    quiet: bool,
    read_as: ReadAs,
) -> Result<(Dataset, wildsgd::data::cache::CacheStatus)> {
    if a.n_features == Some(0) {
        return Err(wildsgd::Error::config("n-features", "must be at least 1").into());
    }
    // An explicit numbering that contradicts the model's training data would shift
    // every feature by one.
    let explicit = match a.index_base {
        IndexBaseArg::One => Some(IndexBase::One),
        IndexBaseArg::Zero => Some(IndexBase::Zero),
        IndexBaseArg::Auto => None,
    };
    if let (Some(flag), Some(model)) = (explicit, read_as.index_base)
        && flag != model
    {
        let base = |b| {
            if b == IndexBase::Zero {
                "0-based"
            } else {
                "1-based"
            }
        };
        return Err(wildsgd::Error::config(
            "index-base",
            format!(
                "--index-base {} contradicts the training data, which was {}: reading {} so would shift every feature by one (drop --index-base)",
                base(flag),
                base(model),
                path.display()
            ),
        )
        .into());
    }
    let pb = progress::spinner(&format!("reading {}", path.display()), quiet);
    let loaded = wildsgd::data::load_with_status(path, &load_options(a, read_as));
    pb.finish_and_clear();
    let (data, status) = loaded?;
    if let wildsgd::data::cache::CacheStatus::WriteFailed(why) = &status {
        eprintln!("warning: cache not written: {why}");
    }
    if let Dataset::Ratings(_) = &data {
        for (id, flag) in [
            ("index_base", "--index-base"),
            ("n_features", "--n-features"),
        ] {
            if crate::args::given(id) {
                return Err(wildsgd::Error::config(
                    "data",
                    format!(
                        "{flag} is for LIBSVM data; {} is a ratings file",
                        path.display()
                    ),
                )
                .into());
            }
        }
    }
    Ok((data, status))
}
