//! Output files that appear complete or not at all.
//!
//! Each output is written to a hidden temporary file (`.tmp*`) in the
//! destination's directory, flushed and synced, and renamed over the final
//! name only by [`OutputFile::commit`]. A command that fails or is killed
//! leaves no partial file under the final name (at most a stray `.tmp*`
//! file, which failures clean up themselves).

use crate::CliError;
use serde::Serialize;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

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
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
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
