//! Crash recovery when a log is opened: find the chain's head, cut a torn
//! final line (one without its newline, or bytes that are not JSON).

use super::format::{
    file_name, list_files, parse_line, ChainHash, LineDefect, LogHead, MAX_FILE_INDEX,
};
use super::sink::sync_dir;
use super::verify::VerifyError;
use super::AuditLogError;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of a cut line kept in [`Truncation::preview`].
const PREVIEW_BYTES: usize = 200;

/// What [`AuditLog::open`](super::AuditLog::open) found and repaired.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenReport {
    /// Log files found in the directory (0 for a new log).
    pub files: usize,
    /// The file the writer appends to.
    pub current_file: PathBuf,
    /// Seq of the last event in the log, `None` if it has none.
    pub last_seq: Option<u64>,
    /// Live generation recorded by the last event, `None` without events.
    /// A restarted executor must publish above it, so generations keep
    /// rising across restarts even when its persisted state is older than
    /// the log.
    pub last_generation: Option<u64>,
    /// Hash of the last line: the `prev` of the next line written.
    pub last_hash: ChainHash,
    /// Bytes cut from the end of the log, in all.
    pub truncated_bytes: u64,
    /// Each cut, newest file first (more than one only when a cut left a
    /// file empty and the file before it also ended in a torn line).
    pub truncations: Vec<Truncation>,
}

impl OpenReport {
    /// The seq the next event should carry to continue the log's numbering:
    /// `last_seq + 1`, or 0 for a log without events. A restarted executor
    /// should start numbering here.
    pub fn next_seq(&self) -> u64 {
        // A recovered seq is at most `MAX_AUDIT_SEQ` (2^62): no overflow.
        self.last_seq.map_or(0, |seq| seq.saturating_add(1))
    }
}

/// A final line that recovery cut off.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncation {
    /// The file.
    pub file: PathBuf,
    /// The line number of the cut line, from 1.
    pub line: u64,
    /// Where the file now ends (the cut line's offset).
    pub offset: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// Why the line was not a valid end of the chain.
    pub defect: LineDefect,
    /// The start of what was cut (at most 200 bytes, lossy UTF-8).
    pub preview: String,
}

/// The chain's head after recovery, and where writing continues.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) report: OpenReport,
    pub(crate) current_index: u64,
    pub(crate) current_len: u64,
}

/// How one file ends.
struct FileScan {
    /// Seq, hash and event generation of its last valid line.
    last: Option<(u64, ChainHash, Option<u64>)>,
    /// A final line to cut: line number, offset, length, defect.
    torn: Option<(u64, u64, u64, LineDefect)>,
    len: u64,
}

/// Finds the head of the chain in `dir` (creating the directory and its
/// first file for a new log), cutting a torn final line
/// ([`LineDefect::is_torn_write`]). Damage anywhere else, and a complete
/// final line that parses but does not verify, is refused: cutting it
/// would destroy the evidence the chain exists to keep.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, AuditLogError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AuditLogError::Io { path, source }
    };
    let files = list_files(dir).map_err(io_error(dir))?;
    let Some(&(current_index, ref current_path)) = files.last() else {
        let path = dir.join(file_name(1));
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(dir).map_err(io_error(dir))?;
        return Ok(Recovered {
            report: OpenReport {
                files: 0,
                current_file: path,
                last_seq: None,
                last_generation: None,
                last_hash: ChainHash::GENESIS,
                truncated_bytes: 0,
                truncations: Vec::new(),
            },
            current_index: 1,
            current_len: 0,
        });
    };
    let mut truncations = Vec::new();
    let mut head = None;
    let mut current_len = 0;
    for (index, path) in files.iter().rev() {
        let scan = scan(path).map_err(|e| match e {
            ScanError::Io(source) => AuditLogError::Io {
                path: path.clone(),
                source,
            },
            ScanError::Corrupt { line, defect } => AuditLogError::Corrupt(VerifyError::Line {
                file: path.clone(),
                line,
                defect,
            }),
        })?;
        let mut len = scan.len;
        if let Some((line, offset, bytes, defect)) = scan.torn {
            let preview = cut(path, offset).map_err(io_error(path))?;
            tracing::warn!(
                file = %path.display(), line, offset, bytes, %defect,
                "audit log: cut a torn final line"
            );
            truncations.push(Truncation {
                file: path.clone(),
                line,
                offset,
                bytes,
                defect,
                preview,
            });
            len = offset;
        }
        if *index == current_index {
            current_len = len;
        }
        if let Some(last) = scan.last {
            if *index != current_index {
                // The head is durable once open returns (the caller syncs
                // the current file; this one may never have been synced
                // under `FsyncPolicy::Never`).
                File::open(path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_error(path))?;
            }
            head = Some(last);
            break;
        }
    }
    if !truncations.is_empty() {
        sync_dir(dir).map_err(io_error(dir))?;
    }
    let (last_seq, last_generation, last_hash) = match head {
        Some((seq, hash, generation)) => (Some(seq), generation, hash),
        None => (None, None, ChainHash::GENESIS),
    };
    Ok(Recovered {
        report: OpenReport {
            files: files.len(),
            current_file: current_path.clone(),
            last_seq,
            last_generation,
            last_hash,
            truncated_bytes: truncations.iter().map(|t| t.bytes).sum(),
            truncations,
        },
        current_index,
        current_len,
    })
}

/// A new segment after `recovered`: the chain continues from `from`, not
/// from the directory's last line, in a file of its own (the current file
/// if it is empty, else the next index, created and synced).
pub(crate) fn new_segment(
    dir: &Path,
    recovered: Recovered,
    from: Option<LogHead>,
) -> Result<Recovered, AuditLogError> {
    let Recovered {
        mut report,
        current_index,
        current_len,
    } = recovered;
    let index = match current_len {
        0 => current_index,
        _ => current_index.saturating_add(1),
    };
    if index > MAX_FILE_INDEX {
        return Err(AuditLogError::Io {
            path: dir.to_path_buf(),
            source: io::Error::other("audit log file index exhausted"),
        });
    }
    let path = dir.join(file_name(index));
    let io_error = |source| AuditLogError::Io {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(io_error)?;
    if file.metadata().map_err(io_error)?.len() != 0 {
        return Err(io_error(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a new segment's file exists and is not empty",
        )));
    }
    sync_dir(dir).map_err(|source| AuditLogError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    report.current_file = path;
    report.last_seq = from.map(|h| h.seq);
    report.last_hash = from.map_or(ChainHash::GENESIS, |h| h.hash);
    Ok(Recovered {
        report,
        current_index: index,
        current_len: 0,
    })
}

enum ScanError {
    Io(io::Error),
    /// A bad line with more after it.
    Corrupt {
        line: u64,
        defect: LineDefect,
    },
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// Reads a file's lines, each checked and linked to the one before (the
/// first line's `prev` is taken as it is: other files are not read).
fn scan(path: &Path) -> Result<FileScan, ScanError> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut line = 0u64;
    let mut last: Option<(u64, ChainHash, Option<u64>)> = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)? as u64;
        if n == 0 {
            return Ok(FileScan {
                last,
                torn: None,
                len: offset,
            });
        }
        line += 1;
        let checked = match buf.strip_suffix(b"\n") {
            None => Err(LineDefect::Incomplete { bytes: n }),
            Some(content) => parse_line(content).and_then(|parsed| match last {
                Some((_, expected, _)) if parsed.prev != expected => Err(LineDefect::BrokenLink {
                    expected,
                    found: parsed.prev,
                }),
                _ => Ok((parsed.seq, parsed.hash, Some(parsed.generation))),
            }),
        };
        match checked {
            Ok(link) => last = Some(link),
            Err(defect) => {
                // Only what an interrupted write leaves may be cut, and
                // only at the end: a complete line that parses was
                // written whole, so a defect in it is tampering or a
                // wrong writer, and the evidence is kept.
                if !defect.is_torn_write() || !reader.fill_buf()?.is_empty() {
                    return Err(ScanError::Corrupt { line, defect });
                }
                return Ok(FileScan {
                    last,
                    torn: Some((line, offset, n, defect)),
                    len: offset + n,
                });
            }
        }
        offset += n;
    }
}

/// Truncates `path` to `offset` and syncs it; returns the start of what
/// was cut.
fn cut(path: &Path, offset: u64) -> io::Result<String> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut preview = Vec::with_capacity(PREVIEW_BYTES);
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    (&mut file)
        .take(PREVIEW_BYTES as u64)
        .read_to_end(&mut preview)?;
    file.set_len(offset)?;
    file.sync_all()?;
    Ok(String::from_utf8_lossy(&preview).into_owned())
}
