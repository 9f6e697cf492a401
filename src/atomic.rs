//! Output files that appear whole or not at all: data is written to a temporary file
//! in the destination's directory and renamed over the destination only on
//! [`AtomicFile::commit`]. A run that fails (or panics) leaves any existing file
//! untouched and removes its temporary file.
//!
//! Details a user can count on:
//! - every temporary file has a name of its own (`.NAME.PID.N.tmp`, created exclusively),
//!   so two outputs of one run never share one;
//! - a destination that is a symbolic link is written through: the link's final target
//!   is replaced, the link stays;
//! - a destination that exists and is not a regular file (`/dev/null`, a FIFO, a
//!   terminal) is opened and written directly, as `cat > path` would; it cannot be
//!   replaced atomically, and renaming over it would destroy a device node;
//! - temporary files still pending are listed, and [`remove_pending`] deletes them: the
//!   CLI calls it on SIGINT/SIGTERM, so an interrupted run leaves nothing behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files created and not yet renamed or removed.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Makes every temporary name of this process distinct.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves a valid list: keep using it.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file still pending (for a signal handler: after it, the
/// process should exit without committing anything).
pub fn remove_pending() {
    for p in pending().drain(..) {
        let _ = fs::remove_file(p);
    }
}

/// Follows symbolic links from `path` to the file they finally name (which may not
/// exist yet), as the kernel does when opening it for writing.
///
/// # Errors
/// More than 40 links in a chain (a loop), or a link that cannot be read.
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

#[derive(Debug, Clone)]
enum Target {
    /// A temporary file, renamed over `dest` on commit.
    Temp { dest: PathBuf, tmp: PathBuf },
    /// A special file written in place, or a temporary file already renamed.
    Direct,
}

/// A file being written atomically; see the module docs.
#[derive(Debug)]
pub struct AtomicFile {
    target: Target,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `dest` (through a hidden temporary file beside it, or directly
    /// when `dest` is a special file).
    ///
    /// # Errors
    /// When the temporary file cannot be created (missing directory, no permission), or
    /// `dest` is a directory.
    pub fn create(dest: &Path) -> io::Result<Self> {
        // Special files first, through the kernel's own link resolution: /dev/stdout
        // links to /proc/self/fd/1, whose target (`pipe:[…]`) is no path.
        match fs::metadata(dest) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory",
                ));
            }
            Ok(m) if !m.is_file() => {
                let file = OpenOptions::new().write(true).truncate(true).open(dest)?;
                return Ok(AtomicFile {
                    target: Target::Direct,
                    file: Some(BufWriter::with_capacity(1 << 16, file)),
                });
            }
            _ => {}
        }
        let dest = resolve_links(dest)?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Room for the prefix and suffix under the usual 255-byte name limit.
        let full = dest.file_name().unwrap_or_default().to_string_lossy();
        let mut cut = full.len().min(200);
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        let name = &full[..cut];
        let file = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            // Register first, so that a signal arriving right after creation finds it.
            pending().push(tmp.clone());
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => break (f, tmp),
                Err(e) => {
                    pending().retain(|p| p != &tmp);
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
            }
        };
        let (file, tmp) = file;
        // A replaced file keeps its permissions.
        if let Ok(m) = fs::metadata(&dest) {
            let _ = fs::set_permissions(&tmp, m.permissions());
        }
        Ok(AtomicFile {
            target: Target::Temp { dest, tmp },
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Flushes, syncs and renames the temporary file over the destination.
    ///
    /// # Errors
    /// Any I/O error on the way; the destination is then unchanged.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("file present until commit");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        match &self.target.clone() {
            Target::Direct => Ok(()),
            Target::Temp { dest, tmp } => {
                file.sync_all()?;
                fs::rename(tmp, dest)?;
                pending().retain(|p| p != tmp);
                self.target = Target::Direct;
                Ok(())
            }
        }
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("file present until commit")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Not committed (or the rename failed): remove the temporary file.
        if let Target::Temp { tmp, .. } = &self.target {
            self.file = None;
            let _ = fs::remove_file(tmp);
            pending().retain(|p| p != tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
///
/// # Errors
/// Any I/O error; `dest` is then unchanged.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit()
}

/// True when `a` and `b` name the same file: the same inode when both exist (through
/// links, `..` and hard links alike), else the same path once links are resolved.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    let norm = |p: &Path| -> Option<PathBuf> {
        let p = resolve_links(p).ok()?;
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(fs::canonicalize(dir).ok()?.join(p.file_name()?))
    };
    match (norm(a), norm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        fs::write(&p, "good").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "good");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file removed"
        );
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn two_files_for_one_destination_get_their_own_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut a = AtomicFile::create(&p).unwrap();
        let mut b = AtomicFile::create(&p).unwrap();
        a.write_all(b"aaaa").unwrap();
        b.write_all(b"bb").unwrap();
        a.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"aaaa");
        drop(b);
        assert_eq!(fs::read(&p).unwrap(), b"aaaa");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_written_through_and_special_files_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink("real", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        // /dev/null stays a device.
        write_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(!fs::metadata("/dev/null").unwrap().is_file());
        assert!(same_file(&link, &target));
        assert!(
            same_file(&dir.path().join("x/../real"), &target) || !dir.path().join("x").exists()
        );
        assert!(!same_file(&link, &dir.path().join("other")));
        // A name near the 255-byte limit still gets a temporary file.
        let long = dir.path().join("n".repeat(250));
        write_atomic(&long, b"x").unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"x");
    }

    #[test]
    fn pending_temporaries_are_listed_until_committed_or_dropped() {
        // (remove_pending itself is exercised by the CLI's signal test: calling it here
        // would delete other tests' temporaries.)
        let dir = tempfile::tempdir().unwrap();
        let listed = |dir: &Path| pending().iter().filter(|p| p.starts_with(dir)).count();
        let f = AtomicFile::create(&dir.path().join("o")).unwrap();
        assert_eq!(listed(dir.path()), 1);
        f.commit().unwrap();
        assert_eq!(listed(dir.path()), 0);
        drop(AtomicFile::create(&dir.path().join("o")).unwrap());
        assert_eq!(listed(dir.path()), 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
