#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(unreachable_pub)]

pub mod atomic;
pub mod data;
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
    Dataset, Format, IndexBase, LibsvmOptions, LoadOptions, RatingsDataset, RatingsOptions,
    SparseDataset, load,
};
pub use error::{Error, ParseError, ParseErrorKind, Result};
