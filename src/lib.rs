#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(unreachable_pub)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod atomic;
pub mod data;
#[cfg(feature = "distributed")]
pub mod distributed;
mod driver;
pub mod engine;
pub mod error;
pub mod generate;
pub mod memory;
pub mod metrics;
pub mod mf;
pub mod model;
pub mod optim;
pub mod params;
pub mod schedule;
pub mod train;

pub use data::{
    Classes, Dataset, Format, IndexBase, Label, LibsvmOptions, LoadOptions, RatingsDataset,
    RatingsOptions, SparseDataset, load, load_libsvm,
};
pub use engine::{EngineConfig, MfEngine, MfScheme, Replication, Scheme};
pub use metrics::{Metrics, evaluate};
pub use mf::{MfConfig, MfModel, MfOptimizer, MfOutcome, MfProgress};
pub use model::{
    AnyModel, LinearModel, LossKind, load_any_model, load_mf_model, load_model, save_mf_model,
    save_model,
};
pub use optim::OptimizerKind;
pub use schedule::Schedule;
pub use train::{L2Form, Order, Progress, TrainConfig, TrainOutcome};

/// Everything a typical program needs: `use wildsgd::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Classes, Dataset, EngineConfig, Error, Flow, LinearModel, LossKind, MfConfig, MfEngine,
        MfModel, MfOptimizer, MfScheme, OptimizerKind, RatingsDataset, Result, Scheme,
        SparseDataset, TrainConfig, load, load_any_model, load_libsvm, load_mf_model, load_model,
        save_mf_model, save_model,
    };
}
pub use error::{Error, ParseError, ParseErrorKind, Result};

/// What a progress callback returns: `()` to go on, or a [`std::ops::ControlFlow`],
/// whose `Break` stops the run at the end of the current epoch.
pub trait Flow {
    /// True when the run should stop.
    fn is_break(&self) -> bool;
}

impl Flow for () {
    fn is_break(&self) -> bool {
        false
    }
}

impl Flow for std::ops::ControlFlow<()> {
    fn is_break(&self) -> bool {
        std::ops::ControlFlow::is_break(self)
    }
}
