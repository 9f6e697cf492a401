pub mod mf;
pub mod parse;
pub mod train;
