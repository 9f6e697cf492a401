//! One integration-test binary (as ripgrep does): shared helpers in `util`, one module
//! per area.

mod cli;
mod corpus;
mod roundtrip;
mod util;
