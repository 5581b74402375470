//! A generated [`Case`] (a setup and a sequence of raw operations), and the
//! strategy that generates and shrinks its operations.

use crate::ops::{decode, Op, RawOp};
use crate::setup::{setup_strategy, Profile, Setup};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

#[derive(Clone)]
pub(crate) struct Case {
    pub(crate) profile: Profile,
    pub(crate) setup: Setup,
    pub(crate) ops: Vec<RawOp>,
}

impl Case {
    pub(crate) fn decoded(&self) -> Vec<Op> {
        self.ops
            .iter()
            .map(|&raw| decode(self.profile, self.setup.hostility, raw))
            .collect()
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("profile", &self.profile)
            .field("setup", &self.setup)
            .field("ops", &self.decoded())
            .finish()
    }
}

/// Sequences of [`RawOp`]s with a length in `len`. Unlike
/// `prop::collection::vec`, whose shrinking never goes below the minimum
/// length, failing sequences shrink by deleting chunks of operations
/// (halves, quarters, … single operations, repeated while that helps), so
/// long sequences still shrink to short reproducers.
#[derive(Debug)]
pub(crate) struct OpsStrategy {
    pub(crate) len: std::ops::RangeInclusive<usize>,
}

impl Strategy for OpsStrategy {
    type Tree = OpsTree;
    type Value = Vec<RawOp>;

    fn new_tree(&self, runner: &mut TestRunner) -> proptest::strategy::NewTree<Self> {
        let rng = runner.rng();
        let (lo, hi) = (*self.len.start(), *self.len.end());
        let len = lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize;
        let ops: Vec<RawOp> = (0..len)
            .map(|_| RawOp((rng.next_u64() % 1000) as u32, rng.next_u64()))
            .collect();
        Ok(OpsTree {
            chunk: (ops.len() / 2).max(1),
            pos: 0,
            progress: false,
            best: ops.clone(),
            current: ops,
        })
    }
}

pub(crate) struct OpsTree {
    /// The last sequence known to fail.
    best: Vec<RawOp>,
    /// The sequence being tried.
    current: Vec<RawOp>,
    /// Deleting `best[pos..pos + chunk]` is the next thing to try.
    chunk: usize,
    pos: usize,
    /// A deletion succeeded since the chunk size was last reset.
    progress: bool,
}

impl OpsTree {
    /// Moves `current` to the next candidate derived from `best`; `false`
    /// (with `current` = `best`) when there is none.
    fn next_candidate(&mut self) -> bool {
        loop {
            if self.pos < self.best.len() {
                let end = (self.pos + self.chunk).min(self.best.len());
                self.current = self.best[..self.pos]
                    .iter()
                    .chain(&self.best[end..])
                    .copied()
                    .collect();
                return true;
            }
            if self.chunk > 1 {
                self.chunk /= 2;
            } else if self.progress && self.best.len() > 1 {
                self.chunk = (self.best.len() / 2).max(1);
                self.progress = false;
            } else {
                self.current = self.best.clone();
                return false;
            }
            self.pos = 0;
        }
    }
}

impl proptest::strategy::ValueTree for OpsTree {
    type Value = Vec<RawOp>;

    fn current(&self) -> Vec<RawOp> {
        self.current.clone()
    }

    /// Called when `current` failed: keep it and delete further.
    fn simplify(&mut self) -> bool {
        if self.current.len() < self.best.len() {
            self.progress = true;
        }
        self.best = self.current.clone();
        self.next_candidate()
    }

    /// Called when `current` passed: keep that chunk and try the next one.
    fn complicate(&mut self) -> bool {
        self.pos += self.chunk;
        self.next_candidate()
    }
}

pub(crate) fn case_strategy(
    profile: Profile,
    len: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Case> {
    (setup_strategy(profile), OpsStrategy { len })
        .prop_map(move |(setup, ops)| Case {
            profile,
            setup,
            ops,
        })
        .boxed()
}
