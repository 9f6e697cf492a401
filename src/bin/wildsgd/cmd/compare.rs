//! `wildsgd compare`: train several optimizers on the same data and draw their test
//! loss per epoch on one chart, the question Ruder's overview ends on (test RMSE for
//! matrix factorization on a ratings file).

use std::io::{self, Write};

use anyhow::Result;

use super::train::{
    Kind, Loaded, ReportSink, check_flags, config, load_any, mf_config, run_one, run_one_mf,
};
use crate::args::{CompareArgs, SchemeArg, VersusArg};
use crate::plot::{Series, line_chart};

/// One optimizer's curve and its row of the summary table.
struct Trained {
    series: Series,
    row: String,
}

pub fn run(a: &CompareArgs) -> Result<()> {
    let loaded = load_any(&a.data, &a.opts)?;
    let names: Vec<String> = match (&a.optimizers, &loaded) {
        (Some(n), _) => n.iter().map(|s| s.trim().to_string()).collect(),
        (None, Loaded::Sparse(..)) => crate::args::METHODS.map(String::from).to_vec(),
        (None, Loaded::Ratings(..)) => wildsgd::optim::OptimizerKind::NAMES
            .map(String::from)
            .to_vec(),
    };
    if let Some(d) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        return Err(wildsgd::Error::config("optimizers", format!("{d} is listed twice")).into());
    }
    super::check_distinct(
        &[("--plot", Some(&a.plot)), ("--report", a.report.as_deref())],
        &[
            ("--data", Some(&a.data)),
            ("--test", a.opts.test.as_deref()),
        ],
    )?;
    match loaded {
        Loaded::Sparse(train, valid) => compare_linear(a, &names, &train, valid.as_ref()),
        Loaded::Ratings(train, valid) => compare_mf(a, &names, &train, valid.as_ref()),
    }
}

/// Every optimizer on LIBSVM data: test loss per epoch.
fn compare_linear(
    a: &CompareArgs,
    names: &[String],
    train: &wildsgd::SparseDataset,
    valid: Option<&wildsgd::SparseDataset>,
) -> Result<()> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    check_flags(
        Kind::Linear,
        &refs,
        Some(a.engine.scheme.unwrap_or(SchemeArg::Hogwild)),
        a.engine.threads,
        &a.opts,
    )?;
    let configs = names
        .iter()
        .map(|name| config(name, &a.opts, Some(&a.engine), train.rows()))
        .collect::<Result<Vec<_>>>()?;
    for c in &configs {
        c.check()?;
    }
    crate::plot::check_chart_path(&a.plot)?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let mut done = Vec::new();
    for cfg in &configs {
        let out = run_one(train, valid, cfg, a.opts.quiet, &mut |v| sink.write(v))?;
        let d = &out.done;
        let loss = d
            .test_loss
            .unwrap_or_else(|| out.epochs.last().map_or(f64::NAN, |e| e.train_loss));
        let acc = d.test_accuracy.map_or("-".into(), |a| format!("{a:.4}"));
        done.push(Trained {
            series: Series {
                name: match cfg.solver {
                    wildsgd::train::Solver::DualCd { .. } => cfg.method_name().to_string(),
                    _ => format!("{} (lr {:.3e})", cfg.method_name(), d.lr),
                },
                points: along(
                    a.versus,
                    out.epochs
                        .iter()
                        .map(|e| (e.epoch, e.seconds, e.test_loss.unwrap_or(e.train_loss))),
                ),
            },
            row: format!(
                "{:<10} {:>10.3e} {:>10.4} {:>9} {:>7} {:>9.3}",
                d.optimizer, d.lr, loss, acc, d.best_epoch, d.train_seconds
            ),
        });
    }
    let header = format!(
        "{:<10} {:>10} {:>10} {:>9} {:>7} {:>9}",
        "optimizer", "lr", "loss", "accuracy", "best", "seconds"
    );
    let metric = if valid.is_some() {
        "test loss"
    } else {
        "train loss (progressive)"
    };
    report(a, sink, metric, &header, done)
}

/// Every optimizer on a ratings file: test RMSE per epoch.
fn compare_mf(
    a: &CompareArgs,
    names: &[String],
    train: &wildsgd::RatingsDataset,
    valid: Option<&wildsgd::RatingsDataset>,
) -> Result<()> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    check_flags(
        Kind::Mf,
        &refs,
        Some(a.engine.scheme.unwrap_or(SchemeArg::Block)),
        a.engine.threads,
        &a.opts,
    )?;
    let configs = names
        .iter()
        .map(|name| mf_config(Some(name), &a.opts, Some(&a.engine)))
        .collect::<Result<Vec<_>>>()?;
    for c in &configs {
        c.check()?;
    }
    crate::plot::check_chart_path(&a.plot)?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let mut done = Vec::new();
    for cfg in &configs {
        let out = run_one_mf(train, valid, cfg, a.opts.quiet, &mut |v| sink.write(v))?;
        let d = &out.done;
        let rmse = d
            .test_rmse
            .unwrap_or_else(|| out.epochs.last().map_or(f64::NAN, |e| e.train_rmse));
        let mae = d.test_mae.map_or("-".into(), |m| format!("{m:.4}"));
        done.push(Trained {
            series: Series {
                name: format!("{} (lr {})", cfg.optimizer_name(), d.lr),
                points: along(
                    a.versus,
                    out.epochs
                        .iter()
                        .map(|e| (e.epoch, e.seconds, e.test_rmse.unwrap_or(e.train_rmse))),
                ),
            },
            row: format!(
                "{:<10} {:>10} {:>10.4} {:>10} {:>7} {:>9.3}",
                d.optimizer, d.lr, rmse, mae, d.best_epoch, d.train_seconds
            ),
        });
    }
    let header = format!(
        "{:<10} {:>10} {:>10} {:>10} {:>7} {:>9}",
        "optimizer", "lr", "rmse", "mae", "best", "seconds"
    );
    let metric = if valid.is_some() {
        "test RMSE"
    } else {
        "train RMSE (progressive)"
    };
    report(a, sink, metric, &header, done)
}

/// A curve's points from (epoch, the epoch's seconds, metric): against the epoch, or
/// against the training seconds so far.
fn along(versus: VersusArg, epochs: impl Iterator<Item = (usize, f64, f64)>) -> Vec<(f64, f64)> {
    let mut clock = 0.0;
    epochs
        .map(|(e, s, m)| {
            clock += s;
            match versus {
                VersusArg::Epochs => (e as f64, m),
                VersusArg::Seconds => (clock, m),
            }
        })
        .collect()
}

/// Draws the chart of `metric` per epoch, commits the JSON report and prints the table
/// (to stderr when the report goes to stdout).
fn report(
    a: &CompareArgs,
    sink: ReportSink,
    metric: &str,
    header: &str,
    done: Vec<Trained>,
) -> Result<()> {
    let (series, rows): (Vec<Series>, Vec<String>) =
        done.into_iter().map(|t| (t.series, t.row)).unzip();
    line_chart(
        &a.plot,
        &format!(
            "{metric} per {} — {}",
            match a.versus {
                VersusArg::Epochs => "epoch",
                VersusArg::Seconds => "training second",
            },
            a.data.file_name().unwrap_or_default().to_string_lossy()
        ),
        match a.versus {
            VersusArg::Epochs => "epoch",
            VersusArg::Seconds => "training seconds",
        },
        metric,
        &series,
    )?;
    let report_to_stdout = sink.is_stdout();
    sink.commit()?;
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(&r);
        text.push('\n');
    }
    text.push_str(&format!("chart: {}\n", a.plot.display()));
    if report_to_stdout {
        eprint!("{text}");
    } else {
        io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(super::stdout_error)?;
    }
    Ok(())
}
