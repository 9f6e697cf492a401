//! Training across processes on MPI (the `distributed` feature): `mpirun -n P wildsgd
//! train --distributed SCHEME ...`. MPI (rsmpi over the system's Open MPI) is the only
//! transport; nothing here opens a socket.
//!
//! Each rank trains on its shard of the rows (rank r keeps rows r, r + P, r + 2P, …),
//! and the scheme says how the ranks' models meet (ALGORITHMS.md §6–§8):
//!
//! - [`DistScheme::Average`]: each rank runs the engine (its Hogwild! threads, pinned)
//!   for an epoch, then an allreduce averages the ranks' weights and their averaged
//!   iterates (model averaging with τ = one epoch).
//! - [`DistScheme::Easgd`]: synchronous Elastic Averaging SGD with τ = one epoch: each
//!   rank's weights x^i move by α(x̃ − x^i) toward the center x̃, which moves by the sum
//!   of those pulls (an allreduce); the model is the center.
//! - [`DistScheme::Downpour`]: rank 0 serves the parameters and applies AdaGrad to every
//!   gradient pushed to it; every rank (rank 0 too, on the served parameters directly)
//!   fetches the parameters its next `n_fetch` rows need and pushes its rows' gradients
//!   every `n_push` rows, with point-to-point messages.
//! - [`DistScheme::DelayTolerant`]: the same server with AdaptiveRevision (§6) instead of
//!   AdaGrad: a fetch returns (x, ḡ), a push sends each gradient with the ḡ it was
//!   computed against, so the server adapts to the real delay of each gradient.
//! - [`DistScheme::Dsgd`], matrix factorization ([`fit_mf`]): DSGD's strata (Gemulla et
//!   al. 2011), the FPSG grid across ranks: rank r owns user block r, and in stratum s
//!   it trains item block (r + s) mod P, so no two ranks touch the same factors at
//!   once; the changed rows are exchanged (allreduce) after each stratum.
//!
//! ```no_run
//! // Run with `mpirun -n 2 --bind-to none ./my_program`.
//! use wildsgd::data::{LibsvmOptions, load_libsvm};
//! use wildsgd::distributed::{DistConfig, DistScheme, Job, fit, shard};
//! use wildsgd::train::TrainConfig;
//!
//! let job = Job::init()?;
//! let all = load_libsvm("train.svm".as_ref(), &LibsvmOptions::default())?;
//! let mine = shard(&all, job.rank(), job.size())?;
//! let dist = DistConfig { scheme: DistScheme::Average, ..DistConfig::default() };
//! let out = fit(&job, &mine, None, &TrainConfig::default(), &dist, |_| {
//!     std::ops::ControlFlow::Continue(())
//! })?;
//! if job.rank() == 0 {
//!     println!("objective {} after {} epochs", out.done.objective, out.done.epochs);
//! }
//! # Ok::<(), wildsgd::Error>(())
//! ```
//!
//! Failures: every wait on another rank is bounded ([`DistConfig::timeout`]); a rank
//! that fails or waits too long prints an error naming itself and what it waited for,
//! and aborts the job (`MPI_Abort`), so `mpirun` exits non-zero and no rank hangs. Only
//! rank 0 writes the model and the report, after the last epoch (atomically, as every
//! run does), so a failed job leaves no half-written output.

mod comm;
mod server;

use std::time::Duration;

use crate::data::SparseDataset;
use crate::error::{Error, Result};
use crate::train::{Progress, TrainConfig, TrainOutcome};

pub use comm::Job;

/// How the ranks' models meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistScheme {
    /// Model averaging every epoch (allreduce).
    Average,
    /// Synchronous Elastic Averaging SGD, τ = one epoch (allreduce).
    Easgd,
    /// A parameter server on rank 0 applying AdaGrad (point-to-point).
    Downpour,
    /// A parameter server on rank 0 applying AdaptiveRevision (point-to-point).
    DelayTolerant,
    /// Matrix factorization: DSGD's rotating strata (allreduce).
    Dsgd,
}

impl DistScheme {
    /// Every scheme, in the CLI's order.
    pub const ALL: [DistScheme; 5] = [
        DistScheme::Average,
        DistScheme::Easgd,
        DistScheme::Downpour,
        DistScheme::DelayTolerant,
        DistScheme::Dsgd,
    ];

    /// The CLI's name.
    pub fn name(self) -> &'static str {
        match self {
            DistScheme::Average => "average",
            DistScheme::Easgd => "easgd",
            DistScheme::Downpour => "downpour",
            DistScheme::DelayTolerant => "delay-tolerant",
            DistScheme::Dsgd => "dsgd",
        }
    }

    /// The scheme called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the schemes when `name` is none of them.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                Error::config(
                    "distributed",
                    format!(
                        "unknown scheme `{name}` (expected one of: {})",
                        Self::ALL.map(|s| s.name()).join(", ")
                    ),
                )
            })
    }

    /// Whether rank 0 serves the parameters (downpour, delay-tolerant).
    pub fn served(self) -> bool {
        matches!(self, DistScheme::Downpour | DistScheme::DelayTolerant)
    }
}

/// Settings of a run across processes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistConfig {
    /// The scheme.
    pub scheme: DistScheme,
    /// EASGD's elastic rate α = ηρ; `None` takes β/P with β = 0.9 (the paper's choice).
    pub alpha: Option<f32>,
    /// Average, easgd: τ, the rows a rank trains between two exchanges, rounded so that
    /// an epoch has a whole number of exchanges; `None`: one exchange per epoch.
    pub tau: Option<usize>,
    /// Downpour, delay-tolerant: rows between two pushes of a rank's gradients.
    pub n_push: usize,
    /// Downpour, delay-tolerant: rows between two fetches of the parameters (a multiple
    /// of `n_push`).
    pub n_fetch: usize,
    /// Testing: this rank sleeps this long before each push (downpour, delay-tolerant) or
    /// each epoch's exchange (average, easgd): a slow worker.
    pub slow: Option<(usize, Duration)>,
    /// The longest wait for another rank before the job is aborted.
    pub timeout: Duration,
}

/// Default rows between pushes: on 47,000 features and 75 non-zeros a row, a push of 64
/// rows' gradients is about 40 KB, and the round trip costs about as much as the rows.
pub const DEFAULT_N_PUSH: usize = 64;

/// Default bound on any wait for another rank.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for DistConfig {
    fn default() -> Self {
        DistConfig {
            scheme: DistScheme::Average,
            alpha: None,
            tau: None,
            n_push: DEFAULT_N_PUSH,
            n_fetch: DEFAULT_N_PUSH,
            slow: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl DistConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        if let Some(a) = self.alpha
            && !(a.is_finite() && a > 0.0 && a <= 1.0)
        {
            return Err(Error::config(
                "alpha",
                format!("must be in (0, 1], got {a}"),
            ));
        }
        if self.tau == Some(0) {
            return Err(Error::config("tau", "must be at least 1 row"));
        }
        if self.tau.is_some() && self.scheme.served() {
            return Err(Error::config(
                "tau",
                format!(
                    "is for average and easgd; {} exchanges every `n_push` rows",
                    self.scheme.name()
                ),
            ));
        }
        if self.n_push == 0 {
            return Err(Error::config("n_push", "must be at least 1"));
        }
        if self.n_fetch == 0 || !self.n_fetch.is_multiple_of(self.n_push) {
            return Err(Error::config(
                "n_fetch",
                format!(
                    "must be a positive multiple of `n_push` ({}), got {}",
                    self.n_push, self.n_fetch
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be positive"));
        }
        Ok(())
    }
}

/// Rank `rank`'s shard of `data` out of `ranks`: rows rank, rank + ranks, … (every
/// rank gets the same columns, and classes spread evenly even in a sorted file).
///
/// # Errors
/// [`Error::Config`] when there are fewer rows than ranks.
pub fn shard(data: &SparseDataset, rank: usize, ranks: usize) -> Result<SparseDataset> {
    if data.rows() < ranks {
        return Err(Error::config(
            "data",
            format!("{} rows cannot be shared among {ranks} ranks", data.rows()),
        ));
    }
    let rows: Vec<usize> = (rank..data.rows()).step_by(ranks).collect();
    Ok(data.select(&rows))
}

/// Trains on this rank's `shard` with the other ranks of `job` under `dist`, evaluating
/// on `valid` (given on rank 0 at least). Every rank returns the same model and reports
/// (the job's); each report's `comm` says what this rank communicated.
///
/// `cfg.lr` left to `None` is calibrated on each rank's shard and the smallest rate is
/// taken. Early stopping is not supported across ranks; `progress` breaking stops the
/// job after the epoch on which any rank asked.
///
/// # Errors
/// [`Error::Config`] for bad settings; the errors of training. A rank that waits on
/// another past `dist.timeout` aborts the job (it does not return).
pub fn fit(
    job: &Job,
    shard: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    dist: &DistConfig,
    mut progress: impl FnMut(Progress<'_>) -> std::ops::ControlFlow<()>,
) -> Result<TrainOutcome> {
    check_linear(job, shard, cfg, dist)?;
    let mut cfg = cfg.clone();
    // λ's default (1/n) is over the job's rows, not the shard's.
    let total_rows = job.sum_usize(shard.rows(), dist.timeout)?;
    cfg.l2 = Some(cfg.effective_l2(total_rows));
    let calibrated = cfg.lr.is_none();
    if calibrated {
        let mine = f64::from(crate::train::calibrate(shard, &cfg)?);
        cfg.lr = Some(job.min(mine, dist.timeout, "agreeing on the calibrated rate")? as f32);
    }
    let want_stop = std::sync::atomic::AtomicBool::new(false);
    let agreed = std::sync::atomic::AtomicBool::new(false);
    let stop = std::cell::Cell::new(false);
    let mut report = |p: Progress<'_>| {
        let epoch_end = matches!(p, Progress::Epoch(_));
        if progress(p).is_break() {
            want_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // Ranks stop together: after the epoch whose exchange found a stop request.
        if epoch_end && agreed.load(std::sync::atomic::Ordering::Relaxed) {
            stop.set(true);
        }
    };
    let mut out = if dist.scheme.served() {
        server::fit(
            job,
            shard,
            valid,
            &cfg,
            dist,
            &want_stop,
            &agreed,
            &mut report,
            &stop,
        )?
    } else {
        // Exchanges per epoch from τ: the same on every rank (from the largest shard).
        let most = -job.min(-(shard.rows() as f64), dist.timeout, "agreeing on τ")?;
        let rounds = dist.tau.map_or(1, |t| (most as usize).div_ceil(t).max(1));
        if rounds > 1 && cfg.engine.scheme == crate::engine::Scheme::RoundRobin {
            return Err(Error::config(
                "tau",
                "takes hogwild, locked or sequential threads in each rank, not round-robin",
            ));
        }
        let x = comm::Elastic::new(job, dist, rounds, &want_stop, &agreed);
        crate::train::fit_exchanging(shard, valid, &cfg, &x, &mut report, &stop)?
    };
    out.done.lr_calibrated = calibrated;
    if let Some(meta) = out.model.meta.as_object_mut() {
        meta.insert("lr_calibrated".into(), calibrated.into());
        meta.insert("distributed".into(), dist.scheme.name().into());
        meta.insert("ranks".into(), job.size().into());
        meta.insert("train_rows".into(), total_rows.into());
    }
    Ok(out)
}

/// The checks of [`fit`]: settings every rank shares and this scheme takes.
fn check_linear(
    job: &Job,
    shard: &SparseDataset,
    cfg: &TrainConfig,
    dist: &DistConfig,
) -> Result<()> {
    dist.check()?;
    cfg.check()?;
    job.check_slow(dist)?;
    job.check_agreement(
        fingerprint(&(
            cfg,
            dist.scheme.name(),
            dist.alpha,
            dist.tau,
            dist.n_push,
            dist.n_fetch,
            shard.cols(),
        )),
        dist.timeout,
    )?;
    if let Some(a) = dist.alpha
        && f64::from(a) * job.size() as f64 > 1.0 + 1e-6
    {
        return Err(Error::config(
            "alpha",
            format!(
                "times the ranks must be at most 1 (β = ranks·α ≤ 1: the center moves toward the ranks' mean, not past it), got {a} × {} ranks",
                job.size()
            ),
        ));
    }
    if dist.scheme.served() && cfg.batch_size != 1 {
        return Err(Error::config(
            "batch_size",
            format!(
                "{} pushes every row's gradient: it takes no mini-batches",
                dist.scheme.name()
            ),
        ));
    }
    if dist.scheme == DistScheme::Dsgd {
        return Err(Error::config(
            "distributed",
            "dsgd is for matrix factorization; linear models take average, easgd, downpour or delay-tolerant",
        ));
    }
    if cfg.solver != crate::train::Solver::Primal {
        return Err(Error::config(
            "optimizer",
            "runs across processes use the primal solver (stochastic updates); dual-cd and saga run on one process",
        ));
    }
    if cfg.early_stop.is_some() {
        return Err(Error::config(
            "early_stop",
            "is not supported across processes (use --tol)",
        ));
    }
    if shard.rows() == 0 {
        return Err(Error::config("train", "this rank's shard has no rows"));
    }
    if dist.scheme.served() && !matches!(cfg.optimizer, crate::optim::OptimizerKind::AdaGrad(_)) {
        return Err(Error::config(
            "optimizer",
            format!(
                "{} applies {} on the server (ALGORITHMS.md §6, §7): use adagrad",
                dist.scheme.name(),
                if dist.scheme == DistScheme::Downpour {
                    "AdaGrad"
                } else {
                    "AdaGrad's delay-tolerant form, AdaptiveRevision,"
                }
            ),
        ));
    }
    if dist.scheme.served() && cfg.l1 > 0.0 {
        return Err(Error::config(
            "l1",
            format!("is not supported by {} (L2 only)", dist.scheme.name()),
        ));
    }
    Ok(())
}

/// Matrix factorization across the ranks of `job` with DSGD's strata (`dist.scheme` must
/// be [`DistScheme::Dsgd`]): every rank passes the same `train` (all the ratings: the
/// strata split them) and returns the same model and reports. One thread per rank; SGD
/// or AdaGrad.
///
/// # Errors
/// [`Error::Config`] for bad settings; the errors of training. A rank that waits on
/// another past `dist.timeout` aborts the job.
pub fn fit_mf(
    job: &Job,
    train: &crate::data::RatingsDataset,
    valid: Option<&crate::data::RatingsDataset>,
    cfg: &crate::mf::MfConfig,
    dist: &DistConfig,
    mut progress: impl FnMut(crate::mf::MfProgress<'_>) -> std::ops::ControlFlow<()>,
) -> Result<crate::mf::MfOutcome> {
    dist.check()?;
    cfg.check()?;
    if dist.scheme != DistScheme::Dsgd {
        return Err(Error::config(
            "distributed",
            format!(
                "matrix factorization runs across ranks with dsgd, not {}",
                dist.scheme.name()
            ),
        ));
    }
    if dist.slow.is_some() || dist.tau.is_some() || dist.alpha.is_some() {
        return Err(Error::config(
            "distributed",
            "dsgd takes none of `slow_rank`, `tau`, `alpha` (its exchanges are the strata)",
        ));
    }
    job.check_agreement(
        fingerprint(&(cfg, train.len(), train.n_users(), train.n_items())),
        dist.timeout,
    )?;
    let want_stop = std::sync::atomic::AtomicBool::new(false);
    let agreed = std::sync::atomic::AtomicBool::new(false);
    let stop = std::cell::Cell::new(false);
    let x = comm::Strata {
        job,
        timeout: dist.timeout,
        want_stop: &want_stop,
        agreed: &agreed,
    };
    let mut report = |p: crate::mf::MfProgress<'_>| {
        let epoch_end = matches!(p, crate::mf::MfProgress::Epoch(_));
        if progress(p).is_break() {
            want_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if epoch_end && agreed.load(std::sync::atomic::Ordering::Relaxed) {
            stop.set(true);
        }
    };
    let mut out = crate::mf::fit_strata(train, valid, cfg, &x, &mut report, &stop)?;
    if let Some(meta) = out.model.meta.as_object_mut() {
        meta.insert("distributed".into(), "dsgd".into());
        meta.insert("ranks".into(), job.size().into());
    }
    Ok(out)
}

/// A hash of `v`'s JSON form (the same settings give the same hash on every rank).
fn fingerprint(v: &impl serde::Serialize) -> u64 {
    let text = serde_json::to_string(v).unwrap_or_default();
    // FNV-1a: stable across processes and builds (std's hasher is seeded per process).
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
