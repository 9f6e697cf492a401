//! `wildsgd._core`: the library's public API for Python (the estimators in
//! `wildsgd/__init__.py` are written over it). Arrays arrive as raw little-endian bytes
//! of a known dtype (the Python side makes them contiguous), settings as JSON. Training
//! releases the GIL; every epoch it takes the GIL back briefly to let Python handle a
//! signal (Ctrl-C stops the run, which raises `KeyboardInterrupt`) and to call the
//! progress callback. Errors are `ValueError` with the library's message.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;
use wildsgd::engine::{EngineConfig, MfEngine, MfScheme, Scheme};
use wildsgd::mf::{MfConfig, MfModel, MfOptimizer, MfProgress};
use wildsgd::model::LossKind;
use wildsgd::optim::OptimizerKind;
use wildsgd::train::{DualWrites, Progress, Solver, TrainConfig};
use wildsgd::{RatingsDataset, SparseDataset};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `n` little-endian i64 / f64 / f32 values from `b`.
fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}
fn f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}
fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The rows of a CSR matrix (indptr, indices, data as i64, i64, f64 bytes).
fn csr_rows(
    indptr: &[u8],
    indices: &[u8],
    data: &[u8],
    n_features: usize,
) -> PyResult<Vec<Vec<(u32, f32)>>> {
    let (p, ix, v) = (i64s(indptr), i64s(indices), f64s(data));
    if ix.len() != v.len() || p.first() != Some(&0) || p.last().copied() != Some(ix.len() as i64) {
        return Err(value_error("X: a malformed CSR matrix"));
    }
    let mut rows = Vec::with_capacity(p.len().saturating_sub(1));
    for w in p.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        if lo > hi {
            return Err(value_error("X: a malformed CSR matrix (indptr decreases)"));
        }
        let mut row = Vec::with_capacity((hi - lo) as usize);
        for k in lo as usize..hi as usize {
            let j = ix[k];
            if j < 0 || j as usize >= n_features {
                return Err(value_error(format!("X: column index {j} out of range")));
            }
            row.push((j as u32, v[k] as f32));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn get<'a>(p: &'a Value, key: &str) -> Option<&'a Value> {
    p.get(key).filter(|v| !v.is_null())
}

/// The training configuration from the estimator's parameters.
fn linear_config(p: &Value, n: usize) -> PyResult<TrainConfig> {
    let loss = match get(p, "loss").and_then(Value::as_str).unwrap_or("logistic") {
        "logistic" => LossKind::Logistic,
        "hinge" => LossKind::Hinge,
        "squared" => LossKind::Squared,
        other => {
            return Err(value_error(format!(
                "loss: expected logistic, hinge or squared, got {other:?}"
            )));
        }
    };
    let mut cfg = TrainConfig {
        loss,
        ..TrainConfig::default()
    };
    match get(p, "optimizer").and_then(Value::as_str).unwrap_or("sgd") {
        "dual-cd" => {
            cfg.solver = Solver::DualCd {
                writes: DualWrites::Atomic,
            };
            cfg.average = None;
        }
        "saga" => {
            cfg.solver = Solver::Saga;
            cfg.average = None;
        }
        name => cfg.optimizer = OptimizerKind::from_name(name).map_err(value_error)?,
    }
    if let Some(c) = get(p, "C").and_then(Value::as_f64) {
        if !(c > 0.0 && c.is_finite()) {
            return Err(value_error(format!(
                "C: must be a positive number, got {c}"
            )));
        }
        cfg.l2 = Some(1.0 / (c * n as f64));
    }
    if let Some(e) = get(p, "epochs") {
        cfg.epochs = e
            .as_u64()
            .ok_or_else(|| value_error("epochs: expected a positive integer"))?
            as usize;
    }
    cfg.tol = get(p, "tol").and_then(Value::as_f64);
    if let Some(lr) = get(p, "lr") {
        cfg.lr = Some(
            lr.as_f64()
                .ok_or_else(|| value_error("lr: expected a number"))? as f32,
        );
    }
    if let Some(a) = p.get("average") {
        cfg.average = if a.is_null() || a == &Value::Bool(false) {
            None
        } else {
            a.as_f64().or(cfg.average)
        };
    }
    if let Some(s) = get(p, "random_state").and_then(Value::as_u64) {
        cfg.seed = s;
    }
    cfg.engine = EngineConfig {
        scheme: Scheme::from_name(
            get(p, "scheme")
                .and_then(Value::as_str)
                .unwrap_or("hogwild"),
        )
        .map_err(value_error)?,
        threads: get(p, "threads").and_then(Value::as_u64).unwrap_or(0) as usize,
        pin: false,
        ..EngineConfig::default()
    };
    cfg.check().map_err(value_error)?;
    Ok(cfg)
}

/// Runs `train` with the GIL released; per epoch, hands `report` to `callback` (when
/// given) and checks for signals. Returns the result, or `KeyboardInterrupt`.
fn without_gil<T: Send, R: serde::Serialize>(
    py: Python<'_>,
    callback: Option<PyObject>,
    train: impl FnOnce(&mut dyn FnMut(&R) -> ControlFlow<()>) -> wildsgd::Result<T> + Send,
) -> PyResult<T> {
    let interrupted = AtomicBool::new(false);
    let failed: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
    let out = py.allow_threads(|| {
        train(&mut |rep: &R| {
            Python::with_gil(|py| {
                if let Err(e) = py.check_signals() {
                    interrupted.store(true, Ordering::Relaxed);
                    *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return ControlFlow::Break(());
                }
                if let Some(cb) = &callback {
                    let text = serde_json::to_string(rep).unwrap_or_default();
                    if let Err(e) = cb.call1(py, (text,)) {
                        *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })
        })
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(if interrupted.load(Ordering::Relaxed) {
            PyKeyboardInterrupt::new_err("training interrupted")
        } else {
            e
        });
    }
    out.map_err(value_error)
}

/// Each report as JSON.
fn json_lines<R: serde::Serialize>(reports: &[R]) -> Vec<String> {
    reports
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect()
}

/// Trains a linear model on a CSR matrix with labels 0/1 (int8 bytes); returns the
/// weights, the bias, the epoch reports (JSON Lines) and the done report (JSON).
#[pyfunction]
#[pyo3(signature = (indptr, indices, data, n_features, y, params, callback=None))]
#[allow(clippy::too_many_arguments)]
fn fit_linear(
    py: Python<'_>,
    indptr: &[u8],
    indices: &[u8],
    data: &[u8],
    n_features: usize,
    y: &[u8],
    params: &str,
    callback: Option<PyObject>,
) -> PyResult<(Vec<f32>, f32, Vec<String>, String)> {
    let p: Value = serde_json::from_str(params).map_err(value_error)?;
    let rows = csr_rows(indptr, indices, data, n_features)?;
    let labels: Vec<bool> = y.iter().map(|&b| b != 0).collect();
    let train = SparseDataset::from_rows(&rows, &labels, Some(n_features)).map_err(value_error)?;
    let cfg = linear_config(&p, train.rows())?;
    let out = without_gil(py, callback, |report| {
        wildsgd::train::fit(&train, None, &cfg, |prog| match prog {
            Progress::Epoch(rep) => report(rep),
            _ => ControlFlow::Continue(()),
        })
    })?;
    let epochs = json_lines(&out.epochs);
    Ok((
        out.model.weights.clone(),
        out.model.bias,
        epochs,
        serde_json::to_string(&out.done).unwrap_or_default(),
    ))
}

/// A trained matrix factorization (ids are the integer codes the Python side gave).
#[pyclass(module = "wildsgd._core")]
struct Mf {
    model: MfModel,
}

#[pymethods]
impl Mf {
    /// Predicted ratings for pairs of codes (i64 bytes); unknown ones get the mean and
    /// biases the model has.
    fn predict(&self, users: &[u8], items: &[u8]) -> Vec<f32> {
        i64s(users)
            .into_iter()
            .zip(i64s(items))
            .map(|(u, i)| self.model.predict_ids(u as u64, i as u64))
            .collect()
    }

    /// The `n` best items for `user`, as (code, score) pairs; `None` for an unknown user.
    fn recommend(&self, user: i64, n: usize) -> Option<Vec<(u64, f32)>> {
        self.model
            .recommend_for(user as u64, n)
            .map(|r| r.into_iter().map(|x| (x.item, x.score)).collect())
    }

    /// The model file's bytes (for pickling).
    fn to_bytes(&self) -> PyResult<Vec<u8>> {
        let dir = tempfile::tempdir().map_err(value_error)?;
        let path = dir.path().join("m.wsgd");
        wildsgd::model::save_mf_model(&self.model, &path).map_err(value_error)?;
        std::fs::read(&path).map_err(value_error)
    }

    /// A model from [`Mf::to_bytes`].
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Mf> {
        match wildsgd::model::decode_model(bytes).map_err(value_error)? {
            wildsgd::model::AnyModel::Mf(model) => Ok(Mf { model }),
            wildsgd::model::AnyModel::Linear(_) => {
                Err(value_error("not a matrix-factorization model"))
            }
        }
    }
}

/// Trains matrix factorization on (user, item, rating) codes (i64, i64, f32 bytes).
#[pyfunction]
#[pyo3(signature = (users, items, ratings, params, callback=None))]
fn fit_mf(
    py: Python<'_>,
    users: &[u8],
    items: &[u8],
    ratings: &[u8],
    params: &str,
    callback: Option<PyObject>,
) -> PyResult<(Mf, Vec<String>, String)> {
    let p: Value = serde_json::from_str(params).map_err(value_error)?;
    let u: Vec<u64> = i64s(users).into_iter().map(|x| x as u64).collect();
    let i: Vec<u64> = i64s(items).into_iter().map(|x| x as u64).collect();
    let train = RatingsDataset::from_triplets(&u, &i, &f32s(ratings)).map_err(value_error)?;
    let mut cfg = MfConfig::default();
    if let Some(k) = get(&p, "rank").and_then(Value::as_u64) {
        cfg.rank = k as usize;
    }
    if let Some(e) = get(&p, "epochs").and_then(Value::as_u64) {
        cfg.epochs = e as usize;
    }
    cfg.optimizer = match get(&p, "optimizer")
        .and_then(Value::as_str)
        .unwrap_or("adagrad")
    {
        "adagrad" => MfOptimizer::AdaGrad,
        "sgd" => MfOptimizer::Sgd,
        other => MfOptimizer::Other(OptimizerKind::from_name(other).map_err(value_error)?),
    };
    cfg.lr = get(&p, "lr").and_then(Value::as_f64).map(|x| x as f32);
    cfg.l2 = get(&p, "l2").and_then(Value::as_f64).map(|x| x as f32);
    if let Some(s) = get(&p, "random_state").and_then(Value::as_u64) {
        cfg.seed = s;
    }
    cfg.engine = MfEngine {
        scheme: MfScheme::from_name(get(&p, "scheme").and_then(Value::as_str).unwrap_or("block"))
            .map_err(value_error)?,
        threads: get(&p, "threads").and_then(Value::as_u64).unwrap_or(0) as usize,
        pin: false,
    };
    cfg.check().map_err(value_error)?;
    let out = without_gil(py, callback, |report| {
        wildsgd::mf::fit(&train, None, &cfg, |prog| match prog {
            MfProgress::Epoch(rep) => report(rep),
            _ => ControlFlow::Continue(()),
        })
    })?;
    let epochs = json_lines(&out.epochs);
    let done = serde_json::to_string(&out.done).unwrap_or_default();
    Ok((Mf { model: out.model }, epochs, done))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_linear, m)?)?;
    m.add_function(wrap_pyfunction!(fit_mf, m)?)?;
    m.add_class::<Mf>()?;
    Ok(())
}
