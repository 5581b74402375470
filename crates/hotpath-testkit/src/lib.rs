//! # hotpath-testkit: what the hotpath crates' tests share
//!
//! A dev-dependency only, with no dependencies of its own:
//!
//! * [`Rng`] and [`env_u64`]: the seeded generator and the knobs of the
//!   crash-injection trials (`HOTPATH_CRASH_TRIALS`, `HOTPATH_CRASH_SEED`, …);
//! * [`listing`] and [`snapshot`]: what a directory holds, to compare
//!   before and after a run;
//! * [`replay_corpus`]: the fuzz targets' corpora, each case replayed with
//!   its expected outcome.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// splitmix64: a seeded, dependency-free generator, so a failing trial can
/// be replayed from its seed.
///
/// ```
/// use hotpath_testkit::Rng;
///
/// let (mut a, mut b) = (Rng(7), Rng(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!((3..=5).contains(&a.range(3, 5)));
/// ```
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        match hi.checked_sub(lo).and_then(|span| span.checked_add(1)) {
            Some(n) => lo + self.next_u64() % n,
            None if hi >= lo => self.next_u64(),
            None => lo,
        }
    }
}

/// The environment variable `name` as a number, or `default`.
///
/// ```
/// assert_eq!(hotpath_testkit::env_u64("HOTPATH_TESTKIT_UNSET_EXAMPLE", 30), 30);
/// ```
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The names in `dir`, sorted (none for a directory that cannot be read).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("b"), "")?;
/// std::fs::write(dir.path().join("a"), "")?;
/// assert_eq!(hotpath_testkit::listing(dir.path()), ["a", "b"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Everything under `dir`: each file's path (from `dir`) with its bytes,
/// each directory's as `path/` with none. Empty for a missing directory.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("audit"))?;
/// std::fs::write(dir.path().join("audit/log"), "x")?;
/// let snap = hotpath_testkit::snapshot(dir.path());
/// assert_eq!(snap.keys().collect::<Vec<_>>(), ["audit/", "audit/log"]);
/// assert_eq!(snap["audit/log"], b"x");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{name}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(name, fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Replays the corpus in `dir`: every file `NAME` but the `NAME.expected`
/// beside it, whose content (trimmed) is the outcome `outcome` must give.
/// With `HOTPATH_BLESS=1` the `.expected` files are rewritten from what
/// `outcome` gives now, for a reviewed change.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("one.txt"), "1")?;
/// std::fs::write(dir.path().join("one.txt.expected"), "length 1\n")?;
/// hotpath_testkit::replay_corpus(dir.path(), |bytes| format!("length {}", bytes.len()));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// On an empty or unreadable corpus, and with every case whose outcome is
/// not the expected one (all of them in one message).
pub fn replay_corpus(dir: &Path, outcome: impl Fn(&[u8]) -> String) {
    let bless = std::env::var_os("HOTPATH_BLESS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e != "expected"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no corpus in {}", dir.display());
    let mut wrong = Vec::new();
    for path in cases {
        let mut expected_path = path.clone().into_os_string();
        expected_path.push(".expected");
        let got = outcome(&fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        if bless {
            fs::write(&expected_path, format!("{got}\n"))
                .unwrap_or_else(|e| panic!("bless {}: {e}", path.display()));
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected.trim_end() {
            wrong.push(format!(
                "{}:\n  expected {:?}\n  got      {got:?}",
                path.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
