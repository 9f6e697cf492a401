//! `wildsgd predict`, `wildsgd eval` and `wildsgd recommend`.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::json;
use wildsgd::data::Dataset;
use wildsgd::data::RatingsDataset;
use wildsgd::metrics;
use wildsgd::model::{AnyModel, load_any_model, load_mf_model};

use super::ReadAs;
use crate::args::{EvalArgs, PredictArgs, RecommendArgs};
use wildsgd::data::LabelRule;

fn load_ratings(path: &std::path::Path, a: &crate::args::DataArgs) -> Result<RatingsDataset> {
    match super::load(path, a, true, ReadAs::default())?.0 {
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
    read_as: ReadAs,
) -> Result<wildsgd::data::SparseDataset> {
    match super::load(path, a, true, read_as)?.0 {
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

/// What `predict` prints for each row.
enum Predictions {
    Numbers(Vec<f32>),
    Labels(Vec<f64>),
}

pub fn predict(a: &PredictArgs) -> Result<()> {
    super::check_distinct(
        &[("--output", a.output.as_deref())],
        &[("--data", Some(&a.data)), ("--model", Some(&a.model))],
    )?;
    let preds = match load_any_model(&a.model)? {
        AnyModel::Linear(model) => {
            let read_as = ReadAs {
                index_base: Some(model.index_base),
                labels: LabelRule::Ignore,
            };
            let data = load_data(&a.data, &a.format, read_as)?;
            let scores = model.scores(&data);
            if let Some(row) = scores.iter().position(|z| !z.is_finite()) {
                return Err(anyhow::Error::new(wildsgd::Error::NonFiniteScore { row })
                    .context(format!("{}", a.data.display())));
            }
            if a.labels {
                Predictions::Labels(scores.iter().map(|&z| model.classes.decode(z)).collect())
            } else {
                Predictions::Numbers(scores.iter().map(|&z| model.loss.output(z)).collect())
            }
        }
        AnyModel::Mf(model) => {
            if a.labels {
                return Err(wildsgd::Error::config(
                    "labels",
                    "--labels is for classifiers; an mf model predicts ratings",
                )
                .into());
            }
            Predictions::Numbers(model.predict(&load_ratings(&a.data, &a.format)?))
        }
    };
    let write_all = |w: &mut dyn Write| -> io::Result<()> {
        let mut fb = ryu::Buffer::new();
        match &preds {
            Predictions::Numbers(v) => {
                for p in v {
                    w.write_all(fb.format(*p).as_bytes())?;
                    w.write_all(b"\n")?;
                }
            }
            Predictions::Labels(v) => {
                for l in v {
                    writeln!(w, "{l}")?;
                }
            }
        }
        w.flush()
    };
    match a
        .output
        .as_deref()
        .filter(|p| *p != std::path::Path::new("-"))
    {
        None => super::to_stdout(write_all)?,
        Some(p) => {
            let werr = |source| wildsgd::Error::Write {
                path: p.to_path_buf(),
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
            return super::to_stdout(|out| {
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
                Ok(())
            });
        }
    };
    let read_as = ReadAs {
        index_base: Some(model.index_base),
        labels: LabelRule::Known(model.classes),
    };
    let data = load_data(&a.data, &a.format, read_as)?;
    let m = metrics::evaluate(&model, &data)
        .map_err(|e| anyhow::Error::new(e).context(format!("{}", a.data.display())))?;
    let mut v = json!({
        "model": model.loss.name(),
        "rows": data.rows(),
        "test_loss": m.loss,
        "test_accuracy": m.accuracy,
    });
    if let Some(auc) = m.auc {
        v["test_auc"] = json!(auc);
    }
    super::to_stdout(|out| {
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
    })
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
    super::to_stdout(|out| {
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
        Ok(())
    })
}
