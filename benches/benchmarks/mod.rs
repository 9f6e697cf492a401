pub mod parse;
pub mod train;
