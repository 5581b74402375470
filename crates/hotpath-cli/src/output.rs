//! Output directories: one run at a time, and a run's outputs visible
//! together or not at all.
//!
//! # The rule
//!
//! * **One run per directory.** A run that writes into a directory (`replay`
//!   and `demo` alike) holds an exclusive lock on it ([`DirLock`], an
//!   advisory `flock` on the directory itself, released when the process
//!   ends, killed or not); a second run is refused at once with an "in use"
//!   error naming the directory.
//! * **All or nothing** (`replay`). Everything a run writes goes into a
//!   hidden staging directory beside the output directory, in the same
//!   parent (`PARENT/.DIR.hotpath-XXXXXX.tmp/`, a unique name). Only when
//!   the whole run has succeeded are its files and directories synced and
//!   the staging directory *exchanged* with the output directory in one
//!   step (`renameat2(RENAME_EXCHANGE)` on Linux), then the parent synced
//!   and the previous set removed. Before that step the output directory
//!   holds the previous complete set, untouched; after it, the new one. A
//!   run that fails removes its staging directory; one that is killed may
//!   leave it behind, hidden, and the next run on that directory removes it.
//!   (Where the exchange is not available, the previous set is moved aside
//!   and the new one renamed in: a crash between the two leaves no output
//!   directory and the previous set under a hidden name, never a mix.)
//! * **A state file outside the directory** (`[output] state_file` elsewhere)
//!   is staged beside its final name and renamed in right after the
//!   exchange (the exchange is undone if that fails). A crash between the
//!   two steps can leave the new directory with the previous state file;
//!   the state file names the last audit event it covers, so that pair is
//!   refused when the state is restored, never taken as one run's.
//! * **Inputs are never outputs.** An input (the config, the telemetry)
//!   inside the output directory, or an output path that resolves (through
//!   links) to an input or to something that is not a regular file (a
//!   device, a directory), is refused before anything is written. So is an
//!   output directory holding anything but this command's outputs, or
//!   holding the current directory (which the exchange would leave deleted
//!   under the caller).

use crate::CliError;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

/// How many times [`DirLock::take`] tries again when the directory it
/// locked was replaced meanwhile (by the run that held it, committing).
const LOCK_ATTEMPTS: usize = 8;

/// What staging directories and temporary files are called: `.NAME.hotpath-`.
fn staging_prefix(name: &str) -> String {
    format!(".{name}.hotpath-")
}

/// Random characters tempfile puts in a name.
const RANDOM_CHARS: usize = 6;

/// An exclusive lock on an output directory, held until dropped (or until
/// the process ends).
///
/// ```
/// use hotpath_cli::output::DirLock;
///
/// let dir = tempfile::tempdir()?;
/// let lock = DirLock::take(dir.path())?;
/// let busy = DirLock::take(dir.path()).unwrap_err();
/// assert!(busy.to_string().contains("in use by another hotpath run"));
/// drop(lock);
/// assert!(DirLock::take(dir.path()).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DirLock {
    /// The directory, canonical.
    path: PathBuf,
    /// The directory, open and locked (held, not read: the lock lasts as
    /// long as the handle).
    _held: File,
    /// `true` if taking the lock created the directory.
    created: bool,
}

impl DirLock {
    /// Locks `dir`, creating it (and its parents) if it is missing.
    ///
    /// # Errors
    ///
    /// [`CliError::OutputDir`]: `dir` is not a directory, cannot be
    /// created, or is in use by another run.
    pub fn take(dir: &Path) -> Result<Self, CliError> {
        let refuse = |reason: String| CliError::OutputDir {
            path: dir.to_path_buf(),
            reason,
        };
        let created = match fs::metadata(dir) {
            Ok(m) if m.is_dir() => false,
            Ok(_) => return Err(refuse("exists and is not a directory".into())),
            Err(_) => {
                fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot be created: {e}")))?;
                true
            }
        };
        for _ in 0..LOCK_ATTEMPTS {
            let path = fs::canonicalize(dir).map_err(|e| refuse(e.to_string()))?;
            let file = File::open(&path).map_err(|e| refuse(e.to_string()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(refuse(
                        "in use by another hotpath run (it holds the directory's lock); \
                         wait for it to finish or choose another directory"
                            .into(),
                    ))
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(refuse(format!("cannot be locked: {e}")))
                }
            }
            // The run that held it may have swapped a new directory in
            // while this one was opening the old: lock what the name is now.
            if same_file(&file, &path) {
                return Ok(Self {
                    path,
                    _held: file,
                    created,
                });
            }
        }
        Err(refuse(
            "kept being replaced while it was being locked".into(),
        ))
    }

    /// The directory, canonical.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let lock = hotpath_cli::output::DirLock::take(&dir.path().join("new"))?; // created
    /// assert!(lock.path().is_dir());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `true` if `file` is what `path` names now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Checks `dir` (locked) can take files: fails now, before any work, if
/// nothing can be written there.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// hotpath_cli::output::check_writable(dir.path())?;
/// assert!(hotpath_cli::output::check_writable(&dir.path().join("missing")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`CliError::OutputDir`].
pub fn check_writable(dir: &Path) -> Result<(), CliError> {
    NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| CliError::OutputDir {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Refuses an output `path` that exists and resolves (through links) to
/// one of `inputs` or to something that is not a regular file.
///
/// ```
/// use hotpath_cli::output::{canonical_inputs, check_output_file};
///
/// let dir = tempfile::tempdir()?;
/// let config = dir.path().join("tuning.toml");
/// std::fs::write(&config, "")?;
/// let inputs = canonical_inputs(&[&config]);
/// assert!(check_output_file(&config, &inputs).is_err());        // an input
/// assert!(check_output_file(dir.path(), &inputs).is_err());     // a directory
/// assert!(check_output_file(&dir.path().join("state.json"), &inputs).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`CliError::OutputDir`] naming the path.
pub fn check_output_file(path: &Path, inputs: &[PathBuf]) -> Result<(), CliError> {
    let refuse = |reason: String| CliError::OutputDir {
        path: path.to_path_buf(),
        reason,
    };
    let Ok(resolved) = fs::canonicalize(path) else {
        // Missing (or a dangling link, which the rename replaces).
        return Ok(());
    };
    if let Some(input) = inputs.iter().find(|i| **i == resolved) {
        return Err(refuse(format!(
            "is the input {}: an output must not overwrite an input",
            input.display()
        )));
    }
    match fs::metadata(&resolved) {
        Ok(m) if !m.is_file() => Err(refuse(
            "exists and is not a regular file; not replacing it".into(),
        )),
        _ => Ok(()),
    }
}

/// The inputs of a run, canonical (the ones that exist).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let missing = dir.path().join("missing.jsonl");
/// assert_eq!(hotpath_cli::output::canonical_inputs(&[dir.path(), &missing]).len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn canonical_inputs(inputs: &[&Path]) -> Vec<PathBuf> {
    inputs
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect()
}

/// A directory an output directory may hold, with a test of what it
/// holds (`audit`, a log).
///
/// ```
/// use hotpath_cli::output::ExpectedDir;
///
/// let audit: ExpectedDir = ("audit", hotpath_cli::audit_log::is_replaceable);
/// # let _ = audit;
/// ```
pub type ExpectedDir<'a> = (&'a str, fn(&Path) -> bool);

/// What an existing output directory may hold to be replaced by a new
/// set: the named outputs, each of the right kind.
///
/// ```
/// use hotpath_cli::output::Expected;
///
/// const REPLAY: Expected = Expected {
///     files: &["decisions.jsonl"],
///     dirs: &[("audit", hotpath_cli::audit_log::is_replaceable)],
/// };
/// # let _ = REPLAY;
/// ```
pub struct Expected<'a> {
    /// Files (`decisions.jsonl`).
    pub files: &'a [&'a str],
    /// Directories.
    pub dirs: &'a [ExpectedDir<'a>],
}

/// A new set of outputs for one directory, staged beside it and swapped
/// in whole by [`commit`](Self::commit) (see the [module docs](self)).
///
/// ```
/// use hotpath_cli::output::{Expected, OutputSet};
///
/// let root = tempfile::tempdir()?;
/// let out = root.path().join("out");
/// let expected = Expected { files: &["decisions.jsonl"], dirs: &[] };
/// let (set, state) = OutputSet::begin(&out, &expected, &out.join("state.json"), &[])?;
/// std::fs::write(set.staging().join("decisions.jsonl"), "{}\n")?;
/// std::fs::write(&state, "{}")?;                 // staged: nothing visible yet
/// assert!(!out.join("decisions.jsonl").exists());
/// let written = set.commit(&["decisions.jsonl", "state.json"])?;
/// assert!(written.iter().all(|p| p.is_file())); // all at once
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OutputSet {
    lock: DirLock,
    staging: TempDir,
    /// A state file outside the directory: its final path and where the
    /// run writes it meanwhile (inside the staging directory).
    outside: Option<(PathBuf, PathBuf)>,
}

impl OutputSet {
    /// Locks `dir` (creating it if missing), checks it holds nothing but
    /// `expected` outputs (and the state file, when `state_file` is directly
    /// in it) and no input, removes what killed runs on it left behind,
    /// and starts a staging directory beside it. Returns the set and where
    /// the run writes the state file meanwhile.
    ///
    /// # Errors
    ///
    /// [`CliError::OutputDir`] naming the directory or the path at fault:
    /// an input inside the directory, an output path that resolves to an
    /// input or to something that is not a regular file, something in the
    /// directory that is not an earlier output, a state file inside a
    /// subdirectory of it or named like another output, a directory in use.
    pub fn begin(
        dir: &Path,
        expected: &Expected,
        state_file: &Path,
        inputs: &[PathBuf],
    ) -> Result<(Self, PathBuf), CliError> {
        let lock = DirLock::take(dir)?;
        let real = lock.path().to_path_buf();
        let refuse = |path: &Path, reason: String| CliError::OutputDir {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(input) = inputs.iter().find(|i| i.starts_with(&real)) {
            return Err(refuse(
                dir,
                format!(
                    "holds {}, an input of this run: the outputs replace this directory; choose another one",
                    input.display()
                ),
            ));
        }
        if std::env::current_dir()
            .and_then(fs::canonicalize)
            .is_ok_and(|cwd| cwd.starts_with(&real))
        {
            return Err(refuse(
                dir,
                "is (or holds) the current directory: the outputs replace this directory; \
                 choose one beside or below it"
                    .into(),
            ));
        }
        let state = resolve_output(state_file)?;
        check_output_file(&state, inputs)?;
        let state_inside = match state.strip_prefix(&real) {
            Err(_) => None,
            Ok(inside) => {
                let name = inside.to_string_lossy().into_owned();
                let reserved = expected.files.contains(&name.as_str())
                    || expected.dirs.iter().any(|(d, _)| *d == name);
                if inside.components().count() != 1 || reserved {
                    return Err(refuse(
                        state_file,
                        "must be directly in the output directory, not named like another output, or outside it"
                            .into(),
                    ));
                }
                Some(name)
            }
        };
        for entry in fs::read_dir(&real).map_err(|e| refuse(dir, e.to_string()))? {
            let entry = entry.map_err(|e| refuse(dir, e.to_string()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if expected.files.contains(&name.as_ref()) || state_inside.as_deref() == Some(&name) {
                check_output_file(&path, inputs)?;
            } else if let Some((_, sound)) = expected.dirs.iter().find(|(d, _)| *d == name) {
                let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                if !is_dir || !sound(&path) {
                    return Err(refuse(
                        &path,
                        "exists and is not an earlier output of this command, so it is not replaced; \
                         remove it or choose another output directory"
                            .into(),
                    ));
                }
            } else {
                return Err(refuse(
                    dir,
                    format!(
                        "holds {name}, which is not an output of this command, so the directory is not replaced; \
                         remove it or choose another output directory"
                    ),
                ));
            }
        }
        let parent = parent_of(&real);
        let name = file_name(&real);
        remove_stale_staging(parent, &name);
        // Like any new directory (0777 less the umask), not tempfile's 0700.
        let staging = hidden(&name, 0o777, |b| b.tempdir_in(parent))
            .map_err(|e| refuse(dir, format!("cannot stage the outputs beside it: {e}")))?;
        let (staged_state, outside) = match state_inside {
            Some(name) => (staging.path().join(name), None),
            None => {
                // Outside: written in the staging directory under a name
                // no output has, moved beside its final name at the commit.
                let staged = staging.path().join(".state");
                (staged.clone(), Some((state, staged)))
            }
        };
        Ok((
            Self {
                lock,
                staging,
                outside,
            },
            staged_state,
        ))
    }

    /// The directory the run writes into meanwhile (see [`OutputSet`]).
    pub fn staging(&self) -> &Path {
        self.staging.path()
    }

    /// The output directory (canonical; see [`OutputSet`]).
    pub fn dir(&self) -> &Path {
        self.lock.path()
    }

    /// Makes the staged outputs the directory's, in one step (see the
    /// [module docs](self)); returns the final paths of `names` (entries
    /// of the staged directory) and of the state file, if staged outside.
    ///
    /// # Errors
    ///
    /// [`CliError::Write`]: the staged files could not be synced or
    /// swapped in; the previous outputs are left as they were.
    pub fn commit(self, names: &[&str]) -> Result<Vec<PathBuf>, CliError> {
        let Self {
            mut lock,
            staging,
            outside,
        } = self;
        let dir = lock.path().to_path_buf();
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |e| CliError::write(&path, e)
        };
        // The state file kept outside: written beside its final name now,
        // renamed in after the exchange.
        let outside = match outside {
            Some((path, staged)) => {
                let bytes = fs::read(&staged).map_err(write_error(&path))?;
                fs::remove_file(&staged).map_err(write_error(&staged))?;
                Some((stage_beside(&path, &bytes)?, path))
            }
            None => None,
        };
        sync_tree(staging.path()).map_err(write_error(&dir))?;
        if let Ok(m) = fs::metadata(&dir) {
            // The new directory keeps the old one's permissions.
            let _ = fs::set_permissions(staging.path(), m.permissions());
        }
        let parent = parent_of(&dir).to_path_buf();
        swap(staging.path(), &dir, &parent).map_err(write_error(&dir))?;
        sync_dir(&parent).map_err(write_error(&parent))?;
        let mut outputs: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        if let Some((temp, path)) = outside {
            if let Err(e) = temp.persist(&path) {
                // Undo: the previous set back, as if the run had failed.
                let _ = swap(staging.path(), &dir, &parent);
                let _ = sync_dir(&parent);
                return Err(CliError::write(&path, e.error));
            }
            sync_dir(parent_of(&path)).map_err(write_error(&path))?;
            outputs.push(path);
        }
        // `staging` now holds the previous set: dropping it removes it.
        drop(staging);
        lock.created = false;
        drop(lock);
        Ok(outputs)
    }
}

impl Drop for DirLock {
    /// A directory the lock created for a run that did not commit is
    /// removed again if it is still empty.
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// `bytes` in a hidden temporary file beside `path`, synced, to be renamed
/// over it.
fn stage_beside(path: &Path, bytes: &[u8]) -> Result<NamedTempFile, CliError> {
    use std::io::Write;
    let mut file = hidden(&file_name(path), 0o666, |b| b.tempfile_in(parent_of(path)))
        .map_err(|e| CliError::write(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| CliError::write(path, e))?;
    Ok(file)
}

/// Exchanges the directories `a` and `b` (both in `parent`) in one step
/// where the system can (Linux); elsewhere moves `b` aside, `a` to `b`, and
/// the old `b` to `a`.
fn swap(a: &Path, b: &Path, parent: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            // A file system without the exchange: the two-step swap below.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    let aside = hidden(&file_name(b), 0o700, |builder| builder.tempdir_in(parent))?.keep();
    fs::rename(b, &aside)?;
    if let Err(e) = fs::rename(a, b) {
        let _ = fs::rename(&aside, b);
        let _ = fs::remove_dir(&aside);
        return Err(e);
    }
    fs::rename(&aside, a)
}

/// What `make` makes with a builder of hidden names of the outputs of
/// `name` (`.NAME.hotpath-XXXXXX.tmp`, [`remove_stale_staging`]'s), with the
/// permissions `mode` (less the umask) on Unix.
fn hidden<T>(
    name: &str,
    mode: u32,
    make: impl FnOnce(&tempfile::Builder) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let prefix = staging_prefix(name);
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .suffix(".tmp")
        .rand_bytes(RANDOM_CHARS);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
    #[cfg(not(unix))]
    let _ = mode;
    make(&builder)
}

/// Removes the staging directories and temporary files that killed runs
/// on the directory `name` left in `parent` (the caller holds its lock).
fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = staging_prefix(name);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let entry_name = entry.file_name();
        let Some(random) = entry_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        if random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

/// Syncs every file and directory under `dir`, and `dir`.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Makes the entries of `dir` durable (a rename, a new file).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `path` with its directory made canonical (created if missing), for an
/// output file that may not exist yet.
fn resolve_output(path: &Path) -> Result<PathBuf, CliError> {
    let refuse = |reason: String| CliError::OutputDir {
        path: path.to_path_buf(),
        reason,
    };
    let name = path
        .file_name()
        .ok_or_else(|| refuse("does not name a file".into()))?;
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(|e| refuse(format!("its directory cannot be created: {e}")))?;
    let dir = fs::canonicalize(dir).map_err(|e| refuse(e.to_string()))?;
    Ok(dir.join(name))
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The last component of `path`, as text.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    use hotpath_testkit::listing as names;

    const EXPECTED: Expected = Expected {
        files: &["a.txt"],
        dirs: &[],
    };

    /// `root/out` holding an old `a.txt`, and a set staging a new one.
    fn old_and_new(root: &Path) -> (PathBuf, OutputSet) {
        let dir = root.join("out");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("a.txt"), "old").expect("write");
        let (set, _) = OutputSet::begin(&dir, &EXPECTED, &dir.join("s.json"), &[]).expect("begin");
        fs::write(set.staging().join("a.txt"), "new").expect("write");
        (dir, set)
    }

    #[test]
    fn a_set_replaces_the_directory_in_one_step_and_leaves_nothing_behind() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, set) = old_and_new(root.path());
        assert_eq!(fs::read_to_string(dir.join("a.txt")).expect("read"), "old");
        set.commit(&["a.txt"]).expect("commit");
        assert_eq!(fs::read_to_string(dir.join("a.txt")).expect("read"), "new");
        assert_eq!(names(root.path()), ["out"], "no staging left");
    }

    #[test]
    fn a_set_dropped_before_its_commit_leaves_the_previous_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, set) = old_and_new(root.path());
        drop(set);
        assert_eq!(fs::read_to_string(dir.join("a.txt")).expect("read"), "old");
        assert_eq!(names(root.path()), ["out"]);
        // A directory created for a run that failed is removed again.
        let fresh = root.path().join("fresh");
        drop(OutputSet::begin(&fresh, &EXPECTED, &fresh.join("s.json"), &[]).expect("begin"));
        assert!(!fresh.exists());
    }

    #[test]
    fn a_locked_directory_is_in_use() {
        let root = tempfile::tempdir().expect("tempdir");
        let first = DirLock::take(root.path()).expect("lock");
        let second = DirLock::take(root.path()).unwrap_err();
        assert!(
            second.to_string().contains("in use by another hotpath run"),
            "{second}"
        );
        drop(first);
        DirLock::take(root.path()).expect("released");
    }

    #[test]
    fn what_killed_runs_left_is_removed_and_nothing_else() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("out");
        for stale in [".out.hotpath-abc123.tmp", ".out.hotpath-XYZ789.tmp"] {
            fs::create_dir(root.path().join(stale)).expect("mkdir");
        }
        for kept in [
            ".out.b.hotpath-abc123.tmp",
            ".out.hotpath-toolong1.tmp",
            "notes",
        ] {
            fs::write(root.path().join(kept), "x").expect("write");
        }
        let (set, _) = OutputSet::begin(&dir, &EXPECTED, &dir.join("s.json"), &[]).expect("begin");
        set.commit(&[]).expect("commit");
        assert_eq!(
            names(root.path()),
            [
                ".out.b.hotpath-abc123.tmp",
                ".out.hotpath-toolong1.tmp",
                "notes",
                "out"
            ]
        );
    }
}
