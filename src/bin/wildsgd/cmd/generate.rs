//! `wildsgd gen sparse|ratings`: seeded synthetic data.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use flate2::Compression;
use flate2::write::GzEncoder;
use wildsgd::atomic::AtomicFile;
use wildsgd::generate::{RatingsGenConfig, SparseGenConfig};

use crate::args::GenCommand;
use crate::progress;

pub fn run(cmd: GenCommand) -> Result<()> {
    let out = match &cmd {
        GenCommand::Sparse(a) => a.output.clone(),
        GenCommand::Ratings(a) => a.output.clone(),
    };
    super::check_distinct(&[("--output", Some(&out))], &[])?;
    match cmd {
        GenCommand::Sparse(a) => {
            let cfg = SparseGenConfig {
                rows: a.rows,
                features: a.features,
                nnz_per_row: a.nnz_per_row,
                exponent: a.exponent,
                noise: a.noise,
                seed: a.seed,
            };
            cfg.check()?;
            let pb = progress::bar(a.rows as u64, "rows", a.quiet);
            write_output(&a.output, |w| cfg.write(w, |n| pb.set_position(n as u64)))?;
            pb.finish_and_clear();
        }
        GenCommand::Ratings(a) => {
            let cfg = RatingsGenConfig {
                users: a.users,
                items: a.items,
                rank: a.rank,
                density: a.density,
                noise: a.noise,
                seed: a.seed,
            };
            cfg.check()?;
            let pb = progress::bar(a.users as u64, "users", a.quiet);
            write_output(&a.output, |w| cfg.write(w, |n| pb.set_position(n as u64)))?;
            pb.finish_and_clear();
        }
    }
    Ok(())
}

/// Runs `body` on an atomic output file (gzip-compressed for a `.gz` name) and commits
/// it only when everything was written.
fn write_output(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> wildsgd::Result<std::io::Result<()>>,
) -> Result<()> {
    let werr = |source| wildsgd::Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        body(&mut out)?.map_err(super::stdout_error)?;
        return out.flush().map_err(|e| super::stdout_error(e).into());
    }
    let mut file = AtomicFile::create(path).map_err(werr)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = GzEncoder::new(&mut file, Compression::fast());
        body(&mut gz)?.map_err(werr)?;
        gz.finish().map_err(werr)?;
    } else {
        body(&mut file)?.map_err(werr)?;
    }
    file.commit().map_err(werr)?;
    Ok(())
}
