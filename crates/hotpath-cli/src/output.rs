//! Outputs that appear complete or not at all.
//!
//! Each output file is written to a hidden temporary file (`.*.tmp`) in the
//! destination's directory, flushed and synced, and renamed over the final
//! name only by [`OutputFile::commit`]. An output directory (the audit log)
//! is written the same way: into a hidden temporary directory
//! (`.audit.*.tmp`), whose files and entries are synced and which is renamed
//! to its final name only by [`StagedDir::commit`]. A command that fails
//! leaves no partial output under a final name (and removes its temporary
//! files and directories; one that is killed may leave a stray hidden
//! `.*.tmp`).

use crate::CliError;
use serde::Serialize;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

/// Creates `dir` (and its parents) if needed and checks it is a directory.
pub fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    let reason = |e: std::io::Error| CliError::OutputDir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CliError::OutputDir {
            path: dir.to_path_buf(),
            reason: "exists and is not a directory".into(),
        }),
        Err(_) => fs::create_dir_all(dir).map_err(|e| CliError::OutputDir {
            path: dir.to_path_buf(),
            reason: format!("cannot be created: {e}"),
        }),
    }
    .and_then(|()| {
        // Fail now, before any work, if nothing can be written there.
        NamedTempFile::new_in(dir).map(drop).map_err(reason)
    })
}

/// An output being written; invisible under its final name until
/// [`commit`](Self::commit).
pub struct OutputFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
}

impl OutputFile {
    /// Starts writing what will become `path`.
    pub fn create(path: &Path) -> Result<Self, CliError> {
        let dir = parent(path);
        let mut builder = tempfile::Builder::new();
        builder.prefix(".").suffix(".tmp");
        // Like any new file (0666 less the umask), not tempfile's 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let file = builder
            .tempfile_in(dir)
            .map_err(|e| CliError::write(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Writes `value` as one JSON line.
    pub fn write_json_line(&mut self, value: &impl Serialize) -> Result<(), CliError> {
        serde_json::to_writer(&mut self.writer, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|e| CliError::write(&self.path, e))
    }

    /// Writes raw bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.writer
            .write_all(bytes)
            .map_err(|e| CliError::write(&self.path, e))
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(self) -> Result<PathBuf, CliError> {
        let path = self.path;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| CliError::write(&path, e.into_error()))?;
        file.as_file()
            .sync_all()
            .map_err(|e| CliError::write(&path, e))?;
        file.persist(&path)
            .map_err(|e| CliError::write(&path, e.error))?;
        Ok(path)
    }
}

/// The directory `path` is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the entries of `dir` durable (a rename, a new file).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// A directory being written; invisible under its final name until
/// [`commit`](Self::commit), removed (with its contents) if dropped before.
pub struct StagedDir {
    path: PathBuf,
    tmp: TempDir,
    replaceable: fn(&Path) -> bool,
}

impl StagedDir {
    /// Starts writing what will become the directory `path`. If `path`
    /// exists, the commit replaces it, but only if `replaceable` says so
    /// (checked now, before any work, and again at the commit).
    pub fn create(path: &Path, replaceable: fn(&Path) -> bool) -> Result<Self, CliError> {
        check_replaceable(path, replaceable)?;
        let name = path
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Like any new directory (0777 less the umask), not tempfile's 0700.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777));
        let tmp = builder
            .tempdir_in(parent(path))
            .map_err(|e| CliError::write(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            replaceable,
        })
    }

    /// Where to write meanwhile.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Syncs the files in the directory and the directory, then renames it
    /// to its final name (replacing what was there) and syncs the parent.
    pub fn commit(self) -> Result<PathBuf, CliError> {
        let Self {
            path,
            tmp,
            replaceable,
        } = self;
        let write_error = |e| CliError::write(&path, e);
        for entry in fs::read_dir(tmp.path()).map_err(write_error)? {
            let entry = entry.map_err(write_error)?;
            if entry.file_type().map_err(write_error)?.is_file() {
                fs::File::open(entry.path())
                    .and_then(|f| f.sync_all())
                    .map_err(write_error)?;
            }
        }
        sync_dir(tmp.path()).map_err(write_error)?;
        check_replaceable(&path, replaceable)?;
        let dir = parent(&path);
        // A directory cannot be renamed over a non-empty one: move the old
        // one aside first (into an empty directory that is removed with it),
        // put it back if the new one cannot take its place.
        let old = if fs::symlink_metadata(&path).is_ok() {
            let aside = tempfile::Builder::new()
                .prefix(".old.")
                .suffix(".tmp")
                .tempdir_in(dir)
                .map_err(write_error)?;
            fs::rename(&path, aside.path()).map_err(write_error)?;
            Some(aside)
        } else {
            None
        };
        let staged = tmp.keep();
        if let Err(e) = fs::rename(&staged, &path) {
            if let Some(old) = &old {
                let _ = fs::rename(old.path(), &path);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(write_error(e));
        }
        drop(old);
        sync_dir(dir).map_err(write_error)?;
        Ok(path)
    }
}

fn check_replaceable(path: &Path, replaceable: fn(&Path) -> bool) -> Result<(), CliError> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() && replaceable(path) => Ok(()),
        Ok(_) => Err(CliError::OutputDir {
            path: path.to_path_buf(),
            reason: "exists and is not an earlier output of this command, so it is not replaced; remove it or choose another output directory".into(),
        }),
    }
}
