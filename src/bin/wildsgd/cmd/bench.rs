//! `wildsgd bench`: every (scheme, threads) pair run `repeat` times on the same data;
//! median seconds per epoch, speedups over one thread and over sequential, non-zeros
//! (linear) or ratings (mf) per second, in all and per thread, and the final test metric, as a table, `bench` JSON events, CSV and a
//! speedup chart.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::json;
use wildsgd::engine::cores;

use super::train::{
    Kind, Loaded, ReportSink, check_flags, config, load_any, mf_config, mf_scheme, scheme,
    scheme_name,
};
use crate::args::{BenchArgs, SchemeArg};
use crate::plot::{Scaling, scaling_chart};

struct Row {
    scheme: SchemeArg,
    threads: usize,
    epoch_seconds: f64,
    /// Non-zeros (linear) or ratings (mf) per second.
    units_per_sec: f64,
    /// Test loss (linear) or RMSE (mf).
    test_metric: Option<f64>,
    train_metric: f64,
    oversubscribed: bool,
    /// Replicated coordinates (linear) or the block grid (mf).
    replicated: String,
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

/// Runs `fit` `repeat` times (ticking `pb`): the median of the seconds per epoch it
/// reports, and the last outcome.
fn timed<T>(
    repeat: usize,
    pb: &indicatif::ProgressBar,
    mut fit: impl FnMut() -> wildsgd::Result<(f64, T)>,
) -> Result<(f64, T)> {
    let mut secs = Vec::with_capacity(repeat.min(1024));
    let mut last = None;
    for _ in 0..repeat {
        let (s, out) = fit()?;
        secs.push(s);
        last = Some(out);
        pb.inc(1);
    }
    Ok((median(&mut secs), last.expect("repeat >= 1")))
}

/// What kind of work the rows measure: the table's header line, the unit counted per
/// second, the metric's name and the epochs run.
struct Measured {
    rows: Vec<Row>,
    header: String,
    unit: &'static str,
    metric: &'static str,
    epochs: usize,
    has_valid: bool,
    linear: bool,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    check_args(a)?;
    let loaded = load_any(&a.data, &a.opts)?;
    let mut pairs: Vec<(SchemeArg, usize)> = vec![(SchemeArg::Sequential, 1)];
    for &s in &a.schemes {
        if s != SchemeArg::Sequential {
            pairs.extend(a.threads.iter().map(|&t| (s, t)));
        }
    }
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let pb = crate::progress::bar((pairs.len() * a.repeat) as u64, "runs", a.opts.quiet);
    let m = match &loaded {
        Loaded::Sparse(train, valid) => linear_rows(a, train, valid.as_ref(), &pairs, &pb)?,
        Loaded::Ratings(train, valid) => mf_rows(a, train, valid.as_ref(), &pairs, &pb)?,
    };
    pb.finish_and_clear();
    let (text, csv) = render(a, &m, &mut sink)?;
    write_csv(a, &csv)?;
    draw(a, &m.rows)?;
    let to_stdout = !sink.is_stdout();
    sink.commit()?;
    if to_stdout {
        io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(super::stdout_error)?;
    } else {
        eprint!("{text}");
    }
    Ok(())
}

/// Refuses impossible or duplicated lists, bad chart names and colliding outputs.
fn check_args(a: &BenchArgs) -> Result<()> {
    if a.repeat == 0 {
        return Err(wildsgd::Error::config("repeat", "must be at least 1").into());
    }
    if a.threads.is_empty() || a.threads.contains(&0) {
        return Err(wildsgd::Error::config("threads", "a list of counts, each at least 1").into());
    }
    let twice = |v: &[String]| {
        v.iter()
            .enumerate()
            .find_map(|(i, x)| v[..i].contains(x).then(|| x.clone()))
    };
    let threads: Vec<String> = a.threads.iter().map(|t| t.to_string()).collect();
    let schemes: Vec<String> = a.schemes.iter().map(|s| scheme_name(*s)).collect();
    for (flag, list) in [("threads", &threads), ("schemes", &schemes)] {
        if let Some(d) = twice(list) {
            return Err(wildsgd::Error::config(flag, format!("{d} is listed twice")).into());
        }
    }
    if let Some(p) = &a.plot {
        crate::plot::check_chart_path(p)?;
    }
    super::check_distinct(
        &[
            ("--csv", a.csv.as_deref()),
            ("--plot", a.plot.as_deref()),
            ("--report", a.report.as_deref()),
        ],
        &[
            ("--data", Some(&a.data)),
            ("--test", a.opts.test.as_deref()),
        ],
    )?;
    Ok(())
}

/// Times every (scheme, threads) pair of a linear model.
fn linear_rows(
    a: &BenchArgs,
    train: &wildsgd::SparseDataset,
    valid: Option<&wildsgd::SparseDataset>,
    pairs: &[(SchemeArg, usize)],
    pb: &indicatif::ProgressBar,
) -> Result<Measured> {
    let opt = a.optimizer.as_deref().unwrap_or("sgd");
    check_flags(Kind::Linear, &[opt], None, None, &a.opts)?;
    let base = config(opt, &a.opts, None, train.rows())?;
    base.check()?;
    let mut rows = Vec::new();
    for &(s, t) in pairs {
        let mut cfg = base.clone();
        cfg.engine.scheme = scheme(s)?;
        cfg.engine.threads = t;
        cfg.check()?;
        let (m, out) = timed(a.repeat, pb, || {
            let out = wildsgd::train::fit(train, valid, &cfg, |_| {})?;
            let secs = out.epochs.iter().map(|e| e.seconds).sum::<f64>();
            Ok((secs / out.epochs.len() as f64, out))
        })?;
        rows.push(Row {
            scheme: s,
            threads: t,
            epoch_seconds: m,
            units_per_sec: train.nnz() as f64 / m,
            test_metric: out.done.test_loss,
            train_metric: out.epochs.last().map_or(f64::NAN, |e| e.train_loss),
            oversubscribed: out.done.oversubscribed,
            replicated: out.done.replicated.to_string(),
        });
    }
    Ok(Measured {
        rows,
        header: format!("{} rows, {} non-zeros", train.rows(), train.nnz()),
        unit: "nnz",
        metric: "loss",
        epochs: base.epochs,
        has_valid: valid.is_some(),
        linear: true,
    })
}

/// Times every (scheme, threads) pair of matrix factorization.
fn mf_rows(
    a: &BenchArgs,
    train: &wildsgd::RatingsDataset,
    valid: Option<&wildsgd::RatingsDataset>,
    pairs: &[(SchemeArg, usize)],
    pb: &indicatif::ProgressBar,
) -> Result<Measured> {
    let opt = a.optimizer.as_deref().unwrap_or("adagrad");
    check_flags(Kind::Mf, &[opt], None, None, &a.opts)?;
    let base = mf_config(a.optimizer.as_deref(), &a.opts, None)?;
    base.check()?;
    let mut rows = Vec::new();
    for &(s, t) in pairs {
        let mut cfg = base.clone();
        cfg.engine.scheme = mf_scheme(s)?;
        cfg.engine.threads = t;
        cfg.check()?;
        let (m, out) = timed(a.repeat, pb, || {
            let out = wildsgd::mf::fit(train, valid, &cfg, |_| {})?;
            let secs = out.epochs.iter().map(|e| e.seconds).sum::<f64>();
            Ok((secs / out.epochs.len() as f64, out))
        })?;
        rows.push(Row {
            scheme: s,
            threads: t,
            epoch_seconds: m,
            units_per_sec: train.len() as f64 / m,
            test_metric: out.done.test_rmse,
            train_metric: out.epochs.last().map_or(f64::NAN, |e| e.train_rmse),
            oversubscribed: out.done.oversubscribed,
            replicated: out.done.blocks.map_or("-".into(), |b| format!("{b}x{b}")),
        });
    }
    Ok(Measured {
        rows,
        header: format!(
            "{} ratings, {} users, {} items, rank {}",
            train.len(),
            train.n_users(),
            train.n_items(),
            base.rank
        ),
        unit: "ratings",
        metric: "rmse",
        epochs: base.epochs,
        has_valid: valid.is_some(),
        linear: false,
    })
}

/// The table (text) and the CSV of the measured rows; each row's `bench` event goes to
/// `sink`.
fn render(a: &BenchArgs, m: &Measured, sink: &mut ReportSink) -> Result<(String, String)> {
    let (rows, unit, metric_name) = (&m.rows, m.unit, m.metric);
    let seq = rows[0].epoch_seconds;
    let one = |s: SchemeArg| {
        rows.iter()
            .find(|r| r.scheme == s && r.threads == 1)
            .map(|r| r.epoch_seconds)
    };
    let last_col = if m.linear { "replicated" } else { "blocks" };
    let metric_col = format!(
        "{} {metric_name}",
        if m.has_valid { "test" } else { "train" }
    );
    let mut text = format!(
        "{}, {} epochs x {} repeats, {} cores\n{:<15} {:>7} {:>13} {:>9} {:>9} {:>12} {:>12} {:>10} {:>10}\n",
        m.header,
        m.epochs,
        a.repeat,
        cores(),
        "scheme",
        "threads",
        "s/epoch (med)",
        "vs 1 thr",
        "vs seq",
        format!("M {unit}/s"),
        "M/s/thread",
        metric_col,
        last_col,
    );
    let mut csv = format!(
        "scheme,threads,epoch_seconds_median,speedup_vs_1_thread,speedup_vs_sequential,{unit}_per_sec,{unit}_per_sec_per_thread,test_{metric_name},train_{metric_name},oversubscribed,repeat\n",
    );
    for r in rows {
        let vs1 = one(r.scheme).map(|o| o / r.epoch_seconds);
        let vseq = seq / r.epoch_seconds;
        let metric = r.test_metric.unwrap_or(r.train_metric);
        let per_thread = r.units_per_sec / r.threads as f64;
        text.push_str(&format!(
            "{:<15} {:>7} {:>13.4} {:>9} {:>9.2} {:>12.2} {:>12.2} {:>10.4} {:>10}{}\n",
            scheme_name(r.scheme),
            r.threads,
            r.epoch_seconds,
            vs1.map_or("-".into(), |v| format!("{v:.2}")),
            vseq,
            r.units_per_sec / 1e6,
            per_thread / 1e6,
            metric,
            r.replicated,
            if r.oversubscribed {
                "  (oversubscribed)"
            } else {
                ""
            }
        ));
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            scheme_name(r.scheme),
            r.threads,
            r.epoch_seconds,
            vs1.map_or(String::new(), |v| v.to_string()),
            vseq,
            r.units_per_sec,
            per_thread,
            r.test_metric.map_or(String::new(), |v| v.to_string()),
            r.train_metric,
            r.oversubscribed,
            a.repeat
        ));
        let mut ev = json!({
            "event": "bench",
            "scheme": scheme_name(r.scheme),
            "threads": r.threads,
            "repeat": a.repeat,
            "epoch_seconds_median": r.epoch_seconds,
            "speedup_vs_sequential": vseq,
            "oversubscribed": r.oversubscribed,
        });
        ev[format!("{unit}_per_sec")] = json!(r.units_per_sec);
        ev[format!("{unit}_per_sec_per_thread")] = json!(per_thread);
        ev[format!("train_{metric_name}")] = json!(r.train_metric);
        if let Some(v) = vs1 {
            ev["speedup_vs_1_thread"] = json!(v);
        }
        if let Some(l) = r.test_metric {
            ev[format!("test_{metric_name}")] = json!(l);
        }
        sink.write(ev)?;
    }
    if rows.iter().any(|r| r.oversubscribed) {
        text.push_str("oversubscribed runs (threads > cores) test correctness, not speed\n");
    }
    Ok((text, csv))
}

/// Writes the CSV to `--csv` (`-`: stdout).
fn write_csv(a: &BenchArgs, csv: &str) -> Result<()> {
    if a.csv.as_deref() == Some(std::path::Path::new("-")) {
        io::stdout()
            .lock()
            .write_all(csv.as_bytes())
            .map_err(super::stdout_error)?;
    } else if let Some(p) = &a.csv {
        wildsgd::atomic::write_atomic(p, csv.as_bytes()).map_err(|source| {
            wildsgd::Error::Write {
                path: p.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Draws the scaling chart to `--plot`.
fn draw(a: &BenchArgs, rows: &[Row]) -> Result<()> {
    let seq = rows[0].epoch_seconds;
    if let Some(p) = &a.plot {
        let series: Vec<Scaling> = a
            .schemes
            .iter()
            .copied()
            .filter(|s| *s != SchemeArg::Sequential)
            .map(|s| Scaling {
                name: scheme_name(s),
                points: rows
                    .iter()
                    .filter(|r| r.scheme == s)
                    .map(|r| (r.threads, seq / r.epoch_seconds, r.oversubscribed))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if !series.is_empty() {
            scaling_chart(
                p,
                &format!("speedup over sequential ({} cores)", cores()),
                &series,
            )?;
        }
    }
    Ok(())
}
