//! Where the writer's bytes go: the [`LogSink`] trait and its file
//! implementation, [`FileSink`].

use super::format::{file_name, MAX_FILE_INDEX};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The storage the [`AuditLog`](super::AuditLog) writer appends to, one
/// *segment* (a file of the log) at a time. [`FileSink`] is the
/// implementation; the trait is the seam for fault injection and for
/// wrappers (metrics, throttling): [`AuditLog::open_with`](super::AuditLog::open_with)
/// hands the file sink to a closure that may wrap it.
///
/// The writer, not the sink, decides what to write and when to sync,
/// truncate and rotate; it keeps every line in memory until the line is
/// durable, so a sink may fail any call at any time and be called again:
///
/// * after a failed [`append`](Self::append), the writer calls
///   [`truncate`](Self::truncate) with the segment's length before the
///   append, then appends the same bytes again;
/// * after a failed [`sync`](Self::sync), the bytes appended since the last
///   successful sync may not be on disk even if a later sync succeeds (on
///   Linux a failed fsync drops the dirty pages' error), so the writer
///   truncates to the last synced length and appends them again;
/// * [`rotate`](Self::rotate) is only called after a successful `sync`
///   (unless the fsync policy is `Never`).
///
/// A fault-injecting wrapper, as the tests use it:
///
/// ```
/// use hotpath_durable::audit_log::{FileSink, LogSink};
/// use std::io;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// struct Flaky {
///     inner: FileSink,
///     failing: Arc<AtomicBool>,
/// }
///
/// impl LogSink for Flaky {
///     fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
///         if self.failing.load(Ordering::Relaxed) {
///             return Err(io::Error::other("disk full (injected)"));
///         }
///         self.inner.append(bytes)
///     }
///     fn sync(&mut self) -> io::Result<()> { self.inner.sync() }
///     fn truncate(&mut self, len: u64) -> io::Result<()> { self.inner.truncate(len) }
///     fn rotate(&mut self) -> io::Result<()> { self.inner.rotate() }
/// }
/// ```
pub trait LogSink: Send + 'static {
    /// Appends `bytes` to the current segment. On error any prefix of
    /// `bytes` may have been written.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Makes everything appended to the current segment durable (fsync).
    fn sync(&mut self) -> io::Result<()>;

    /// Cuts the current segment back to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Ends the current segment and starts the next, empty one. The new
    /// segment must exist durably when this returns (the file sink fsyncs
    /// the directory).
    fn rotate(&mut self) -> io::Result<()>;
}

/// The log's files: appends to `audit.<index>.jsonl` in the log directory,
/// syncs with `fdatasync`, rotates to the next index. Made by
/// [`AuditLog::open`](super::AuditLog::open) after recovery; see
/// [`LogSink`] for how to wrap it.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    index: u64,
    file: File,
}

impl FileSink {
    /// Opens (creating it if needed) the file of `index` in `dir` for
    /// appending.
    pub(crate) fn open(dir: &Path, index: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(file_name(index)))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
            file,
        })
    }

    /// The file being appended to.
    pub fn path(&self) -> PathBuf {
        self.dir.join(file_name(self.index))
    }
}

impl LogSink for FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync also persists the size of an appended file.
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // The file is in append mode: the next write goes to the new end.
        self.file.set_len(len)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let index = self.index + 1;
        if index > MAX_FILE_INDEX {
            return Err(io::Error::other("audit log file index exhausted"));
        }
        let next = Self::open(&self.dir, index)?;
        // A previous attempt may have created it; anything in it is not ours.
        if next.file.metadata()?.len() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not empty", next.path().display()),
            ));
        }
        sync_dir(&self.dir)?;
        *self = next;
        Ok(())
    }
}

/// Makes the entries of `dir` (new files, their sizes after truncation)
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
