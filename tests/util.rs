//! Helpers: paths to bundled and shared data, and running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `datasets/` (bundled with the crate).
pub fn bundled(rel: &str) -> PathBuf {
    root().join("datasets").join(rel)
}

/// A file under `../shared/datasets`, or `None` (with a message) when it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = root().join("../shared/datasets").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is not present", p.display());
        None
    }
}

/// Runs `wildsgd` with `args`.
pub fn wildsgd<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_wildsgd"))
        .args(args)
        .output()
        .expect("run wildsgd")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a run failed with exit code 2 and a clean message (no panic text).
pub fn assert_bad_input(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    err
}

/// A path as a string argument.
pub fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
