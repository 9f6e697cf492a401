//! `wildsgd predict`, `wildsgd eval` and `wildsgd recommend`.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use serde_json::json;
use wildsgd::data::Dataset;
use wildsgd::data::RatingsDataset;
use wildsgd::metrics;
use wildsgd::model::{AnyModel, load_any_model, load_mf_model};

use crate::args::{EvalArgs, PredictArgs, RecommendArgs};

fn load_ratings(path: &std::path::Path, a: &crate::args::DataArgs) -> Result<RatingsDataset> {
    match super::load(path, a, true)?.0 {
        Dataset::Ratings(d) => Ok(d),
        Dataset::Sparse(_) => Err(wildsgd::Error::config(
            "data",
            format!(
                "{} is LIBSVM data, but the model is matrix factorization (it needs user, item, rating lines)",
                path.display()
            ),
        )
        .into()),
    }
}

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
    let preds = match load_any_model(&a.model)? {
        AnyModel::Linear(model) => model.predict(&load_data(&a.data, &a.format)?),
        AnyModel::Mf(model) => model.predict(&load_ratings(&a.data, &a.format)?),
    };
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
    let model = match load_any_model(&a.model)? {
        AnyModel::Linear(m) => m,
        AnyModel::Mf(m) => {
            let data = load_ratings(&a.data, &a.format)?;
            if data.implicit {
                return Err(wildsgd::Error::config(
                    "data",
                    format!(
                        "{} lists (user, item) pairs without ratings; RMSE needs ratings",
                        a.data.display()
                    ),
                )
                .into());
            }
            let r = m.evaluate(&data);
            let mut out = io::stdout().lock();
            if a.json {
                let v = json!({
                    "model": "mf",
                    "ratings": data.len(),
                    "test_rmse": r.rmse,
                    "test_mae": r.mae,
                    "unknown_users": r.unknown_users,
                    "unknown_items": r.unknown_items,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "ratings    {}", data.len())?;
                writeln!(out, "rmse       {:.6}", r.rmse)?;
                writeln!(out, "mae        {:.6}", r.mae)?;
                if r.unknown_users + r.unknown_items > 0 {
                    writeln!(
                        out,
                        "unseen     {} ratings of new users, {} of new items (predicted from biases)",
                        r.unknown_users, r.unknown_items
                    )?;
                }
            }
            return Ok(());
        }
    };
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

pub fn recommend(a: &RecommendArgs) -> Result<()> {
    let model = load_mf_model(&a.model)?;
    let Some(u) = model.user_index(a.user) else {
        return Err(wildsgd::Error::config(
            "user",
            format!(
                "user {} is not in {} (it had no training ratings)",
                a.user,
                a.model.display()
            ),
        )
        .into());
    };
    let recs = model.recommend(u, a.n);
    let mut out = BufWriter::new(io::stdout().lock());
    if a.json {
        for (rank, r) in recs.iter().enumerate() {
            writeln!(
                out,
                "{}",
                json!({"user": a.user, "rank": rank + 1, "item": r.item, "score": r.score})
            )?;
        }
    } else {
        writeln!(out, "rank\titem\tpredicted")?;
        for (rank, r) in recs.iter().enumerate() {
            writeln!(out, "{}\t{}\t{:.3}", rank + 1, r.item, r.score)?;
        }
    }
    out.flush()?;
    Ok(())
}
