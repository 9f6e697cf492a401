//! `train --distributed SCHEME`: training across the MPI ranks of a job (the
//! `distributed` feature). Every rank reads the training file and keeps its shard; only
//! rank 0 shows progress, writes the report and the model, and prints the summary. Any
//! rank's error is printed with its rank and ends the whole job (`MPI_Abort`, exit 2),
//! so no rank is left waiting.

use std::time::Duration;

use anyhow::Result;
use wildsgd::distributed::{self, DistConfig, DistScheme, Job};
use wildsgd::train::Progress;

use super::train::{
    Loaded, ReportSink, event, finish, linear_settings, load_any, mf_settings, reported,
    run_summary,
};
use crate::args::{TrainArgs, given};
use wildsgd::data::RatingsDataset;
use wildsgd::mf::MfProgress;
use wildsgd::model::{save_mf_model, save_model};

/// The library's settings from the flags.
fn dist_config(a: &TrainArgs, scheme: DistScheme) -> Result<DistConfig> {
    let d = &a.dist;
    let n_push = d.n_push.unwrap_or(distributed::DEFAULT_N_PUSH);
    let slow = match &d.slow_rank {
        None => None,
        Some(s) => {
            let parsed = s.split_once(':').and_then(|(r, ms)| {
                Some((
                    r.trim().parse::<usize>().ok()?,
                    ms.trim().parse::<f64>().ok()?,
                ))
            });
            match parsed {
                Some((r, ms)) if let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0) => {
                    Some((r, d))
                }
                _ => {
                    return Err(wildsgd::Error::config(
                        "slow_rank",
                        format!("expected RANK:MILLISECONDS (e.g. 1:5), got `{s}`"),
                    )
                    .into());
                }
            }
        }
    };
    if !(d.comm_timeout.is_finite() && d.comm_timeout > 0.0 && d.comm_timeout < 1e9) {
        return Err(wildsgd::Error::config(
            "timeout",
            format!(
                "must be a number of seconds above 0 and below 1e9, got {}",
                d.comm_timeout
            ),
        )
        .into());
    }
    // Flags that would not change this scheme's run are refused, not ignored.
    let served = scheme.served();
    let refused = [
        (
            d.elastic_alpha.is_some() && scheme != DistScheme::Easgd,
            "--elastic-alpha",
            "is for easgd",
        ),
        (
            (d.n_push.is_some() || d.n_fetch.is_some()) && !served,
            "--n-push and --n-fetch",
            "are for downpour and delay-tolerant",
        ),
        (
            served && ["threads", "scheme", "average"].iter().any(|f| given(f)),
            "--threads, --scheme and --average",
            "do not apply to the served schemes, which run one worker thread per rank on the served parameters without averaging",
        ),
        (
            scheme == DistScheme::Dsgd && ["threads", "scheme", "blocks"].iter().any(|f| given(f)),
            "--threads, --scheme and --blocks",
            "do not apply to dsgd, which runs one thread per rank on its strata",
        ),
    ];
    if let Some((_, flag, why)) = refused.iter().find(|r| r.0) {
        return Err(wildsgd::Error::config(
            "distributed",
            format!("{flag} {why} (--distributed {})", scheme.name()),
        )
        .into());
    }
    let cfg = DistConfig {
        scheme,
        alpha: d.elastic_alpha,
        tau: d.tau,
        n_push,
        n_fetch: d.n_fetch.unwrap_or(n_push),
        slow,
        timeout: Duration::from_secs_f64(d.comm_timeout),
    };
    cfg.check()?;
    Ok(cfg)
}

/// Runs `train --distributed`: initializes MPI and trains; an error on any rank ends
/// the job.
pub fn run(a: &TrainArgs, scheme: &str) -> Result<()> {
    let job = Job::init()?;
    let (rank, size) = (job.rank(), job.size());
    match run_rank(a, scheme, &job) {
        Ok(()) => Ok(()),
        // One rank alone can report as any run does.
        Err(e) if size == 1 => Err(e),
        Err(e) => {
            let lib = e.chain().find_map(|c| c.downcast_ref::<wildsgd::Error>());
            let text = format!("{e:#}");
            let text = match lib {
                Some(wildsgd::Error::Parse(_)) | None => text,
                Some(_) => crate::words::in_flags(&text),
            };
            // An error every rank meets (a bad flag) is printed once: rank 0's abort ends
            // the others while they wait. A rank's own error is printed after the wait.
            if rank != 0 {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            // One write, so that lines of several ranks do not interleave.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("error: rank {rank} of {size}: {text}\n").as_bytes(),
            );
            job.abort(2)
        }
    }
}

fn run_rank(a: &TrainArgs, scheme: &str, job: &Job) -> Result<()> {
    let scheme = DistScheme::from_name(scheme)?;
    let dist = dist_config(a, scheme)?;
    let (rank, size) = (job.rank(), job.size());
    let (all, valid) = match load_any(&a.data, &a.opts)? {
        Loaded::Sparse(t, v) => (t, v),
        Loaded::Ratings(t, v) => return run_mf(a, &dist, job, &t, v.as_ref()),
    };
    let name = a
        .optimizer
        .as_deref()
        .unwrap_or(if scheme.served() { "adagrad" } else { "sgd" });
    let cfg = linear_settings(a, name, all.rows())?;
    let shard = distributed::shard(&all, rank, size)?;
    drop(all);
    let lead = rank == 0;
    let mut sink = ReportSink::open(if lead { a.report.as_deref() } else { None })?;
    let n = shard.rows() as u64;
    let outcome = reported(
        n * cfg.epochs as u64,
        &format!("{} {scheme:?} x{size}", cfg.method_name()),
        a.opts.quiet || !lead,
        &mut |v| sink.write(v),
        |pb, epoch_event| {
            let out = distributed::fit(job, &shard, valid.as_ref(), &cfg, &dist, |p| {
                match p {
                    Progress::Examples { epoch, done } => {
                        pb.set_position(epoch as u64 * n + done as u64)
                    }
                    Progress::Epoch(rep) => {
                        pb.set_position(rep.epoch as u64 * n);
                        epoch_event(event("epoch", rep));
                    }
                }
                std::ops::ControlFlow::Continue(())
            })?;
            let done = event("done", &out.done);
            Ok((out, done))
        },
    )?;
    if !lead {
        return Ok(());
    }
    if let Some(out) = &a.output {
        save_model(&outcome.model, out)?;
    }
    let d = &outcome.done;
    let comm = d.comm.unwrap_or_default();
    let nnz: f64 = outcome.epochs.iter().map(|e| e.nnz as f64).sum();
    let mut line = format!(
        "{} {} | {} across {size} rank{} | {} | comm {:.3} s, {} on rank 0 | lr {}{} | objective {:.6}",
        d.model,
        d.optimizer,
        scheme.name(),
        if size == 1 { "" } else { "s" },
        run_summary(
            d.scheme,
            d.threads,
            d.oversubscribed,
            d.epochs,
            d.train_seconds,
            &format!("{:.1} M nnz/s", nnz / d.train_seconds.max(1e-12) / 1e6)
        ),
        comm.comm_seconds,
        bytes(comm.comm_bytes),
        d.lr,
        if d.averaged { " | averaged" } else { "" },
        d.objective,
    );
    if let (Some(l), Some(acc)) = (d.test_loss, d.test_accuracy) {
        line.push_str(&format!(" | test loss {l:.4} accuracy {acc:.4}"));
    }
    finish(sink, line, None)
}

/// A byte count for people: `812 B`, `40.1 KB`, `566.9 MB`.
fn bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1e3 {
        format!("{b} B")
    } else if b < 1e6 {
        format!("{:.1} KB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}

/// Matrix factorization across the job's ranks (dsgd): every rank holds the ratings.
fn run_mf(
    a: &TrainArgs,
    dist: &DistConfig,
    job: &Job,
    train: &RatingsDataset,
    valid: Option<&RatingsDataset>,
) -> Result<()> {
    if dist.scheme != DistScheme::Dsgd {
        return Err(wildsgd::Error::config(
            "distributed",
            format!(
                "{} is a ratings file: matrix factorization runs across ranks with dsgd, not {}",
                a.data.display(),
                dist.scheme.name()
            ),
        )
        .into());
    }
    let cfg = mf_settings(a)?;
    let (rank, size) = (job.rank(), job.size());
    let lead = rank == 0;
    let mut sink = ReportSink::open(if lead { a.report.as_deref() } else { None })?;
    // This rank's share of each epoch's ratings, about.
    let n = (train.len() / size) as u64;
    let outcome = reported(
        n * cfg.epochs as u64,
        &format!("mf dsgd x{size}"),
        a.opts.quiet || !lead,
        &mut |v| sink.write(v),
        |pb, epoch_event| {
            let out = distributed::fit_mf(job, train, valid, &cfg, dist, |p| {
                match p {
                    MfProgress::Ratings { epoch, done } => {
                        pb.set_position(epoch as u64 * n + (done as u64).min(n))
                    }
                    MfProgress::Epoch(rep) => {
                        pb.set_position(rep.epoch as u64 * n);
                        epoch_event(event("epoch", rep));
                    }
                }
                std::ops::ControlFlow::Continue(())
            })?;
            let done = event("done", &out.done);
            Ok((out, done))
        },
    )?;
    if !lead {
        return Ok(());
    }
    if let Some(out) = &a.output {
        save_mf_model(&outcome.model, out)?;
    }
    let d = &outcome.done;
    let comm = d.comm.unwrap_or_default();
    let mut line = format!(
        "mf {} rank {} | dsgd across {size} rank{} | {} | comm {:.3} s, {} on rank 0 | lr {} | l2 {}",
        d.optimizer,
        d.rank,
        if size == 1 { "" } else { "s" },
        run_summary(
            d.scheme,
            d.threads,
            d.oversubscribed,
            d.epochs,
            d.train_seconds,
            &format!(
                "{:.2} M ratings/s",
                (train.len() * d.epochs) as f64 / d.train_seconds.max(1e-12) / 1e6
            )
        ),
        comm.comm_seconds,
        bytes(comm.comm_bytes),
        d.lr,
        d.l2
    );
    if let (Some(r), Some(m)) = (d.test_rmse, d.test_mae) {
        line.push_str(&format!(" | test rmse {r:.4} mae {m:.4}"));
    }
    finish(sink, line, None)
}
