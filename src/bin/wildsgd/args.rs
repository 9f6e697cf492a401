//! Command-line flags (clap derive), converted to library options in the commands.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand, ValueEnum};

/// wildsgd: lock-free parallel SGD for sparse linear models and matrix factorization.
#[derive(Debug, Parser)]
#[command(name = "wildsgd", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Most memory a run may take for data and models, e.g. 4G or 512M [what the system has
    /// available: free memory, and the room under `ulimit -v`].
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// The flags (clap ids: field names) given on the command line, not defaulted.
static GIVEN: OnceLock<Vec<String>> = OnceLock::new();

/// Records which flags the command line gave, down the subcommands.
pub fn record_given(m: &ArgMatches) {
    let mut ids = Vec::new();
    let mut cur = Some(m);
    while let Some(mm) = cur {
        ids.extend(
            mm.ids()
                .filter(|id| {
                    mm.try_get_raw(id.as_str()).is_ok()
                        && mm.value_source(id.as_str()) == Some(ValueSource::CommandLine)
                })
                .map(|id| id.to_string()),
        );
        cur = mm.subcommand().map(|(_, s)| s);
    }
    let _ = GIVEN.set(ids);
}

/// True when flag `id` (its field name) was given on the command line.
pub fn given(id: &str) -> bool {
    GIVEN.get().is_some_and(|g| g.iter().any(|x| x == id))
}

/// A number that fits an `f32` (1e300 is refused, not turned into infinity).
/// `--lr`: a rate, or `auto` (`None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub Option<f32>);

fn lr_arg(s: &str) -> Result<Rate, String> {
    if s.trim() == "auto" {
        Ok(Rate(None))
    } else {
        finite_f32(s).map(|v| Rate(Some(v)))
    }
}

/// `--average`: a start epoch, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Average(pub Option<f64>);

fn average_arg(s: &str) -> Result<Average, String> {
    match s.trim() {
        "none" | "off" => Ok(Average(None)),
        t => match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Average(Some(v))),
            _ => Err(format!(
                "expected a start epoch (a number, at least 0) or none, got `{s}`"
            )),
        },
    }
}

fn finite_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a finite number, got `{s}`")),
    }
}

fn finite_f32(s: &str) -> Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got `{s}`"))?;
    if v.is_nan() {
        return Err(format!("expected a number, got `{s}`"));
    }
    if v.abs() > f64::from(f32::MAX) {
        return Err(format!(
            "{s} is beyond the largest value an f32 holds (3.4e38)"
        ));
    }
    Ok(v as f32)
}

/// `4G`, `512M`, `100k` or plain bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("expected a size such as 4G or 512M, got `{s}`")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected a size such as 4G or 512M, got `{s}`"))?;
    let bytes = v * mult as f64;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("expected a positive size, got `{s}`"));
    }
    Ok(bytes as u64)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a data file: size, density, labels or ratings, and the Hogwild!
    /// sparsity statistics Ω, Δ and ρ.
    Info(InfoArgs),
    /// Generate seeded synthetic data for benchmarks.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Train a model and report per-epoch metrics.
    Train(Box<TrainArgs>),
    /// Write one prediction per line for a data file.
    Predict(PredictArgs),
    /// Evaluate a saved model on labelled data (or ratings, for mf).
    Eval(EvalArgs),
    /// Top items a user has not rated, by predicted rating (mf models).
    Recommend(RecommendArgs),
    /// Train several optimizers on the same data and draw their test loss (or RMSE) per epoch.
    Compare(Box<CompareArgs>),
    /// Time every (scheme, threads) pair: seconds per epoch, speedups, throughput.
    Bench(Box<BenchArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    Logistic,
    Hinge,
    Squared,
    Mf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    InvTime,
    Step,
    Exp,
    Bottou,
    Plateau,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    Shuffle,
    None,
    Curriculum,
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum L2FormArg {
    Lazy,
    Degree,
    Plain,
}

/// Everything about how to train, shared by `train` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct TrainOpts {
    /// Held-out data evaluated after every epoch.
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Split off this seeded fraction of the training data as held-out data instead.
    #[arg(long, value_name = "FRACTION", conflicts_with = "test")]
    pub holdout: Option<f64>,
    /// Model: logistic regression, linear SVM (hinge), least squares, or matrix factorization [logistic; mf for a ratings file].
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// Factors per user and item (mf) [32].
    #[arg(long, value_name = "K", default_value_t = wildsgd::mf::DEFAULT_RANK)]
    pub rank: usize,
    /// Row- and column-blocks of the block scheme's grid (mf) [max(2·threads+1, 8)].
    #[arg(long, value_name = "N")]
    pub blocks: Option<usize>,
    /// Standard deviation of the initial factors, in rating standard deviations (mf).
    #[arg(value_parser = finite_f32, long, value_name = "S", default_value_t = wildsgd::mf::MfConfig::default().init_std)]
    pub init_std: f32,
    /// Passes over the data [10: the library's default for every model].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Base learning rate, or `auto`: for linear models calibrated on a 1,000-row sample (Bottou's procedure), for mf the optimizer's default [auto].
    #[arg(value_parser = lr_arg, long, value_name = "auto|ETA")]
    pub lr: Option<Rate>,
    /// Learning-rate schedule [default: bottou (per-update, λ-aware) for sgd/momentum/nag, constant otherwise].
    #[arg(long, value_enum)]
    pub lr_schedule: Option<ScheduleArg>,
    /// k of inv-time (η/(1+k·epoch)) and exp (η·exp(−k·epoch)).
    #[arg(value_parser = finite_f32, long, value_name = "K")]
    pub lr_decay: Option<f32>,
    /// Epochs between step decays.
    #[arg(long, value_name = "N")]
    pub lr_step: Option<usize>,
    /// Factor of step decay and of plateau reduction.
    #[arg(value_parser = finite_f32, long, value_name = "BETA")]
    pub lr_factor: Option<f32>,
    /// Epochs without improvement before plateau reduces the rate.
    #[arg(long, value_name = "N")]
    pub lr_patience: Option<usize>,
    /// Examples per update: 1 (SGD), B (mini-batch), or 0 / `full` (batch gradient descent).
    #[arg(long, default_value = "1", value_parser = parse_batch)]
    pub batch_size: usize,
    /// L2 strength λ of (λ/2)·‖w‖² [default: 1/n, i.e. C = 1].
    #[arg(long, value_name = "LAMBDA", conflicts_with = "c")]
    pub l2: Option<f64>,
    /// LIBLINEAR's C instead of λ: λ = 1/(C·n).
    #[arg(long = "C", value_name = "C")]
    pub c: Option<f64>,
    /// L1 strength λ1 of λ1·‖w‖₁.
    #[arg(long, default_value_t = 0.0, value_name = "LAMBDA1")]
    pub l1: f64,
    /// How L2 is applied to sparse updates: exact lazy scaling (linear default), plain per-rating (mf default), or Hogwild!'s degree-scaled form.
    #[arg(long, value_enum)]
    pub l2_form: Option<L2FormArg>,
    /// Fit no bias term.
    #[arg(long)]
    pub no_bias: bool,
    /// Example order each epoch.
    #[arg(long, value_enum, default_value = "shuffle")]
    pub order: OrderArg,
    /// Gradient noise η: variance η/(1+t)^γ added to each touched coordinate's gradient.
    #[arg(value_parser = finite_f32, long, default_value_t = 0.0, value_name = "ETA")]
    pub grad_noise: f32,
    /// Annealing exponent γ of the gradient noise.
    #[arg(value_parser = finite_f32, long, default_value_t = wildsgd::train::TrainConfig::default().grad_noise_gamma, value_name = "GAMMA")]
    pub grad_noise_gamma: f32,
    /// Stop before --epochs once converged: dual-cd's duality gap at most TOL times the objective, or (the others) the regularized training objective decreasing by at most TOL times itself over an epoch.
    #[arg(long, value_name = "TOL", value_parser = finite_f64)]
    pub tol: Option<f64>,
    /// Average the iterates from epoch START on (averaged SGD), or `none` for the last iterate: the model evaluated and saved is the average [1: after the first epoch].
    #[arg(long, value_name = "START|none", num_args = 0..=1, default_missing_value = "1", value_parser = average_arg)]
    pub average: Option<Average>,
    /// How dual-cd's threads write the shared weights: atomic (compare-and-swap, PASSCoDe-Atomic) or wild (plain stores, PASSCoDe-Wild).
    #[arg(long, value_enum, value_name = "WRITES")]
    pub passcode: Option<PasscodeArg>,
    /// Stop after this many epochs without a better test loss and keep the best model.
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<usize>,
    /// Seed (shuffling, holdout split, noise).
    #[arg(long, default_value_t = wildsgd::train::TrainConfig::default().seed)]
    pub seed: u64,
    /// Momentum γ (momentum, nag).
    #[arg(value_parser = finite_f32, long, value_name = "GAMMA")]
    pub momentum: Option<f32>,
    /// β1 (adam, adamax, nadam, adamw).
    #[arg(value_parser = finite_f32, long)]
    pub beta1: Option<f32>,
    /// β2 (adam, adamax, nadam, adamw).
    #[arg(value_parser = finite_f32, long)]
    pub beta2: Option<f32>,
    /// ε (adagrad, adadelta, rmsprop, adam, nadam, adamw).
    #[arg(value_parser = finite_f32, long)]
    pub eps: Option<f32>,
    /// Decay ρ of the running averages (adadelta, rmsprop).
    #[arg(value_parser = finite_f32, long)]
    pub rho: Option<f32>,
    /// Decoupled weight decay (adamw).
    #[arg(value_parser = finite_f32, long)]
    pub weight_decay: Option<f32>,
    /// β of FTRL-Proximal's per-coordinate rate.
    #[arg(value_parser = finite_f32, long)]
    pub ftrl_beta: Option<f32>,
    /// Hide the progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub tuning: EngineTuning,
    #[command(flatten)]
    pub data: DataArgs,
}

/// The optimizers, dual coordinate descent and SAGA.
pub const METHODS: [&str; 13] = [
    "sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam", "adamw",
    "ftrl", "dual-cd", "saga",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersusArg {
    Epochs,
    Seconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PasscodeArg {
    Atomic,
    Wild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    Sequential,
    Hogwild,
    Locked,
    RoundRobin,
    DelayTolerant,
    Block,
}

/// Scheme and thread count (`bench` takes lists instead).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// How threads share the work [hogwild for linear models; block for mf].
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// Threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The engine's tuning flags.
#[derive(Debug, Clone, Args)]
pub struct EngineTuning {
    /// Leave threads unpinned (by default each is pinned to its own core).
    #[arg(long)]
    pub no_pin: bool,
    /// Per-thread replicas of hot coordinates: auto, none, all, or a count N.
    #[arg(long, default_value = "auto", value_name = "auto|none|all|N")]
    pub replicate: String,
    /// Updates between merges of a thread's replica [default: 256 for hot coordinates; for a whole-model replica, about 16 model sizes of work].
    #[arg(long, value_name = "N")]
    pub sync_every: Option<usize>,
    /// Rows per shuffled block [default: 64 from 16,384 rows up, else 1].
    #[arg(long, value_name = "B")]
    pub shuffle_block: Option<usize>,
    /// Apply each thread's gradients D of its updates after computing them.
    #[arg(long, default_value_t = 0, value_name = "D")]
    pub delay: usize,
    /// Compare-and-swap additions instead of load/store: no update is ever lost.
    #[arg(long)]
    pub lossless: bool,
}

fn parse_batch(s: &str) -> Result<usize, String> {
    if s == "full" {
        return Ok(0);
    }
    s.parse()
        .map_err(|_| format!("expected a number of examples or `full`, got `{s}`"))
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Training data.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Optimizer [sgd; adagrad for mf].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(METHODS))]
    pub optimizer: Option<String>,
    /// Write the trained model here (atomically).
    #[arg(long, value_name = "MODEL")]
    pub output: Option<PathBuf>,
    /// Write JSON Lines reports (epoch and done events) to this file, or `-` for stdout.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub dist: DistArgs,
    #[command(flatten)]
    pub opts: TrainOpts,
}

/// Training across processes (`mpirun -n P wildsgd train --distributed SCHEME`; needs a
/// build with `--features distributed`).
#[derive(Debug, Clone, Args)]
pub struct DistArgs {
    /// Train across the MPI ranks of this job with this scheme: average, easgd, downpour or delay-tolerant for linear models, dsgd for mf (run under mpirun; see README).
    #[arg(long, value_name = "SCHEME", value_parser = clap::builder::PossibleValuesParser::new(["average", "easgd", "downpour", "delay-tolerant", "dsgd"]))]
    pub distributed: Option<String>,
    /// easgd: the elastic rate α in (0, 1] [default: 0.9 / ranks].
    #[arg(long, value_name = "A")]
    pub elastic_alpha: Option<f32>,
    /// average, easgd: τ, the rows each rank trains between two exchanges [default: one epoch].
    #[arg(long, value_name = "ROWS")]
    pub tau: Option<usize>,
    /// downpour, delay-tolerant: rows between two pushes of a rank's gradients.
    #[arg(long, value_name = "N")]
    pub n_push: Option<usize>,
    /// downpour, delay-tolerant: rows between two fetches of the parameters, a multiple of --n-push [default: --n-push].
    #[arg(long, value_name = "N")]
    pub n_fetch: Option<usize>,
    /// Testing: rank R sleeps MS milliseconds before each push (served schemes) or each epoch's exchange.
    #[arg(long, value_name = "R:MS")]
    pub slow_rank: Option<String>,
    /// Longest wait for another rank, in seconds, before the job is aborted.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub comm_timeout: f64,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct CompareArgs {
    /// Training data.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Comma-separated optimizers to compare, each at its default learning rate [all eleven and dual-cd; the eleven for mf].
    #[arg(long, value_delimiter = ',')]
    pub optimizers: Option<Vec<String>>,
    /// The chart: test loss (test RMSE for mf) per epoch, one line per optimizer (`.svg` or `.png`).
    #[arg(long, value_name = "PATH")]
    pub plot: PathBuf,
    /// The chart's horizontal axis: epochs, or training seconds (the cost of each method).
    #[arg(long, value_enum, default_value = "epochs")]
    pub versus: VersusArg,
    /// Also write every run's JSON Lines reports here (or `-`).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub opts: TrainOpts,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// Training data.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Comma-separated thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Comma-separated schemes (sequential always runs, as the baseline).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hogwild,locked,sequential"
    )]
    pub schemes: Vec<SchemeArg>,
    /// Runs of each (scheme, threads) pair; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Optimizer [sgd; adagrad for mf].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(METHODS))]
    pub optimizer: Option<String>,
    /// Write the table as CSV here.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// Draw speedup over one thread against threads (`.svg`).
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Write `bench` events (JSON Lines) here, or `-`.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub opts: TrainOpts,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A model written by `train --output`.
    #[arg(long)]
    pub model: PathBuf,
    /// Data to predict (labels are read but not used).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Write predictions here (atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Print the predicted class, as the training file wrote its labels (linear models).
    #[arg(long)]
    pub labels: bool,
    #[command(flatten)]
    pub format: DataArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A model written by `train --output`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub format: DataArgs,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Model file written by `train --model mf --output`.
    #[arg(long)]
    pub model: PathBuf,
    /// User id, as in the ratings file.
    #[arg(long)]
    pub user: u64,
    /// Number of items.
    #[arg(short, long, default_value_t = 10)]
    pub n: usize,
    /// One JSON object per item instead of a table.
    #[arg(long)]
    pub json: bool,
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
#[command(allow_negative_numbers = true)]
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
#[command(allow_negative_numbers = true)]
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
