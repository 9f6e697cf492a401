//! One integration-test binary (as ripgrep does): shared helpers in `util`, one module
//! per area.

mod cli;
mod cli_train;
mod corpus;
#[cfg(feature = "distributed")]
mod distributed;
mod dual;
mod engine;
mod hardening;
mod mf;
mod optim_ref;
mod roundtrip;
mod train;
mod util;
