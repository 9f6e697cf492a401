//! The memory budget: every allocation whose size comes from the input (a feature
//! index, a count on the command line, a decompressed stream) is checked against it
//! before it is made, so a hostile or mistaken input ends in a clear error instead of
//! an allocation abort or the kernel's out-of-memory killer.
//!
//! The budget is what the system can still give: the smaller of the available physical
//! memory (`MemAvailable`) and the room left under the process's address-space limit
//! (`ulimit -v`), both read from `/proc` on Linux. [`set_budget`] caps the process's
//! resident memory below that: the room is then the cap less what is resident now.
//! Where nothing can be read (other systems) only fallible allocation guards the sizes.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// An explicit budget in bytes; 0 = automatic.
static BUDGET: AtomicU64 = AtomicU64::new(0);

/// Sets the budget for this process (`None`: automatic, from the system).
pub fn set_budget(bytes: Option<u64>) {
    BUDGET.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// The bytes that may still be allocated, if known.
pub fn budget() -> Option<u64> {
    let system = system_room();
    match BUDGET.load(Ordering::Relaxed) {
        0 => system,
        cap => {
            let resident = proc_field("/proc/self/status", "VmRSS:").map_or(0, |kb| kb * 1024);
            let room = cap.saturating_sub(resident);
            Some(system.map_or(room, |s| s.min(room)))
        }
    }
}

/// Bytes reserved (not committed) for each thread's stack and guard pages.
pub const THREAD_BYTES: u64 = 2 << 20;

/// Checks that `threads` threads can be started: their stacks count against the
/// address-space limit.
///
/// # Errors
/// [`Error::Memory`] when they would not fit.
pub fn check_threads(threads: usize) -> Result<()> {
    check(
        format!("starting {threads} threads"),
        bytes_of(&[threads as u64, THREAD_BYTES]),
        "use fewer `threads`",
    )
}

/// The smaller of `MemAvailable` and the room under `RLIMIT_AS`.
fn system_room() -> Option<u64> {
    let avail = proc_field("/proc/meminfo", "MemAvailable:").map(|kb| kb.saturating_mul(1024));
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("Max address space"))?;
            line["Max address space".len()..]
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        });
    let room = limit.map(|l| {
        let used = proc_field("/proc/self/status", "VmSize:").map_or(0, |kb| kb * 1024);
        l.saturating_sub(used)
    });
    match (avail, room) {
        (Some(a), Some(r)) => Some(a.min(r)),
        (a, r) => a.or(r),
    }
}

/// A `kB` field of a `/proc` file.
fn proc_field(path: &str, key: &str) -> Option<u64> {
    let t = std::fs::read_to_string(path).ok()?;
    let line = t.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Bytes as people read them: `17.2 GB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Checks that `bytes` (for `what`) fit the budget.
///
/// # Errors
/// [`Error::Memory`] saying what it would take, what there is, and `hint`.
pub fn check(what: impl Into<String>, bytes: u64, hint: &'static str) -> Result<()> {
    match budget() {
        Some(room) if bytes > room => Err(Error::Memory {
            what: what.into(),
            needed: bytes,
            available: Some(room),
            hint,
        }),
        _ => Ok(()),
    }
}

/// Multiplies sizes for a budget check, saturating (a saturated size never fits).
pub fn bytes_of(parts: &[u64]) -> u64 {
    parts.iter().fold(1u64, |a, &b| a.saturating_mul(b))
}

/// A vector of `n` copies of `v`, checked against the budget and allocated fallibly.
///
/// # Errors
/// [`Error::Memory`] when it does not fit.
pub fn filled<T: Clone>(n: usize, v: T, what: &str, hint: &'static str) -> Result<Vec<T>> {
    let bytes = bytes_of(&[n as u64, std::mem::size_of::<T>() as u64]);
    check(what, bytes, hint)?;
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| Error::Memory {
        what: what.to_string(),
        needed: bytes,
        available: budget(),
        hint,
    })?;
    out.resize(n, v);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_requests_are_errors_not_aborts() {
        let e = filled(usize::MAX / 8, 0u64, "a test vector", "ask for less").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("a test vector") && s.contains("ask for less"),
            "{s}"
        );
        assert!(filled(10, 1u8, "small", "").unwrap() == vec![1u8; 10]);
        assert_eq!(human(17_179_869_184), "17.2 GB");
        assert_eq!(bytes_of(&[u64::MAX, 2]), u64::MAX);
    }
}
