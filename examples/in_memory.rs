//! A classifier from rows built in memory (bool labels), with a progress callback that
//! stops the run once the held-out accuracy is good enough.
//!
//! `cargo run --release --no-default-features --example in_memory`

use std::ops::ControlFlow;

use wildsgd::prelude::*;

fn main() -> Result<()> {
    // Two informative features and noise: spam if "free" (0) outweighs "meeting" (1).
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    for _ in 0..5000 {
        let (free, meeting, noise) = (next(), next(), next());
        rows.push(vec![
            (0, free),
            (1, meeting),
            (2 + (noise * 100.0) as u32, 1.0),
        ]);
        labels.push(free > meeting);
    }
    let data = SparseDataset::from_rows(&rows, &labels, None)?;
    let (train, test) = data.split_holdout(0.2, 7)?;

    let cfg = TrainConfig {
        epochs: 50,
        optimizer: OptimizerKind::from_name("adagrad")?,
        engine: EngineConfig {
            scheme: Scheme::Sequential,
            ..EngineConfig::default()
        },
        ..TrainConfig::default()
    };
    let out = wildsgd::train::fit(&train, Some(&test), &cfg, |p| match p {
        wildsgd::Progress::Epoch(e) if e.test_accuracy >= Some(0.95) => {
            println!(
                "epoch {}: test accuracy {:.3}, stopping",
                e.epoch,
                e.test_accuracy.unwrap_or(0.0)
            );
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })?;
    println!(
        "{} epochs, test accuracy {:.3}, stopped by the callback: {}",
        out.done.epochs,
        out.done.test_accuracy.unwrap_or(0.0),
        out.done.stopped_by_caller
    );
    for row in [vec![(0, 0.9), (1, 0.1)], vec![(0, 0.1), (1, 0.8)]] {
        println!(
            "free {:.1}, meeting {:.1}: P(spam) = {:.3}, class {}",
            row[0].1,
            row[1].1,
            out.model.predict_row(&row),
            out.model
                .predict_label(&[row[0].0, row[1].0], &[row[0].1, row[1].1])
        );
    }
    Ok(())
}
