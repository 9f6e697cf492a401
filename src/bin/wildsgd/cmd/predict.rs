//! `wildsgd predict` and `wildsgd eval`.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use serde_json::json;
use wildsgd::data::Dataset;
use wildsgd::metrics;
use wildsgd::model::load_model;

use crate::args::{EvalArgs, PredictArgs};

fn load_data(
    path: &std::path::Path,
    a: &crate::args::DataArgs,
) -> Result<wildsgd::data::SparseDataset> {
    match super::load(path, a, true)?.0 {
        Dataset::Sparse(d) => Ok(d),
        Dataset::Ratings(_) => Err(wildsgd::Error::config(
            "data",
            format!(
                "{} is a ratings file, but the model is linear",
                path.display()
            ),
        )
        .into()),
    }
}

pub fn predict(a: &PredictArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let data = load_data(&a.data, &a.format)?;
    let preds = model.predict(&data);
    let mut fb = ryu::Buffer::new();
    let mut write_all = |w: &mut dyn Write| -> io::Result<()> {
        for p in &preds {
            w.write_all(fb.format(*p).as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()
    };
    match &a.output {
        None => write_all(&mut BufWriter::new(io::stdout().lock()))?,
        Some(p) => {
            let werr = |source| wildsgd::Error::Write {
                path: p.clone(),
                source,
            };
            let mut f = wildsgd::atomic::AtomicFile::create(p).map_err(werr)?;
            write_all(&mut f).map_err(werr)?;
            f.commit().map_err(werr)?;
        }
    }
    Ok(())
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let data = load_data(&a.data, &a.format)?;
    let m = metrics::evaluate(&model, &data);
    let mut v = json!({
        "model": model.loss.name(),
        "rows": data.rows(),
        "test_loss": m.loss,
        "test_accuracy": m.accuracy,
    });
    if let Some(auc) = m.auc {
        v["test_auc"] = json!(auc);
    }
    let mut out = io::stdout().lock();
    if a.json {
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "rows       {}", data.rows())?;
        writeln!(out, "loss       {:.6} ({})", m.loss, model.loss.name())?;
        writeln!(out, "accuracy   {:.6}", m.accuracy)?;
        if let Some(auc) = m.auc {
            writeln!(out, "auc        {auc:.6}")?;
        }
    }
    Ok(())
}
