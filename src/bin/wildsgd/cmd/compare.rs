//! `wildsgd compare`: train several optimizers on the same data and draw their test
//! loss per epoch on one chart, the question Ruder's overview ends on (test RMSE for
//! matrix factorization on a ratings file).

use std::io::{self, Write};

use anyhow::Result;

use super::train::{Loaded, ReportSink, config, load_any, mf_config, run_one, run_one_mf};
use crate::args::CompareArgs;
use crate::plot::{Series, line_chart};

pub fn run(a: &CompareArgs) -> Result<()> {
    let (train, valid) = match load_any(&a.data, &a.opts)? {
        Loaded::Sparse(t, v) => (t, v),
        Loaded::Ratings(t, v) => return run_mf(a, &t, v.as_ref()),
    };
    let all = wildsgd::optim::OptimizerKind::NAMES
        .map(String::from)
        .to_vec();
    let configs = a
        .optimizers
        .as_ref()
        .unwrap_or(&all)
        .iter()
        .map(|name| config(name.trim(), &a.opts, Some(&a.engine), train.rows()))
        .collect::<Result<Vec<_>>>()?;
    for c in &configs {
        c.check()?;
    }
    crate::plot::check_chart_path(&a.plot)?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let mut series = Vec::new();
    let mut rows = Vec::new();
    for cfg in &configs {
        let out = run_one(&train, valid.as_ref(), cfg, a.opts.quiet, &mut |v| {
            sink.write(v)
        })?;
        let lr = out.done.lr;
        let points = out
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.test_loss.unwrap_or(e.train_loss)))
            .collect();
        series.push(Series {
            name: format!("{} (lr {lr:.3e})", cfg.optimizer.name()),
            points,
        });
        rows.push(out);
    }
    let metric = if valid.is_some() {
        "test loss"
    } else {
        "train loss (progressive)"
    };
    line_chart(
        &a.plot,
        &format!(
            "{metric} per epoch — {}",
            a.data.file_name().unwrap_or_default().to_string_lossy()
        ),
        "epoch",
        metric,
        &series,
    )?;
    let report_to_stdout = sink.is_stdout();
    sink.commit()?;
    let mut text = String::new();
    text.push_str(&format!(
        "{:<10} {:>10} {:>10} {:>9} {:>7} {:>9}\n",
        "optimizer", "lr", "loss", "accuracy", "best", "seconds"
    ));
    for o in &rows {
        let d = &o.done;
        let loss = d
            .test_loss
            .unwrap_or_else(|| o.epochs.last().map_or(f64::NAN, |e| e.train_loss));
        let acc = d.test_accuracy.map_or("-".into(), |a| format!("{a:.4}"));
        text.push_str(&format!(
            "{:<10} {:>10.3e} {:>10.4} {:>9} {:>7} {:>9.3}\n",
            d.optimizer, d.lr, loss, acc, d.best_epoch, d.train_seconds
        ));
    }
    text.push_str(&format!("chart: {}\n", a.plot.display()));
    if report_to_stdout {
        eprint!("{text}");
    } else {
        io::stdout().lock().write_all(text.as_bytes())?;
    }
    Ok(())
}

fn run_mf(
    a: &CompareArgs,
    train: &wildsgd::data::RatingsDataset,
    valid: Option<&wildsgd::data::RatingsDataset>,
) -> Result<()> {
    let all = wildsgd::optim::OptimizerKind::NAMES
        .map(String::from)
        .to_vec();
    let configs = a
        .optimizers
        .as_ref()
        .unwrap_or(&all)
        .iter()
        .map(|name| mf_config(Some(name.trim()), &a.opts, Some(&a.engine)))
        .collect::<Result<Vec<_>>>()?;
    for c in &configs {
        c.check()?;
    }
    crate::plot::check_chart_path(&a.plot)?;
    let mut sink = ReportSink::open(a.report.as_deref())?;
    let mut series = Vec::new();
    let mut rows = Vec::new();
    for cfg in &configs {
        let out = run_one_mf(train, valid, cfg, a.opts.quiet, &mut |v| sink.write(v))?;
        series.push(Series {
            name: format!("{} (lr {})", cfg.optimizer_name(), out.done.lr),
            points: out
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.test_rmse.unwrap_or(e.train_rmse)))
                .collect(),
        });
        rows.push(out);
    }
    let metric = if valid.is_some() {
        "test RMSE"
    } else {
        "train RMSE (progressive)"
    };
    line_chart(
        &a.plot,
        &format!(
            "{metric} per epoch — {}",
            a.data.file_name().unwrap_or_default().to_string_lossy()
        ),
        "epoch",
        metric,
        &series,
    )?;
    let report_to_stdout = sink.is_stdout();
    sink.commit()?;
    let mut text = format!(
        "{:<10} {:>10} {:>10} {:>10} {:>7} {:>9}\n",
        "optimizer", "lr", "rmse", "mae", "best", "seconds"
    );
    for o in &rows {
        let d = &o.done;
        let rmse = d
            .test_rmse
            .unwrap_or_else(|| o.epochs.last().map_or(f64::NAN, |e| e.train_rmse));
        let mae = d.test_mae.map_or("-".into(), |m| format!("{m:.4}"));
        text.push_str(&format!(
            "{:<10} {:>10} {:>10.4} {:>10} {:>7} {:>9.3}\n",
            d.optimizer, d.lr, rmse, mae, d.best_epoch, d.train_seconds
        ));
    }
    text.push_str(&format!("chart: {}\n", a.plot.display()));
    if report_to_stdout {
        eprint!("{text}");
    } else {
        io::stdout().lock().write_all(text.as_bytes())?;
    }
    Ok(())
}
