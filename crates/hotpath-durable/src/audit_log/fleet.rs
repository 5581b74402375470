//! A fleet's audit log: one hash chain written by successive leaders, each
//! in its own directory ([`AuditLog::open_segment`](super::AuditLog::open_segment)),
//! checked across the directories by [`verify_fleet`].
//!
//! # The chain and its abandoned tails
//!
//! Every file is a *segment*: a chain of its own, starting from its first
//! line's `prev`. A segment continues the line of another file (or of the
//! file before it) whose hash is that `prev` and whose seq is one less
//! than its first; exactly one segment starts from the genesis. The lines
//! form a tree, and the fleet's chain is one path through it, from the
//! genesis to the newest line:
//!
//! * where a segment continues a line that its own file also continues
//!   (the file goes on past that line), the **segment** is the chain. A
//!   new leader starts a segment from the head the fleet last *published*
//!   (the head is written to the coordinator with each publication, fenced
//!   on leadership); the lines of the old leader's file past that head
//!   were decided after its last publication, and it lost its leadership
//!   before the new leader won it, so they were never published and never
//!   can be. They are an **abandoned tail**: reported, not an error, and
//!   kept as evidence of what a deposed leader decided locally.
//! * where several segments continue the same line (a new leader that was
//!   itself deposed before its first publication), the one whose branch
//!   reaches the highest seq is the chain; the others are abandoned.
//!
//! Everything else is an error: a broken line in any file (the first, with
//! its file and line), a segment that continues no line of the files given
//! (a directory or a file is missing: [`SegmentDefect::Unattached`]), or a
//! second chain from the genesis.

use super::format::{list_files, ChainHash};
use super::verify::{LogReader, SegmentDefect, VerifyError, VerifyReport};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Lines of a segment that the fleet's chain does not go through: decided
/// by a leader after its last publication, never published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedTail {
    /// The file.
    pub file: PathBuf,
    /// The seq of its first abandoned line.
    pub first_seq: u64,
    /// The seq of its last line.
    pub last_seq: u64,
    /// Lines abandoned.
    pub events: u64,
}

/// What [`verify_fleet`] found in a sound fleet log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetReport {
    /// The fleet's chain, from the genesis: `files` counts the segments it
    /// goes through, `events` its lines (seqs `first_seq..=last_seq`, gap
    /// free), `last_hash` its head.
    pub chain: VerifyReport,
    /// Non-empty files read, in all directories.
    pub segments: usize,
    /// The abandoned tails, by file.
    pub abandoned: Vec<AbandonedTail>,
}

/// One file: its first seq and prev, and its lines' hashes.
struct Segment {
    file: PathBuf,
    first_seq: u64,
    first_prev: ChainHash,
    hashes: Vec<ChainHash>,
}

impl Segment {
    fn last_seq(&self) -> u64 {
        self.first_seq + self.hashes.len() as u64 - 1
    }
}

/// Verifies the audit log of a fleet kept in `dirs` (every leader's data
/// directory's `audit/`): every file sound on its own (as [`verify`](super::verify)
/// checks a line), every segment continuing a line of another, one chain
/// from the genesis through them without a gap, and the abandoned tails
/// (see the [module docs](self)).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let report = hotpath_durable::audit_log::verify_fleet(&[a.path(), b.path()])?;
/// assert_eq!((report.segments, report.chain.events), (0, 0)); // no events yet
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`VerifyError::Io`] for a directory or file that cannot be read, the
/// first [`VerifyError::Line`] or [`VerifyError::SequenceGap`] of any
/// file, [`VerifyError::Segment`] for a segment that does not fit.
pub fn verify_fleet<P: AsRef<Path>>(dirs: &[P]) -> Result<FleetReport, VerifyError> {
    let segments = read_segments(dirs)?;
    let mut at: HashMap<ChainHash, (usize, usize)> = HashMap::new();
    for (s, segment) in segments.iter().enumerate() {
        for (offset, hash) in segment.hashes.iter().enumerate() {
            at.insert(*hash, (s, offset));
        }
    }
    // attached[s][offset]: the segments continuing line `offset` of `s`.
    let mut attached: Vec<Vec<Vec<usize>>> = segments
        .iter()
        .map(|s| vec![Vec::new(); s.hashes.len()])
        .collect();
    let mut root: Option<usize> = None;
    for (s, segment) in segments.iter().enumerate() {
        if segment.first_prev == ChainHash::GENESIS && segment.first_seq == 0 {
            if let Some(other) = root {
                return Err(VerifyError::Segment {
                    file: segment.file.clone(),
                    defect: SegmentDefect::SecondGenesis {
                        other: segments[other].file.clone(),
                    },
                });
            }
            root = Some(s);
            continue;
        }
        let parent = at
            .get(&segment.first_prev)
            .copied()
            .filter(|&(p, off)| segments[p].first_seq + off as u64 + 1 == segment.first_seq);
        match parent {
            Some((p, off)) => attached[p][off].push(s),
            None => {
                return Err(VerifyError::Segment {
                    file: segment.file.clone(),
                    defect: SegmentDefect::Unattached {
                        seq: segment.first_seq,
                        prev: segment.first_prev,
                    },
                })
            }
        }
    }
    let reach = reaches(&segments, &attached);
    let mut on_chain: Vec<Option<usize>> = vec![None; segments.len()];
    let mut chain = VerifyReport {
        files: 0,
        events: 0,
        first_seq: None,
        last_seq: None,
        first_prev: ChainHash::GENESIS,
        last_hash: ChainHash::GENESIS,
    };
    let mut next = root.map(|s| (s, 0usize));
    while let Some((s, from)) = next.take() {
        chain.files += 1;
        chain.first_seq.get_or_insert(segments[s].first_seq);
        let mut offset = from;
        loop {
            chain.events += 1;
            chain.last_seq = Some(segments[s].first_seq + offset as u64);
            chain.last_hash = segments[s].hashes[offset];
            let continued_here = attached[s][offset]
                .iter()
                .copied()
                .max_by_key(|&c| (reach[c], c));
            if let Some(c) = continued_here {
                on_chain[s] = Some(offset);
                next = Some((c, 0));
                break;
            }
            if offset + 1 == segments[s].hashes.len() {
                on_chain[s] = Some(offset);
                break;
            }
            offset += 1;
        }
    }
    let abandoned = segments
        .iter()
        .zip(&on_chain)
        .filter_map(|(segment, last_on_chain)| {
            let first = last_on_chain.map_or(0, |o| o + 1);
            (first < segment.hashes.len()).then(|| AbandonedTail {
                file: segment.file.clone(),
                first_seq: segment.first_seq + first as u64,
                last_seq: segment.last_seq(),
                events: (segment.hashes.len() - first) as u64,
            })
        })
        .collect();
    Ok(FleetReport {
        chain,
        segments: segments.len(),
        abandoned,
    })
}

/// Every non-empty log file of `dirs`, each verified on its own.
fn read_segments<P: AsRef<Path>>(dirs: &[P]) -> Result<Vec<Segment>, VerifyError> {
    let mut segments = Vec::new();
    for dir in dirs {
        let dir = dir.as_ref();
        let files = list_files(dir).map_err(|source| VerifyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        for (_, file) in files {
            let mut reader = LogReader::segment(file.clone());
            let mut hashes = Vec::new();
            for record in reader.by_ref() {
                hashes.push(record?.hash);
            }
            let report = reader.report();
            if let Some(first_seq) = report.first_seq {
                segments.push(Segment {
                    file,
                    first_seq,
                    first_prev: report.first_prev,
                    hashes,
                });
            }
        }
    }
    Ok(segments)
}

/// For each segment, the highest seq its branch reaches (itself and every
/// segment continuing it, transitively).
fn reaches(segments: &[Segment], attached: &[Vec<Vec<usize>>]) -> Vec<u64> {
    // A child starts at a higher seq than any line of its parent before
    // it, so children come later in seq order: resolve by descending
    // first seq.
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|&s| std::cmp::Reverse(segments[s].first_seq));
    let mut reach: Vec<u64> = segments.iter().map(Segment::last_seq).collect();
    for s in order {
        let best = attached[s]
            .iter()
            .flatten()
            .map(|&c| reach[c])
            .max()
            .unwrap_or(0);
        reach[s] = reach[s].max(best);
    }
    reach
}
