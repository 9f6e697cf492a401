//! `wildsgd bench`: every (scheme, threads) pair run `repeat` times on the same data;
//! median seconds per epoch, speedups over one thread and over sequential, non-zeros
//! per second and the final test metric, as a table, `bench` JSON events, CSV and a
//! speedup chart.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::json;
use wildsgd::engine::{Scheme, cores};

use super::train::{ReportSink, config, load_train_valid, scheme};
use crate::args::BenchArgs;
use crate::plot::{Series, line_chart};

struct Row {
    scheme: Scheme,
    threads: usize,
    epoch_seconds: f64,
    nnz_per_sec: f64,
    test_loss: Option<f64>,
    train_loss: f64,
    oversubscribed: bool,
    replicated: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.repeat == 0 {
        return Err(wildsgd::Error::config("repeat", "must be at least 1").into());
    }
    if a.threads.is_empty() || a.threads.contains(&0) {
        return Err(wildsgd::Error::config("threads", "a list of counts, each at least 1").into());
    }
    if let Some(p) = &a.plot {
        crate::plot::check_chart_path(p)?;
    }
    let (train, valid) = load_train_valid(&a.data, &a.opts)?;
    let base = config(
        a.optimizer.as_deref().unwrap_or("sgd"),
        &a.opts,
        None,
        train.rows(),
    )?;
    base.check()?;
    let mut pairs: Vec<(Scheme, usize)> = vec![(Scheme::Sequential, 1)];
    for s in &a.schemes {
        let s = scheme(*s);
        if s != Scheme::Sequential {
            pairs.extend(a.threads.iter().map(|&t| (s, t)));
        }
    }
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let mut rows = Vec::new();
    let total = pairs.len() * a.repeat;
    let pb = crate::progress::bar(total as u64, "runs", a.opts.quiet);
    for (s, t) in pairs {
        let mut cfg = base.clone();
        cfg.engine.scheme = s;
        cfg.engine.threads = t;
        cfg.check()?;
        let mut secs = Vec::new();
        let mut last = None;
        for _ in 0..a.repeat {
            let out = wildsgd::train::fit(&train, valid.as_ref(), &cfg, |_| {})?;
            let per_epoch: f64 =
                out.epochs.iter().map(|e| e.seconds).sum::<f64>() / out.epochs.len() as f64;
            secs.push(per_epoch);
            last = Some(out);
            pb.inc(1);
        }
        let out = last.expect("repeat >= 1");
        let m = median(&mut secs);
        rows.push(Row {
            scheme: s,
            threads: t,
            epoch_seconds: m,
            nnz_per_sec: train.nnz() as f64 / m,
            test_loss: out.done.test_loss,
            train_loss: out.epochs.last().map_or(f64::NAN, |e| e.train_loss),
            oversubscribed: out.done.oversubscribed,
            replicated: out.done.replicated,
        });
    }
    pb.finish_and_clear();
    let seq = rows[0].epoch_seconds;
    let one = |s: Scheme| {
        rows.iter()
            .find(|r| r.scheme == s && r.threads == 1)
            .map(|r| r.epoch_seconds)
    };
    let mut text = format!(
        "{} rows, {} non-zeros, {} epochs x {} repeats, {} cores\n{:<15} {:>7} {:>13} {:>9} {:>9} {:>10} {:>10} {:>10}\n",
        train.rows(),
        train.nnz(),
        base.epochs,
        a.repeat,
        cores(),
        "scheme",
        "threads",
        "s/epoch (med)",
        "vs 1 thr",
        "vs seq",
        "M nnz/s",
        if valid.is_some() {
            "test loss"
        } else {
            "train loss"
        },
        "replicated"
    );
    let mut csv = String::from(
        "scheme,threads,epoch_seconds_median,speedup_vs_1_thread,speedup_vs_sequential,nnz_per_sec,test_loss,train_loss,oversubscribed,repeat\n",
    );
    for r in &rows {
        let vs1 = one(r.scheme).map(|o| o / r.epoch_seconds);
        let vseq = seq / r.epoch_seconds;
        let metric = r.test_loss.unwrap_or(r.train_loss);
        text.push_str(&format!(
            "{:<15} {:>7} {:>13.4} {:>9} {:>9.2} {:>10.1} {:>10.4} {:>10}{}\n",
            r.scheme.name(),
            r.threads,
            r.epoch_seconds,
            vs1.map_or("-".into(), |v| format!("{v:.2}")),
            vseq,
            r.nnz_per_sec / 1e6,
            metric,
            r.replicated,
            if r.oversubscribed {
                "  (oversubscribed)"
            } else {
                ""
            }
        ));
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r.scheme.name(),
            r.threads,
            r.epoch_seconds,
            vs1.map_or(String::new(), |v| v.to_string()),
            vseq,
            r.nnz_per_sec,
            r.test_loss.map_or(String::new(), |v| v.to_string()),
            r.train_loss,
            r.oversubscribed,
            a.repeat
        ));
        let mut ev = json!({
            "event": "bench",
            "scheme": r.scheme.name(),
            "threads": r.threads,
            "repeat": a.repeat,
            "epoch_seconds_median": r.epoch_seconds,
            "speedup_vs_sequential": vseq,
            "nnz_per_sec": r.nnz_per_sec,
            "train_loss": r.train_loss,
            "oversubscribed": r.oversubscribed,
        });
        if let Some(v) = vs1 {
            ev["speedup_vs_1_thread"] = json!(v);
        }
        if let Some(l) = r.test_loss {
            ev["test_loss"] = json!(l);
        }
        sink.write(ev)?;
    }
    if rows.iter().any(|r| r.oversubscribed) {
        text.push_str("oversubscribed runs (threads > cores) test correctness, not speed\n");
    }
    if let Some(p) = &a.csv {
        wildsgd::atomic::write_atomic(p, csv.as_bytes()).map_err(|source| {
            wildsgd::Error::Write {
                path: p.clone(),
                source,
            }
        })?;
    }
    if let Some(p) = &a.plot {
        let series: Vec<Series> = a
            .schemes
            .iter()
            .map(|s| scheme(*s))
            .filter(|s| *s != Scheme::Sequential)
            .filter_map(|s| {
                let one = one(s)?;
                Some(Series {
                    name: s.name().to_string(),
                    points: rows
                        .iter()
                        .filter(|r| r.scheme == s)
                        .map(|r| (r.threads as f64, one / r.epoch_seconds))
                        .collect(),
                })
            })
            .collect();
        if !series.is_empty() {
            line_chart(
                p,
                &format!("speedup over one thread ({} cores)", cores()),
                "threads",
                "speedup",
                &series,
            )?;
        }
    }
    let to_stdout = !sink.is_stdout();
    sink.commit()?;
    if to_stdout {
        io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        eprint!("{text}");
    }
    Ok(())
}
