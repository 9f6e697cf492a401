//! `wildsgd compare`: train several optimizers on the same data and draw their test
//! loss per epoch on one chart, the question Ruder's overview ends on.

use std::io::{self, Write};

use anyhow::Result;

use super::train::{ReportSink, config, load_train_valid, run_one};
use crate::args::CompareArgs;
use crate::plot::{Series, line_chart};

pub fn run(a: &CompareArgs) -> Result<()> {
    let (train, valid) = load_train_valid(&a.data, &a.opts)?;
    let configs = a
        .optimizers
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
