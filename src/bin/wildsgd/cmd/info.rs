//! `wildsgd info FILE [--json]`.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::{Value, json};
use wildsgd::data::cache::CacheStatus;
use wildsgd::data::stats::{ratings_stats, sparse_stats};
use wildsgd::data::{Dataset, IndexBase};

use crate::args::InfoArgs;

pub fn run(a: &InfoArgs) -> Result<()> {
    let (data, cache) = super::load(&a.file, &a.data, a.json, super::ReadAs::default())?;
    let cache = match cache {
        CacheStatus::NotUsed => None,
        CacheStatus::Hit => Some("hit".to_string()),
        CacheStatus::Written => Some("written".to_string()),
        CacheStatus::Rebuilt(why) => Some(format!("rebuilt ({why})")),
        CacheStatus::WriteFailed(why) => Some(format!("not written ({why})")),
    };
    let mut obj = json!({ "file": a.file.display().to_string(), "format": data.format() });
    match &data {
        Dataset::Sparse(d) => {
            let s = sparse_stats(d, a.rho_budget);
            merge(&mut obj, serde_json::to_value(&s)?);
            obj["index_base"] = json!(if d.index_base() == IndexBase::Zero {
                0
            } else {
                1
            });
        }
        Dataset::Ratings(d) => {
            let s = ratings_stats(d);
            merge(&mut obj, serde_json::to_value(&s)?);
            obj["layout"] = json!(d.layout);
            obj["implicit"] = json!(d.implicit);
            obj["header"] = json!(d.header);
        }
    }
    if let Some(c) = &cache {
        obj["cache"] = json!(c);
    }
    super::to_stdout(|out| {
        if a.json {
            writeln!(out, "{obj}")
        } else {
            print_table(out, &obj)
        }
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

fn print_table(out: &mut dyn Write, o: &Value) -> io::Result<()> {
    let f = |k: &str| o[k].as_f64().unwrap_or(f64::NAN);
    let u = |k: &str| o[k].as_u64().unwrap_or(0);
    let row = |out: &mut dyn Write, k: &str, v: String| writeln!(out, "{k:<22}{v}");
    row(out, "file", o["file"].as_str().unwrap_or("").to_string())?;
    if o["format"] == "libsvm" {
        row(
            out,
            "format",
            format!("libsvm ({}-based indices)", o["index_base"]),
        )?;
        row(out, "rows", group(u("rows")))?;
        row(out, "columns", group(u("columns")))?;
        row(
            out,
            "non-zeros",
            format!("{} ({:.2} per row)", group(u("nnz")), f("mean_nnz_per_row")),
        )?;
        row(out, "density", format!("{:.4e}", f("density")))?;
        let pos = f("positive_fraction");
        row(
            out,
            "labels",
            format!("+1: {:.2}%   -1: {:.2}%", 100.0 * pos, 100.0 * (1.0 - pos)),
        )?;
        row(out, "Ω (max nnz per row)", u("omega").to_string())?;
        row(out, "Δ (max feature share)", format!("{:.4}", f("delta")))?;
        let rho = if o["rho_exact"] == true {
            format!("{:.4} (exact)", f("rho"))
        } else {
            format!(
                "{:.4} .. {:.4} (bounds: budget reached after {} rows; raise --rho-budget)",
                f("rho"),
                f("rho_upper"),
                u("rho_rows_examined")
            )
        };
        row(out, "ρ (max overlap)", rho)?;
    } else {
        let layout = o["layout"].as_str().unwrap_or("");
        let mut fmt = format!("ratings ({layout}-separated");
        if o["header"] == true {
            fmt.push_str(", with header");
        }
        if o["implicit"] == true {
            fmt.push_str(", implicit feedback");
        }
        fmt.push(')');
        row(out, "format", fmt)?;
        row(out, "ratings", group(u("ratings")))?;
        row(out, "users", group(u("users")))?;
        row(out, "items", group(u("items")))?;
        row(out, "density", format!("{:.4}%", 100.0 * f("density")))?;
        row(
            out,
            "rating range",
            format!(
                "{} .. {} (mean {:.3})",
                // Shortest text that reads back as the same f32 (not the f64 widening).
                f("min_rating") as f32,
                f("max_rating") as f32,
                f("mean_rating")
            ),
        )?;
        if u("duplicate_pairs") > 0 {
            row(out, "repeated pairs", group(u("duplicate_pairs")))?;
        }
        row(out, "Ω", "2 (one user and one item vector)".into())?;
        row(out, "Δ (max share)", format!("{:.4}", f("delta")))?;
        row(out, "ρ (max overlap)", format!("{:.4} (exact)", f("rho")))?;
    }
    if let Some(c) = o["cache"].as_str() {
        row(out, "cache", c.to_string())?;
    }
    Ok(())
}

/// 1234567 -> "1,234,567".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
