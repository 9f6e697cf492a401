//! Each optimizer's `step`, run over a fixed gradient sequence, against
//! (a) trajectories from PyTorch's torch.optim or NumPy (`tests/reference/optim_refs.json`,
//!     made by `tests/reference/optim_refs.py`; the test itself needs no Python), and
//! (b) a plain f64 transcription of its equations in ALGORITHMS.md §2, written here
//!     independently of the library code.

use serde_json::Value;
use wildsgd::optim::*;

fn trajectory<O: Optimizer>(o: O, lr: f32, w0: &[f64], grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut w: Vec<f32> = w0.iter().map(|&x| x as f32).collect();
    let mut state = vec![vec![0f32; O::STATE]; w.len()];
    grads
        .iter()
        .enumerate()
        .map(|(t, g)| {
            let ctx = o.ctx(lr, t as u64 + 1);
            for c in 0..w.len() {
                w[c] = o.step(&ctx, w[c], g[c] as f32, &mut state[c]);
            }
            w.iter().map(|&x| f64::from(x)).collect()
        })
        .collect()
}

fn build(name: &str, p: &Value) -> OptimizerKind {
    let f = |k: &str| p[k].as_f64().map(|v| v as f32);
    let mut o = OptimizerKind::from_name(name).unwrap();
    match &mut o {
        OptimizerKind::Momentum(m) => m.gamma = f("gamma").unwrap(),
        OptimizerKind::Nag(m) => m.gamma = f("gamma").unwrap(),
        OptimizerKind::AdaGrad(a) => a.eps = f("eps").unwrap(),
        OptimizerKind::Adadelta(a) => {
            a.rho = f("rho").unwrap();
            a.eps = f("eps").unwrap();
        }
        OptimizerKind::RmsProp(a) => {
            a.gamma = f("gamma").unwrap();
            a.eps = f("eps").unwrap();
        }
        OptimizerKind::Adam(a) | OptimizerKind::NAdam(NAdam(a)) => {
            *a = Adam {
                beta1: f("beta1").unwrap(),
                beta2: f("beta2").unwrap(),
                eps: f("eps").unwrap(),
            }
        }
        OptimizerKind::AdaMax(a) => {
            a.beta1 = f("beta1").unwrap();
            a.beta2 = f("beta2").unwrap();
        }
        OptimizerKind::AdamW(a) => {
            a.adam = Adam {
                beta1: f("beta1").unwrap(),
                beta2: f("beta2").unwrap(),
                eps: f("eps").unwrap(),
            };
            a.weight_decay = f("weight_decay").unwrap();
        }
        OptimizerKind::Ftrl(x) => {
            *x = Ftrl {
                beta: f("beta").unwrap(),
                l1: f("l1").unwrap(),
                l2: f("l2").unwrap(),
            }
        }
        OptimizerKind::Sgd(_) => {}
    }
    o
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * (1.0 + b.abs())
}

#[test]
fn matches_pytorch_and_numpy_trajectories() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/optim_refs.json"
    ))
    .unwrap();
    let refs: Value = serde_json::from_str(&text).unwrap();
    let w0: Vec<f64> = serde_json::from_value(refs["w0"].clone()).unwrap();
    let grads: Vec<Vec<f64>> = serde_json::from_value(refs["grads"].clone()).unwrap();
    let cases = refs["cases"].as_array().unwrap();
    let mut seen = std::collections::HashSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        seen.insert(name.to_string());
        let lr = case["lr"].as_f64().unwrap() as f32;
        let want: Vec<Vec<f64>> = serde_json::from_value(case["weights"].clone()).unwrap();
        let o = build(name, &case["params"]);
        let got = wildsgd::with_optimizer!(o, opt => trajectory(opt, lr, &w0, &grads));
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            for c in 0..3 {
                assert!(
                    close(g[c], w[c], 2e-5),
                    "{name} ({}) step {} coord {c}: ours {} reference {}",
                    case["source"],
                    t + 1,
                    g[c],
                    w[c]
                );
            }
        }
    }
    for name in OptimizerKind::NAMES {
        assert!(seen.contains(name), "no reference trajectory for {name}");
    }
}

/// Plain f64 transcriptions of ALGORITHMS.md §2, one coordinate, no shared code.
fn naive(name: &str, lr: f64, w0: f64, grads: &[f64]) -> Vec<f64> {
    let (b1, b2, eps, gamma) = (0.9f64, 0.999f64, 1e-8f64, 0.9f64);
    let mut w = w0;
    let (mut a, mut b) = (0f64, 0f64);
    let mut out = Vec::new();
    for (i, &g) in grads.iter().enumerate() {
        let t = (i + 1) as i32;
        match name {
            "sgd" => w -= lr * g,
            "momentum" => {
                a = gamma * a + lr * g;
                w -= a;
            }
            "nag" => {
                a = gamma * a + lr * g;
                w -= gamma * a + lr * g;
            }
            "adagrad" => {
                a += g * g;
                w -= lr * g / (a + eps).sqrt();
            }
            "adadelta" => {
                let e = 1e-6;
                a = gamma * a + (1.0 - gamma) * g * g;
                let d = -((b + e).sqrt() / (a + e).sqrt()) * g;
                b = gamma * b + (1.0 - gamma) * d * d;
                w += lr * d;
            }
            "rmsprop" => {
                a = gamma * a + (1.0 - gamma) * g * g;
                w -= lr * g / (a + eps).sqrt();
            }
            "adam" | "adamw" | "nadam" => {
                if name == "adamw" {
                    w *= 1.0 - lr * 0.01;
                }
                a = b1 * a + (1.0 - b1) * g;
                b = b2 * b + (1.0 - b2) * g * g;
                let mh = a / (1.0 - b1.powi(t));
                let vh = b / (1.0 - b2.powi(t));
                if name == "nadam" {
                    w -= lr / (vh.sqrt() + eps) * (b1 * mh + (1.0 - b1) * g / (1.0 - b1.powi(t)));
                } else {
                    w -= lr * mh / (vh.sqrt() + eps);
                }
            }
            "adamax" => {
                a = b1 * a + (1.0 - b1) * g;
                b = (b2 * b).max(g.abs());
                w -= lr / (1.0 - b1.powi(t)) * a / b;
            }
            "ftrl" => {
                let sigma = ((b + g * g).sqrt() - b.sqrt()) / lr;
                a += g - sigma * w;
                b += g * g;
                w = -a / ((1.0 + b.sqrt()) / lr);
            }
            other => panic!("no naive form for {other}"),
        }
        out.push(w);
    }
    out
}

#[test]
fn matches_plain_transcriptions_of_the_equations() {
    let grads: Vec<f64> = (0..40)
        .map(|t| ((t * 37 % 17) as f64 - 8.0) / 5.0)
        .collect();
    for name in OptimizerKind::NAMES {
        let o = OptimizerKind::from_name(name).unwrap();
        let lr = 0.05f32;
        let got = wildsgd::with_optimizer!(o, opt => trajectory(opt, lr, &[0.25], &grads.iter().map(|&g| vec![g]).collect::<Vec<_>>()));
        let want = naive(name, f64::from(lr), 0.25, &grads);
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                close(g[0], *w, 1e-4),
                "{name} step {}: ours {} plain {}",
                t + 1,
                g[0],
                w
            );
        }
    }
}
