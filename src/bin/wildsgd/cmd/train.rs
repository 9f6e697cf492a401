//! `wildsgd train`, and the conversion of training flags shared with `compare`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;
use wildsgd::data::{Dataset, RatingsDataset, SparseDataset};
use wildsgd::mf::{MfConfig, MfL2Form, MfOptimizer, MfOutcome, MfProgress};
use wildsgd::model::{LossKind, save_mf_model, save_model};
use wildsgd::optim::OptimizerKind;
use wildsgd::schedule::Schedule;
use wildsgd::train::{self, L2Form, Order, Progress, TrainConfig, TrainOutcome};

use super::ReadAs;
use crate::args::{
    EngineArgs, EngineTuning, L2FormArg, ModelArg, OrderArg, PasscodeArg, ScheduleArg, SchemeArg,
    TrainArgs, TrainOpts,
};
use crate::progress;
use wildsgd::engine::{EngineConfig, MfEngine, MfScheme, Replication, Scheme};

/// Builds the optimizer `name` with the hyper-parameter flags applied.
pub fn optimizer(name: &str, o: &TrainOpts) -> Result<OptimizerKind> {
    let mut k = OptimizerKind::from_name(name)?;
    match &mut k {
        OptimizerKind::Sgd(_) => {}
        OptimizerKind::Momentum(m) => m.gamma = o.momentum.unwrap_or(m.gamma),
        OptimizerKind::Nag(m) => m.gamma = o.momentum.unwrap_or(m.gamma),
        OptimizerKind::AdaGrad(a) => a.eps = o.eps.unwrap_or(a.eps),
        OptimizerKind::Adadelta(a) => {
            a.rho = o.rho.unwrap_or(a.rho);
            a.eps = o.eps.unwrap_or(a.eps);
        }
        OptimizerKind::RmsProp(a) => {
            a.gamma = o.rho.unwrap_or(a.gamma);
            a.eps = o.eps.unwrap_or(a.eps);
        }
        OptimizerKind::Adam(a) | OptimizerKind::NAdam(wildsgd::optim::NAdam(a)) => {
            a.beta1 = o.beta1.unwrap_or(a.beta1);
            a.beta2 = o.beta2.unwrap_or(a.beta2);
            a.eps = o.eps.unwrap_or(a.eps);
        }
        OptimizerKind::AdamW(a) => {
            a.adam.beta1 = o.beta1.unwrap_or(a.adam.beta1);
            a.adam.beta2 = o.beta2.unwrap_or(a.adam.beta2);
            a.adam.eps = o.eps.unwrap_or(a.adam.eps);
            a.weight_decay = o.weight_decay.unwrap_or(a.weight_decay);
        }
        OptimizerKind::AdaMax(a) => {
            a.beta1 = o.beta1.unwrap_or(a.beta1);
            a.beta2 = o.beta2.unwrap_or(a.beta2);
        }
        OptimizerKind::Ftrl(f) => f.beta = o.ftrl_beta.unwrap_or(f.beta),
    }
    Ok(k)
}

/// The learning-rate schedule from the flags: `--lr-schedule`, or the optimizer's default
/// when only its parameters are given; `None` leaves the library's default.
fn schedule(name: &str, o: &TrainOpts) -> Result<Option<Schedule>> {
    // Schedule flags without --lr-schedule tune the optimizer's default schedule.
    let tuned = ["lr_decay", "lr_step", "lr_factor", "lr_patience"]
        .iter()
        .any(|f| crate::args::given(f));
    let kind = o
        .lr_schedule
        .or_else(|| tuned.then(|| default_schedule(Kind::Linear, name)));
    Ok(match kind {
        None => None,
        Some(s) => {
            let mut sch = Schedule::from_name(match s {
                ScheduleArg::Constant => "constant",
                ScheduleArg::InvTime => "inv-time",
                ScheduleArg::Step => "step",
                ScheduleArg::Exp => "exp",
                ScheduleArg::Bottou => "bottou",
                ScheduleArg::Plateau => "plateau",
            })?;
            match &mut sch {
                Schedule::Constant | Schedule::Bottou => {}
                Schedule::InvTime { k } | Schedule::Exp { k } => *k = o.lr_decay.unwrap_or(*k),
                Schedule::Step { every, factor } => {
                    *every = o.lr_step.unwrap_or(*every);
                    *factor = o.lr_factor.unwrap_or(*factor);
                }
                Schedule::Plateau {
                    factor, patience, ..
                } => {
                    *factor = o.lr_factor.unwrap_or(*factor);
                    *patience = o.lr_patience.unwrap_or(*patience);
                }
            }
            Some(sch)
        }
    })
}

/// The library configuration for optimizer `name`, given `n` training rows.
pub fn config(name: &str, o: &TrainOpts, e: Option<&EngineArgs>, n: usize) -> Result<TrainConfig> {
    // The exact solvers take no per-coordinate optimizer and no averaging.
    let exact = matches!(name, "dual-cd" | "saga");
    let schedule = schedule(name, o)?;
    let l2 = match (o.l2, o.c) {
        (Some(l), _) => Some(l),
        (None, Some(c)) if c > 0.0 && c.is_finite() => Some(1.0 / (c * n as f64)),
        (None, Some(c)) => {
            return Err(wildsgd::Error::config("C", format!("must be positive, got {c}")).into());
        }
        (None, None) => None,
    };
    Ok(TrainConfig {
        loss: match o.model {
            None | Some(ModelArg::Logistic) => LossKind::Logistic,
            Some(ModelArg::Hinge) => LossKind::Hinge,
            Some(ModelArg::Squared) => LossKind::Squared,
            Some(ModelArg::Mf) => {
                return Err(wildsgd::Error::config(
                    "model",
                    "matrix factorization (mf) trains on a ratings file (user, item, rating)",
                )
                .into());
            }
        },
        optimizer: if exact {
            OptimizerKind::default()
        } else {
            optimizer(name, o)?
        },
        solver: match name {
            "dual-cd" => train::Solver::DualCd {
                writes: match o.passcode {
                    Some(PasscodeArg::Wild) => train::DualWrites::Wild,
                    None | Some(PasscodeArg::Atomic) => train::DualWrites::Atomic,
                },
            },
            "saga" => train::Solver::Saga,
            _ => train::Solver::Primal,
        },
        tol: o.tol,
        average: match o.average {
            Some(a) => a.0,
            // The library's default, except where averaging does not apply.
            None if exact => None,
            None => TrainConfig::default().average,
        },
        lr: o.lr.and_then(|r| r.0),
        schedule,
        epochs: o.epochs.unwrap_or(TrainConfig::default().epochs),
        batch_size: o.batch_size,
        l2,
        l1: o.l1,
        l2_form: match o.l2_form {
            None | Some(L2FormArg::Lazy) => L2Form::Lazy,
            Some(L2FormArg::Degree) => L2Form::Degree,
            Some(L2FormArg::Plain) => {
                return Err(wildsgd::Error::config(
                    "l2-form",
                    "`plain` is for matrix factorization; linear models take lazy or degree",
                )
                .into());
            }
        },
        bias: !o.no_bias,
        order: match o.order {
            OrderArg::Shuffle => Order::Shuffle,
            OrderArg::None => Order::None,
            OrderArg::Curriculum => Order::Curriculum,
            OrderArg::Mixed => Order::Mixed,
        },
        grad_noise: o.grad_noise,
        grad_noise_gamma: o.grad_noise_gamma,
        early_stop: o.early_stop,
        seed: o.seed,
        engine: engine(e, &o.tuning)?,
    })
}

/// Which model a run trains, for deciding which flags apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Linear,
    Mf,
}

/// The schedule an optimizer runs without `--lr-schedule`.
fn default_schedule(kind: Kind, optimizer: &str) -> ScheduleArg {
    if matches!(optimizer, "dual-cd" | "saga") {
        return ScheduleArg::Constant;
    }
    let adaptive = OptimizerKind::from_name(optimizer).map_or(true, |k| k.is_adaptive());
    if kind == Kind::Linear && !adaptive {
        ScheduleArg::Bottou
    } else {
        ScheduleArg::Constant
    }
}

/// Each flag that applies to some runs only: its clap id, its spelling and what it is for.
const FLAG_USES: [(&str, &str, &str); 24] = [
    ("passcode", "--passcode", "dual-cd"),
    ("tol", "--tol", "linear models"),
    (
        "average",
        "--average",
        "linear models trained by an optimizer (not dual-cd), without --delay or delay-tolerant",
    ),
    ("rank", "--rank", "matrix factorization (--model mf)"),
    (
        "init_std",
        "--init-std",
        "matrix factorization (--model mf)",
    ),
    (
        "blocks",
        "--blocks",
        "the block scheme of matrix factorization",
    ),
    ("momentum", "--momentum", "momentum and nag"),
    ("beta1", "--beta1", "adam, adamax, nadam and adamw"),
    ("beta2", "--beta2", "adam, adamax, nadam and adamw"),
    (
        "eps",
        "--eps",
        "adagrad (linear models), adadelta, rmsprop, adam, nadam and adamw",
    ),
    ("rho", "--rho", "adadelta and rmsprop"),
    ("weight_decay", "--weight-decay", "adamw"),
    ("ftrl_beta", "--ftrl-beta", "ftrl"),
    (
        "lr_decay",
        "--lr-decay",
        "the inv-time and exp schedules (choose one with --lr-schedule)",
    ),
    (
        "lr_step",
        "--lr-step",
        "the step schedule (--lr-schedule step)",
    ),
    ("lr_factor", "--lr-factor", "the step and plateau schedules"),
    (
        "lr_patience",
        "--lr-patience",
        "the plateau schedule (--lr-schedule plateau)",
    ),
    (
        "grad_noise_gamma",
        "--grad-noise-gamma",
        "gradient noise (--grad-noise ETA)",
    ),
    (
        "shuffle_block",
        "--shuffle-block",
        "linear models shuffled by rows, not full-batch",
    ),
    (
        "order",
        "--order",
        "stochastic and mini-batch runs, not a full batch",
    ),
    (
        "replicate",
        "--replicate",
        "hogwild linear models on several threads, without --lossless or --delay",
    ),
    (
        "sync_every",
        "--sync-every",
        "hogwild linear models on several threads, without --lossless or --delay",
    ),
    (
        "lossless",
        "--lossless",
        "the hogwild scheme of linear models",
    ),
    (
        "threads",
        "--threads",
        "parallel schemes (sequential runs one thread)",
    ),
];

/// Refuses every flag given on the command line that would not change the run: one for
/// another model, another optimizer, another schedule or another scheme. `optimizers`
/// are the runs' optimizers (several for `compare`: a flag must apply to one of them);
/// `scheme` is `None` when several schemes run (`bench`).
pub fn check_flags(
    kind: Kind,
    optimizers: &[&str],
    scheme: Option<SchemeArg>,
    threads: Option<usize>,
    o: &TrainOpts,
) -> Result<()> {
    let lin = kind == Kind::Linear;
    // Optimizer hyper-parameters; mf's own sgd and adagrad kernels take none of them.
    let opt = |names: &[&str]| {
        optimizers
            .iter()
            .any(|n| names.contains(n) && (lin || !matches!(*n, "sgd" | "adagrad")))
    };
    let schedules: Vec<ScheduleArg> = optimizers
        .iter()
        .map(|n| o.lr_schedule.unwrap_or_else(|| default_schedule(kind, n)))
        .collect();
    let sched = |k: &[ScheduleArg]| schedules.iter().any(|s| k.contains(s));
    let is = |s: SchemeArg| scheme.is_none_or(|x| x == s);
    let hogwild = lin && is(SchemeArg::Hogwild) && !o.tuning.lossless && o.tuning.delay == 0;
    let row_shuffled = matches!(o.order, OrderArg::Shuffle | OrderArg::Mixed);
    let applies = |id: &str| match id {
        "rank" | "init_std" => !lin,
        "blocks" => !lin && is(SchemeArg::Block),
        "momentum" => opt(&["momentum", "nag"]),
        "beta1" | "beta2" => opt(&["adam", "adamax", "nadam", "adamw"]),
        "eps" => opt(&["adagrad", "adadelta", "rmsprop", "adam", "nadam", "adamw"]),
        "rho" => opt(&["adadelta", "rmsprop"]),
        "weight_decay" => opt(&["adamw"]),
        "ftrl_beta" => opt(&["ftrl"]),
        "passcode" => lin && opt(&["dual-cd"]),
        "tol" => lin,
        "average" => {
            lin && optimizers.iter().any(|n| !matches!(*n, "dual-cd" | "saga"))
                && o.tuning.delay == 0
                && scheme != Some(SchemeArg::DelayTolerant)
        }
        "lr_decay" => sched(&[ScheduleArg::InvTime, ScheduleArg::Exp]),
        "lr_step" => sched(&[ScheduleArg::Step]),
        "lr_factor" => sched(&[ScheduleArg::Step, ScheduleArg::Plateau]),
        "lr_patience" => sched(&[ScheduleArg::Plateau]),
        "grad_noise_gamma" => o.grad_noise > 0.0,
        "shuffle_block" => lin && o.batch_size != 0 && row_shuffled,
        "order" => o.batch_size != 0,
        "replicate" | "sync_every" => hogwild && threads != Some(1),
        "lossless" => lin && is(SchemeArg::Hogwild),
        "threads" => scheme != Some(SchemeArg::Sequential) || threads == Some(1),
        _ => true,
    };
    let run = format!(
        "{} with {}",
        if lin {
            "a linear model"
        } else {
            "matrix factorization"
        },
        optimizers.join(", ")
    );
    for (id, flag, what) in FLAG_USES {
        if crate::args::given(id) && !applies(id) {
            return Err(wildsgd::Error::config(
                "flags",
                format!("{flag} does not apply to this run ({run}): it is for {what}"),
            )
            .into());
        }
    }
    Ok(())
}

/// The matrix-factorization configuration from the flags.
pub fn mf_config(
    optimizer: Option<&str>,
    o: &TrainOpts,
    e: Option<&EngineArgs>,
) -> Result<MfConfig> {
    let opt = match optimizer {
        None | Some("adagrad") => MfOptimizer::AdaGrad,
        Some("sgd") => MfOptimizer::Sgd,
        // The others, with their hyper-parameter flags applied.
        Some(other) => MfOptimizer::Other(self::optimizer(other, o)?),
    };
    if o.c.is_some() {
        return Err(wildsgd::Error::config("C", "for linear models; mf takes --l2").into());
    }
    if o.l1 != 0.0 || o.grad_noise != 0.0 || o.batch_size != 1 || o.no_bias {
        return Err(wildsgd::Error::config(
            "model",
            "--l1, --grad-noise, --batch-size and --no-bias are for linear models",
        )
        .into());
    }
    if !matches!(o.order, OrderArg::Shuffle) {
        return Err(wildsgd::Error::config(
            "order",
            "matrix factorization always shuffles (blocks, for the block scheme)",
        )
        .into());
    }
    if o.blocks == Some(0) {
        return Err(wildsgd::Error::config("blocks", "must be at least 1").into());
    }
    if e.and_then(|e| e.threads) == Some(0) {
        return Err(wildsgd::Error::config("threads", "must be at least 1").into());
    }
    let mut lin = o.clone();
    lin.model = None;
    lin.l2_form = None;
    lin.l2 = None;
    lin.lr_schedule = Some(o.lr_schedule.unwrap_or(ScheduleArg::Constant));
    let schedule = config("sgd", &lin, None, 1)?.schedule;
    let l2 = o.l2.map(|l| l as f32);
    Ok(MfConfig {
        rank: o.rank,
        optimizer: opt,
        lr: o.lr.and_then(|r| r.0),
        schedule,
        epochs: o.epochs.unwrap_or(MfConfig::default().epochs),
        l2,
        l2_form: match o.l2_form {
            None | Some(L2FormArg::Plain) => MfL2Form::Plain,
            Some(L2FormArg::Degree) => MfL2Form::Degree,
            Some(L2FormArg::Lazy) => {
                return Err(wildsgd::Error::config(
                    "l2-form",
                    "`lazy` is for linear models; mf takes plain or degree",
                )
                .into());
            }
        },
        init_std: o.init_std,
        blocks: o.blocks.unwrap_or(0),
        early_stop: o.early_stop,
        seed: o.seed,
        engine: MfEngine {
            scheme: e
                .and_then(|e| e.scheme)
                .map_or(Ok(MfScheme::default()), mf_scheme)?,
            threads: e.and_then(|e| e.threads).unwrap_or(0),
            pin: !o.tuning.no_pin,
        },
    })
}

/// Training and validation data of either kind.
pub enum Loaded {
    Sparse(SparseDataset, Option<SparseDataset>),
    Ratings(RatingsDataset, Option<RatingsDataset>),
}

/// Loads training and validation data, of the kind the training file holds.
pub fn load_any(data: &Path, o: &TrainOpts) -> Result<Loaded> {
    let (d, _) = super::load(data, &o.data, o.quiet, ReadAs::default())?;
    match d {
        Dataset::Sparse(train) => {
            if o.model == Some(ModelArg::Mf) {
                return Err(wildsgd::Error::config(
                    "model",
                    format!(
                        "{} is LIBSVM data; matrix factorization (mf) trains on a ratings file (user, item, rating)",
                        data.display()
                    ),
                )
                .into());
            }
            match (&o.test, o.holdout) {
                (Some(t), _) => {
                    let test = load_sparse(t, o, ReadAs::like(&train))?;
                    Ok(Loaded::Sparse(train, Some(test)))
                }
                (None, Some(f)) => {
                    let (a, b) = train.split_holdout(f, o.seed)?;
                    Ok(Loaded::Sparse(a, Some(b)))
                }
                (None, None) => Ok(Loaded::Sparse(train, None)),
            }
        }
        Dataset::Ratings(train) => {
            if let Some(m) = o.model.filter(|m| *m != ModelArg::Mf) {
                return Err(wildsgd::Error::config(
                    "model",
                    format!(
                        "{} is a ratings file; it trains --model mf, not {}",
                        data.display(),
                        format!("{m:?}").to_lowercase()
                    ),
                )
                .into());
            }
            match (&o.test, o.holdout) {
                (Some(t), _) => match super::load(t, &o.data, o.quiet, ReadAs::default())?.0 {
                    Dataset::Ratings(v) => Ok(Loaded::Ratings(train, Some(v))),
                    Dataset::Sparse(_) => Err(wildsgd::Error::config(
                        "test",
                        format!(
                            "{} is LIBSVM data, but the training file holds ratings",
                            t.display()
                        ),
                    )
                    .into()),
                },
                (None, Some(f)) => {
                    let (a, b) = train.split_holdout(f, o.seed)?;
                    Ok(Loaded::Ratings(a, Some(b)))
                }
                (None, None) => Ok(Loaded::Ratings(train, None)),
            }
        }
    }
}

/// Runs one matrix-factorization training with a progress bar, sending JSON events.
pub fn run_one_mf(
    train_data: &RatingsDataset,
    valid: Option<&RatingsDataset>,
    cfg: &MfConfig,
    quiet: bool,
    events: &mut dyn FnMut(serde_json::Value) -> wildsgd::Result<()>,
) -> Result<MfOutcome> {
    let n = train_data.len() as u64;
    let total = n * cfg.epochs as u64;
    reported(
        total,
        cfg.optimizer_name(),
        quiet,
        events,
        |pb, epoch_event| {
            let out = wildsgd::mf::fit(train_data, valid, cfg, |p| match p {
                MfProgress::Ratings { epoch, done } => {
                    pb.set_position(epoch as u64 * n + (done as u64).min(n));
                }
                MfProgress::Epoch(rep) => {
                    pb.set_position(rep.epoch as u64 * n);
                    epoch_event(event("epoch", rep));
                }
            })?;
            let done = event("done", &out.done);
            Ok((out, done))
        },
    )
}

fn run_mf(
    a: &TrainArgs,
    train_data: &RatingsDataset,
    valid: Option<&RatingsDataset>,
) -> Result<()> {
    let cfg = mf_settings(a)?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let outcome = run_one_mf(train_data, valid, &cfg, a.opts.quiet, &mut |v| {
        sink.write(v)
    })?;
    if let Some(out) = &a.output {
        save_mf_model(&outcome.model, out)?;
    }
    let d = &outcome.done;
    let mut line = format!(
        "mf {} rank {} | {} | lr {} | l2 {}",
        d.optimizer,
        d.rank,
        run_summary(
            d.scheme,
            d.threads,
            d.oversubscribed,
            d.epochs,
            d.train_seconds,
            &format!(
                "{:.2} M ratings/s",
                (train_data.len() * d.epochs) as f64 / d.train_seconds.max(1e-12) / 1e6
            )
        ),
        d.lr,
        d.l2
    );
    match (d.test_rmse, d.test_mae) {
        (Some(r), Some(m)) => line.push_str(&format!(" | test rmse {r:.4} mae {m:.4}")),
        _ => {
            let tr = outcome.epochs.last().map_or(f64::NAN, |e| e.train_rmse);
            line.push_str(&format!(" | train rmse {tr:.4}"));
        }
    }
    finish(sink, line, d.stopped_early.then_some(d.best_epoch))
}

/// "scheme xN | E epochs in S s (rate)" of a summary line.
pub fn run_summary(
    scheme: &str,
    threads: usize,
    oversubscribed: bool,
    epochs: usize,
    seconds: f64,
    rate: &str,
) -> String {
    format!(
        "{scheme} x{threads}{} | {epochs} epochs in {seconds:.3} s ({rate})",
        if oversubscribed {
            " (oversubscribed)"
        } else {
            ""
        }
    )
}

/// Commits the report and prints the summary line (with the early-stopping note):
/// to stdout, or to stderr when the report itself goes to stdout.
pub fn finish(sink: ReportSink, mut line: String, stopped_at: Option<usize>) -> Result<()> {
    if let Some(best) = stopped_at {
        line.push_str(&format!(" | stopped early, best epoch {best}"));
    }
    let to_stdout = !sink.is_stdout();
    sink.commit()?;
    if to_stdout {
        writeln!(io::stdout().lock(), "{line}").map_err(super::stdout_error)?;
    } else {
        eprintln!("{line}");
    }
    Ok(())
}

/// The flag value's name (`round-robin`).
pub fn scheme_name(s: SchemeArg) -> String {
    use clap::ValueEnum;
    s.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// The linear scheme for a flag value.
pub fn scheme(s: SchemeArg) -> wildsgd::Result<Scheme> {
    Scheme::from_name(&scheme_name(s))
}

/// The matrix-factorization scheme for a flag value.
pub fn mf_scheme(s: SchemeArg) -> wildsgd::Result<MfScheme> {
    MfScheme::from_name(&scheme_name(s))
}

/// The engine settings from the flags.
pub fn engine(st: Option<&EngineArgs>, e: &EngineTuning) -> Result<EngineConfig> {
    let replicate = match e.replicate.as_str() {
        "auto" => Replication::Auto,
        "none" => Replication::None,
        "all" => Replication::All,
        n => Replication::Top(n.parse().map_err(|_| {
            wildsgd::Error::config(
                "replicate",
                format!("expected auto, none, all or a count, got `{n}`"),
            )
        })?),
    };
    if st.and_then(|s| s.threads) == Some(0) {
        return Err(wildsgd::Error::config("threads", "must be at least 1").into());
    }
    if e.sync_every == Some(0) {
        return Err(wildsgd::Error::config("sync-every", "must be at least 1").into());
    }
    if e.shuffle_block == Some(0) {
        return Err(wildsgd::Error::config("shuffle-block", "must be at least 1").into());
    }
    Ok(EngineConfig {
        scheme: st
            .and_then(|s| s.scheme)
            .map_or(Ok(Scheme::default()), scheme)?,
        threads: st.and_then(|s| s.threads).unwrap_or(0),
        pin: !e.no_pin,
        replicate,
        sync_every: e.sync_every.unwrap_or(0),
        shuffle_block: e.shuffle_block.unwrap_or(0),
        delay: e.delay,
        lossless: e.lossless,
    })
}

/// Loads a LIBSVM file through the common data flags; a ratings file is refused.
pub fn load_sparse(path: &Path, o: &TrainOpts, read_as: ReadAs) -> Result<SparseDataset> {
    match super::load(path, &o.data, o.quiet, read_as)?.0 {
        Dataset::Sparse(d) => Ok(d),
        Dataset::Ratings(_) => Err(wildsgd::Error::config(
            "data",
            format!("{} is a ratings file; linear models need LIBSVM data (matrix factorization comes with --model mf)", path.display()),
        )
        .into()),
    }
}

/// Runs one training with a progress bar, sending JSON events to `events`.
pub fn run_one(
    train_data: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    quiet: bool,
    events: &mut dyn FnMut(serde_json::Value) -> wildsgd::Result<()>,
) -> Result<TrainOutcome> {
    let n = train_data.rows() as u64;
    let total = n * cfg.epochs as u64;
    reported(
        total,
        cfg.method_name(),
        quiet,
        events,
        |pb, epoch_event| {
            let out = train::fit(train_data, valid, cfg, |p| match p {
                Progress::Examples { epoch, done } => {
                    pb.set_position(epoch as u64 * n + done as u64)
                }
                Progress::Epoch(rep) => {
                    pb.set_position(rep.epoch as u64 * n);
                    epoch_event(event("epoch", rep));
                }
            })?;
            let done = event("done", &out.done);
            Ok((out, done))
        },
    )
}

/// The progress bar and JSON events around one training: `train` gets the bar and a
/// sink for `epoch` events and returns its outcome with the `done` event. An event that
/// cannot be written fails the run once training is over (so training is not cut short
/// mid-epoch), and nothing is written after it.
pub fn reported<T>(
    total: u64,
    label: &str,
    quiet: bool,
    events: &mut dyn FnMut(serde_json::Value) -> wildsgd::Result<()>,
    train: impl FnOnce(
        &indicatif::ProgressBar,
        &mut dyn FnMut(serde_json::Value),
    ) -> wildsgd::Result<(T, serde_json::Value)>,
) -> Result<T> {
    let pb = progress::bar(total, label, quiet);
    let mut io_err: Option<wildsgd::Error> = None;
    let outcome = train(&pb, &mut |v| {
        if io_err.is_none()
            && let Err(e) = events(v)
        {
            io_err = Some(e);
        }
    });
    pb.finish_and_clear();
    let (out, done) = outcome?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    events(done)?;
    Ok(out)
}

/// `{"event": name, ...report's fields}`.
pub fn event(name: &str, report: &impl serde::Serialize) -> serde_json::Value {
    let mut v = json!({ "event": name });
    merge(
        &mut v,
        serde_json::to_value(report).expect("report serializes"),
    );
    v
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// A JSON Lines sink: a file written atomically, stdout, or nothing.
pub struct ReportSink {
    file: Option<(wildsgd::atomic::AtomicFile, PathBuf)>,
    stdout: bool,
}

impl ReportSink {
    pub fn open(path: Option<&Path>) -> Result<Self> {
        Ok(match path {
            None => ReportSink {
                file: None,
                stdout: false,
            },
            Some(p) if p == Path::new("-") => ReportSink {
                file: None,
                stdout: true,
            },
            Some(p) => {
                let f = wildsgd::atomic::AtomicFile::create(p).map_err(|source| {
                    wildsgd::Error::Write {
                        path: p.to_path_buf(),
                        source,
                    }
                })?;
                ReportSink {
                    file: Some((f, p.to_path_buf())),
                    stdout: false,
                }
            }
        })
    }

    pub fn is_stdout(&self) -> bool {
        self.stdout
    }

    pub fn write(&mut self, v: serde_json::Value) -> wildsgd::Result<()> {
        if self.stdout {
            let mut out = io::stdout().lock();
            writeln!(out, "{v}")
                .and_then(|_| out.flush())
                .map_err(super::stdout_error)
        } else if let Some((f, p)) = &mut self.file {
            writeln!(f, "{v}").map_err(|source| wildsgd::Error::Write {
                path: p.clone(),
                source,
            })
        } else {
            Ok(())
        }
    }

    pub fn commit(self) -> Result<()> {
        if let Some((f, p)) = self.file {
            f.commit()
                .map_err(|source| wildsgd::Error::Write { path: p, source })?;
        }
        Ok(())
    }
}

/// `train`'s matrix-factorization settings, once the flags that do not apply are refused.
pub fn mf_settings(a: &TrainArgs) -> Result<MfConfig> {
    check_flags(
        Kind::Mf,
        &[a.optimizer.as_deref().unwrap_or("adagrad")],
        Some(a.engine.scheme.unwrap_or(SchemeArg::Block)),
        a.engine.threads,
        &a.opts,
    )?;
    mf_config(a.optimizer.as_deref(), &a.opts, Some(&a.engine))
}

/// `train`'s settings of a linear model with optimizer `name` on `rows` training rows,
/// once the flags that do not apply are refused.
pub fn linear_settings(a: &TrainArgs, name: &str, rows: usize) -> Result<TrainConfig> {
    check_flags(
        Kind::Linear,
        &[name],
        Some(a.engine.scheme.unwrap_or(SchemeArg::Hogwild)),
        a.engine.threads,
        &a.opts,
    )?;
    config(name, &a.opts, Some(&a.engine), rows)
}

pub fn run(a: &TrainArgs) -> Result<()> {
    if let Some(scheme) = &a.dist.distributed {
        #[cfg(feature = "distributed")]
        return super::distributed::run(a, scheme);
        #[cfg(not(feature = "distributed"))]
        return Err(wildsgd::Error::config(
            "distributed",
            format!("`{scheme}` needs MPI, and this wildsgd was built without it: build with `cargo build --release --features distributed` (README: Across machines)"),
        )
        .into());
    }
    let d = &a.dist;
    if let Some(flag) = [
        (d.elastic_alpha.is_some(), "--elastic-alpha"),
        (d.tau.is_some(), "--tau"),
        (d.n_push.is_some(), "--n-push"),
        (d.n_fetch.is_some(), "--n-fetch"),
        (d.slow_rank.is_some(), "--slow-rank"),
        (crate::args::given("comm_timeout"), "--comm-timeout"),
    ]
    .iter()
    .find_map(|(given, f)| given.then_some(*f))
    {
        return Err(wildsgd::Error::config(
            "distributed",
            format!("{flag} applies only to runs across processes (--distributed SCHEME)"),
        )
        .into());
    }
    super::check_distinct(
        &[
            ("--output", a.output.as_deref()),
            ("--report", a.report.as_deref()),
        ],
        &[
            ("--data", Some(&a.data)),
            ("--test", a.opts.test.as_deref()),
        ],
    )?;
    let (train_data, valid) = match load_any(&a.data, &a.opts)? {
        Loaded::Sparse(t, v) => (t, v),
        Loaded::Ratings(t, v) => return run_mf(a, &t, v.as_ref()),
    };
    let cfg = linear_settings(
        a,
        a.optimizer.as_deref().unwrap_or("sgd"),
        train_data.rows(),
    )?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let outcome = run_one(&train_data, valid.as_ref(), &cfg, a.opts.quiet, &mut |v| {
        sink.write(v)
    })?;
    if let Some(out) = &a.output {
        save_model(&outcome.model, out)?;
    }
    let d = &outcome.done;
    let nnz: f64 = outcome.epochs.iter().map(|e| e.nnz as f64).sum();
    // The engine's replication policy, when it has one.
    let policy = match d.merge_every {
        Some(k) if d.replicated == train_data.cols() + usize::from(!a.opts.no_bias) => {
            format!(" | whole-model replicas, merged every {k} updates")
        }
        Some(k) => format!(
            " | {} hot coordinates replicated, merged every {k} updates",
            d.replicated
        ),
        None => String::new(),
    };
    // How the model was found: the rate (calibrated or given) and averaging, or the
    // dual solver's certificate.
    let method = match d.duality_gap {
        Some(gap) => format!("duality gap {gap:.2e}"),
        None => format!(
            "lr {}{}{}",
            d.lr,
            if d.lr_calibrated { " (calibrated)" } else { "" },
            if d.averaged { " | averaged" } else { "" }
        ),
    };
    let converged = if d.converged { " (converged)" } else { "" };
    let mut line = format!(
        "{} {} | {}{policy} | {method} | l2 {:.4e} | objective {:.6}{converged}",
        d.model,
        d.optimizer,
        run_summary(
            d.scheme,
            d.threads,
            d.oversubscribed,
            d.epochs,
            d.train_seconds,
            &format!("{:.1} M nnz/s", nnz / d.train_seconds.max(1e-12) / 1e6)
        ),
        d.l2,
        d.objective
    );
    if let (Some(l), Some(acc)) = (d.test_loss, d.test_accuracy) {
        line.push_str(&format!(" | test loss {l:.4} accuracy {acc:.4}"));
        if let Some(auc) = d.test_auc {
            line.push_str(&format!(" auc {auc:.4}"));
        }
    } else {
        let tl = outcome.epochs.last().map_or(f64::NAN, |e| e.train_loss);
        line.push_str(&format!(" | train loss {tl:.4}"));
    }
    finish(sink, line, d.stopped_early.then_some(d.best_epoch))
}
