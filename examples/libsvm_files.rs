//! Train logistic regression on LIBSVM files, save the model, load it back, predict.
//!
//! `cargo run --release --no-default-features --example libsvm_files`

use wildsgd::prelude::*;

fn main() -> Result<()> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let opts = wildsgd::LibsvmOptions::default();
    let train = load_libsvm(format!("{dir}/datasets/a9a/a9a").as_ref(), &opts)?;
    // The test file is read like the training file: same classes, same index base, and
    // as many features (a9a.t lacks the last one).
    let test_opts = wildsgd::LibsvmOptions {
        n_features: Some(train.cols()),
        index_base: train.index_base(),
        labels: wildsgd::data::LabelRule::Known(train.classes()),
        ..opts
    };
    let test = load_libsvm(format!("{dir}/datasets/a9a/a9a.t").as_ref(), &test_opts)?;

    // Parameters are plain fields, checked before fitting.
    let cfg = TrainConfig {
        epochs: 10,
        ..TrainConfig::default()
    };
    cfg.check()?;
    let out = wildsgd::train::fit(&train, Some(&test), &cfg, |p| {
        if let wildsgd::Progress::Epoch(e) = p {
            println!(
                "epoch {:>2}: test log loss {:.4}",
                e.epoch,
                e.test_loss.unwrap_or(f64::NAN)
            );
        }
    })?;

    let path = std::env::temp_dir().join("wildsgd-example-a9a.wsgd");
    save_model(&out.model, &path)?;
    let model = load_model(&path)?;
    assert_eq!(model, out.model);
    let m = wildsgd::evaluate(&model, &test)?;
    println!(
        "{} test rows: log loss {:.4}, accuracy {:.4}, AUC {:.4} (model in {})",
        test.rows(),
        m.loss,
        m.accuracy,
        m.auc.unwrap_or(f64::NAN),
        path.display()
    );
    let (idx, val) = test.row(0);
    let row: Vec<(u32, f32)> = idx.iter().copied().zip(val.iter().copied()).collect();
    println!(
        "first test row: P(+1) = {:.3}, predicted label {}",
        model.predict_row(&row),
        model.predict_label(idx, val)
    );
    Ok(())
}
