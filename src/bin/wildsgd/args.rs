//! Command-line flags (clap derive), converted to library options in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wildsgd: lock-free parallel SGD for sparse linear models and matrix factorization.
#[derive(Debug, Parser)]
#[command(name = "wildsgd", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a data file: size, density, labels or ratings, and the Hogwild!
    /// sparsity statistics Ω, Δ and ρ.
    Info(InfoArgs),
    /// Generate seeded synthetic data for benchmarks.
    #[command(subcommand)]
    Gen(GenCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    Libsvm,
    Ratings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IndexBaseArg {
    Auto,
    One,
    Zero,
}

/// Flags shared by every command that reads data.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Input format (detected from the content when `auto`).
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// LIBSVM index numbering: `auto` reads 1-based unless an index 0 occurs.
    #[arg(long, value_enum, default_value = "auto")]
    pub index_base: IndexBaseArg,
    /// Fixed number of features (so a test file lines up with its training file).
    #[arg(long, value_name = "D")]
    pub n_features: Option<usize>,
    /// Keep a binary cache beside the input (FILE.wsgd-cache) and load from it when valid.
    #[arg(long)]
    pub cache: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The data file (plain text or gzip).
    pub file: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Most entries visited while computing ρ exactly before falling back to bounds.
    #[arg(long, default_value_t = wildsgd::data::stats::DEFAULT_RHO_BUDGET, value_name = "N")]
    pub rho_budget: u64,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Power-law sparse classification rows (LIBSVM text), shaped like RCV1 by default.
    Sparse(GenSparseArgs),
    /// Low-rank ratings (tab-separated user, item, rating).
    Ratings(GenRatingsArgs),
}

#[derive(Debug, Args)]
pub struct GenSparseArgs {
    /// Number of rows.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Number of features.
    #[arg(long, default_value_t = 47_236)]
    pub features: usize,
    /// Distinct non-zeros per row.
    #[arg(long, default_value_t = 75)]
    pub nnz_per_row: usize,
    /// Power-law exponent of feature popularity (0 = uniform).
    #[arg(long, default_value_t = 0.6)]
    pub exponent: f64,
    /// Probability that a label is flipped.
    #[arg(long, default_value_t = 0.05)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file (`.gz` is compressed). Written atomically.
    #[arg(long, short)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GenRatingsArgs {
    /// Number of users.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Number of items.
    #[arg(long, default_value_t = 5_000)]
    pub items: usize,
    /// Rank of the hidden factors.
    #[arg(long, default_value_t = 10)]
    pub rank: usize,
    /// Probability that a (user, item) pair is rated.
    #[arg(long, default_value_t = 0.01)]
    pub density: f64,
    /// Standard deviation of the rating noise.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file (`.gz` is compressed). Written atomically.
    #[arg(long, short)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}
