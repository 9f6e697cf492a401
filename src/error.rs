//! Error types: every malformed input becomes a located [`ParseError`]; nothing in
//! the data path panics.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wildsgd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data or model file is malformed; see the located [`ParseError`].
    #[error(transparent)]
    Parse(#[from] Box<ParseError>),
    /// An input file could not be opened or read.
    #[error("{}: cannot read", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// An output file could not be written.
    #[error("{}: cannot write", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Training diverged: the loss or the parameters became NaN or infinite.
    #[error(
        "training diverged in epoch {epoch}: {what} no longer finite (learning rate {lr}, L2 {l2:e}); {}",
        diverged_hint(*lr, *l2)
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// The learning rate of that epoch.
        lr: f32,
        /// The L2 strength λ.
        l2: f64,
        /// What stopped being finite: "the training loss is", "the weights are".
        what: &'static str,
    },
    /// A model's score is NaN or infinite on some row: the model diverged, or its
    /// weights overflow on this data.
    #[error(
        "the model's score for row {} is not finite (NaN or infinite): the model diverged or overflows on this data",
        row + 1
    )]
    NonFiniteScore {
        /// 0-based row of the data set.
        row: usize,
    },
    /// An allocation sized by the input would not fit in memory.
    #[error(
        "{what} needs {} of memory{}: {hint}",
        crate::memory::human(*needed),
        available.map_or(String::new(), |a| format!(", more than the {} available", crate::memory::human(a)))
    )]
    Memory {
        /// What was to be allocated, with the sizes that drive it.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes the budget allows, when known.
        available: Option<u64>,
        /// What the user can do about it.
        hint: &'static str,
    },
    /// A parameter is out of its allowed range or parameters contradict each other.
    #[error("invalid parameter `{name}`: {message}")]
    Config {
        /// The parameter, as spelled on the command line.
        name: &'static str,
        /// What was expected.
        message: String,
    },
}

/// What to change after a divergence: the L2 shrinkage lr·λ near or past 1 flips and
/// grows the weights whatever the loss, so then λ (or lr) must come down.
fn diverged_hint(lr: f32, l2: f64) -> String {
    let shrink = f64::from(lr) * l2;
    if shrink >= 0.5 {
        format!(
            "lr × L2 = {shrink:.3e} overshoots the L2 shrinkage (it must stay well below 1): lower the L2 strength `l2` or the learning rate `lr`"
        )
    } else {
        "lower the learning rate `lr`".into()
    }
}

impl Error {
    /// True for errors caused by the user's input or parameters (the CLI exits with 2),
    /// false for failures of the environment such as a failed write (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Write { .. })
    }

    /// Shorthand for a [`Error::Config`].
    pub fn config(name: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            name,
            message: message.into(),
        }
    }
}

/// `v` must be a positive, finite number.
pub(crate) fn check_positive<T: Into<f64> + Copy + std::fmt::Display>(
    name: &'static str,
    v: T,
) -> Result<()> {
    let x: f64 = v.into();
    if x > 0.0 && x.is_finite() {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("must be a positive number, got {v}"),
        ))
    }
}

/// `v` must be a non-negative, finite number.
pub(crate) fn check_non_negative<T: Into<f64> + Copy + std::fmt::Display>(
    name: &'static str,
    v: T,
) -> Result<()> {
    let x: f64 = v.into();
    if x >= 0.0 && x.is_finite() {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("must be a non-negative number, got {v}"),
        ))
    }
}

/// The settings every trainer shares: an optional positive learning rate, at least one
/// epoch, an optional non-negative L2 strength, an early-stopping patience of at least 1.
pub(crate) fn check_training<T: Into<f64> + Copy + std::fmt::Display>(
    lr: Option<f32>,
    epochs: usize,
    l2: Option<T>,
    early_stop: Option<usize>,
) -> Result<()> {
    if let Some(lr) = lr {
        check_positive("lr", lr)?;
    }
    if epochs == 0 {
        return Err(Error::config("epochs", "must be at least 1"));
    }
    if let Some(l2) = l2 {
        check_non_negative("l2", l2)?;
    }
    if early_stop == Some(0) {
        return Err(Error::config("early_stop", "patience must be at least 1"));
    }
    Ok(())
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(Box::new(e))
    }
}

/// A malformed input, located as precisely as the input allows.
///
/// Displayed as `FILE:LINE:COLUMN: what was wrong (found `TOKEN`)`, where missing
/// parts are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The file, when the input came from one.
    pub path: Option<PathBuf>,
    /// 1-based line number, when the problem is on a line.
    pub line: Option<u64>,
    /// 1-based byte column where the offending token starts.
    pub column: Option<usize>,
    /// The offending token, shortened to at most 40 characters.
    pub token: Option<String>,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// A new error of `kind` with no location yet.
    pub fn new(kind: ParseErrorKind) -> Self {
        ParseError {
            path: None,
            line: None,
            column: None,
            token: None,
            kind,
        }
    }

    /// Sets the line and the 1-based column.
    pub fn at(mut self, line: u64, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// Sets the line only.
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Records the offending token (shortened for display).
    pub fn token(mut self, token: &[u8]) -> Self {
        const MAX: usize = 40;
        let s = String::from_utf8_lossy(&token[..token.len().min(MAX)]).into_owned();
        self.token = Some(if token.len() > MAX {
            format!("{s}...")
        } else {
            s
        });
        self
    }

    /// Names the file the input came from.
    pub fn in_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}", p.display())?,
            None => write!(f, "<input>")?,
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.kind)?;
        if let Some(tok) = &self.token {
            write!(f, " (found `{tok}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// What exactly was wrong with an input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A token that should be a number is not one.
    #[error("expected {expected}")]
    NotANumber {
        /// What the token should have been.
        expected: &'static str,
    },
    /// A NaN or infinite number (or one outside f32's range).
    #[error("{what} must be a finite number")]
    NonFinite {
        /// Which value.
        what: &'static str,
    },
    /// A third distinct label value in a file read as binary classification.
    #[error(
        "a third label value {value} after {first} and {second}: wildsgd trains binary classifiers (any two label values; this file has more than two classes)"
    )]
    ThirdLabel {
        /// The third value.
        value: f64,
        /// The first value seen.
        first: f64,
        /// The second value seen.
        second: f64,
    },
    /// A label that is neither of the two classes the model was trained on.
    #[error("label {value} is neither of the model's two classes ({negative} and {positive})")]
    UnknownLabel {
        /// The value found.
        value: f64,
        /// The negative class's value.
        negative: f64,
        /// The positive class's value.
        positive: f64,
    },
    /// A feature token without `index:value` shape.
    #[error("expected `index:value` (missing `:`)")]
    MissingColon,
    /// A feature token with an empty value after `:`.
    #[error("expected a feature value after `:`")]
    MissingValue,
    /// Index 0 in a file read as 1-based.
    #[error("feature index 0 in a file read with 1-based indices (use --index-base zero)")]
    ZeroIndex,
    /// A negative feature index.
    #[error("feature index must be non-negative")]
    NegativeIndex,
    /// A feature index too large to store.
    #[error("feature index larger than {max}")]
    IndexTooLarge {
        /// Largest index accepted.
        max: u64,
    },
    /// A feature index beyond the fixed feature count.
    #[error(
        "feature index {index} is beyond the declared {n_features} features (indices {}..={} in this {}-based file)",
        u64::from(!zero_based),
        *n_features as u64 - u64::from(*zero_based),
        if *zero_based { 0 } else { 1 }
    )]
    IndexOutOfRange {
        /// The index as written in the file.
        index: u64,
        /// The declared feature count.
        n_features: usize,
        /// Whether the file's indices are 0-based.
        zero_based: bool,
    },
    /// The same feature twice in one row.
    #[error("feature index {index} appears twice in this row")]
    DuplicateIndex {
        /// The index as written in the file.
        index: u64,
    },
    /// Nothing but blank or comment lines.
    #[error("no data: the input is empty or holds only blank and comment lines")]
    Empty,
    /// A gzip stream that ends early.
    #[error("truncated gzip stream: the file ends before the compressed data does")]
    TruncatedGzip,
    /// A gzip stream that is corrupt.
    #[error("corrupt gzip stream: {0}")]
    CorruptGzip(String),
    /// A line longer than the limit.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A ratings line with the wrong number of fields.
    #[error("wrong number of fields: expected {expected}, found {found}")]
    FieldCount {
        /// What the file's first line established.
        expected: &'static str,
        /// What this line has.
        found: usize,
    },
    /// A binary file (model or cache) that is damaged or from another version.
    #[error("{0}")]
    BadBinary(String),
}
