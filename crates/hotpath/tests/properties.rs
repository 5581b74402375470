//! Property tests: random sequences of operations drive a `SafetyExecutor`
//! (applies of all four proposal kinds with hostile deltas, clock steps
//! forwards, jumps and backwards, baselines, rollbacks, outcome reports,
//! freeze/resume, and an audit consumer that sometimes falls behind), and an
//! independent model built from the receipts and the audit trail checks the
//! executor's documented contract after every step:
//!
//! * the live config (`AtomicConfig::load` and `snapshot`, which agree) is
//!   finite and within bounds, and is exactly `live + delta` after an apply
//!   and the baseline bit for bit after a rollback;
//! * every change but a rollback moves each parameter by at most
//!   `max_delta_per_step · range`, measured on the value actually applied;
//! * a refusal changes neither the live config, nor the centre, nor the
//!   accounting of accepted moves (the model predicts every later decision
//!   from accepted moves only);
//! * applies per half-open 1 s window ≤ ⌊`max_updates_per_second`⌋, spacing
//!   ≥ `min_interval_us` (on the executor's clamped time);
//! * committed direction flips per dimension per 60 s ≤
//!   `direction_flip_limit`; committed movement per dimension per 60 s ≤
//!   `max_cumulative_delta_per_minute`;
//! * no apply gets past a latched safe-mode reason that has not exited;
//! * the refusal, when there is one, is the *first* failing rule in the
//!   documented order (safe mode, shape, step, bounds, excursion,
//!   stabilisation, rate, flips, budget, audit);
//! * the audit trail is gap-free from 0 and ordered, each decision has its
//!   event (matching the receipt's `audit_seq` and the live values), each
//!   refusal its `Rejected` event unless a drop was counted, `EventsDropped`
//!   reports exactly `stats().audit_dropped`, and replaying the trail
//!   reproduces the final live config and generation.
//!
//! Two properties share the harness: `Mixed` (presets with random
//! variations, realistic time steps, any audit capacity) and `Pressure`
//! (rates up to 1000/s, µs time steps, audit queues of 16–64). Together they
//! run 3 500 cases of 300–340 operations: at least 1.05 million steps per
//! run, about 10 s in the default debug profile. Operations are generated as
//! `(selector, seed)` pairs and decoded (cheap to generate); besides random
//! clock steps, `Boundary` operations move the clock to exactly a deadline
//! the model knows (±1 µs), so off-by-one window edges are exercised.
//!
//! Failures are persisted next to this file (`properties.regressions`) and
//! replayed first on the next run. Failing sequences shrink by deleting
//! chunks of operations (see [`OpsStrategy`]), and a failing case is re-run
//! with a step log (every call, its resolved delta and its result), which is
//! included in the failure message.
//!
//! Clocks within seconds of `u64::MAX` are generated on purpose: the
//! executor must keep limiting there. Two bugs these properties found have
//! regression tests at the end of the file.

use hotpath::{
    AtomicConfig, AuditDetails, AuditEvent, Clock, ControlSafety, ExecutorStats, Guardrails,
    ManualClock, NoChangeReason, OutcomeVerdict, ParamVec, Proposal, ProposalKind, RateRule,
    ReasonSet, RequestKind, RollbackPolicy, RollbackReason, RollbackReceipt, SafeModeExit,
    SafeModeReason, SafetyExecutor, Violation, MAX_TIME_US,
};
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

const SECOND: u64 = 1_000_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
/// The executor's budget buckets (documented: 13 × 5 s, clears after 65 s).
const BUCKET: u64 = 5 * SECOND;
const BUCKETS: u64 = 13;
const BUDGET_CLEAR: u64 = BUCKET * BUCKETS;
/// Committed moves at most this fraction of the range have no direction.
const DIRECTION_EPSILON: f64 = 1e-9;
/// Tolerance for sums of moves computed in a different order.
const SUM_TOLERANCE: f64 = 1e-9;

// ---------------------------------------------------------------------------
// Generated input
// ---------------------------------------------------------------------------

/// Everything the executor is built from.
#[derive(Debug, Clone)]
struct Setup {
    initial: Vec<f64>,
    initial_generation: u64,
    guardrails: Guardrails,
    policy: RollbackPolicy,
    audit_capacity: usize,
    clock_start: u64,
    /// The audit consumer keeps up: drain after every step.
    eager_consumer: bool,
    hostility: Hostility,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plus,
    Minus,
    Update,
}

/// What the delta is relative to: the live values (as proposals are), or the
/// centre (a proposer returning from a probe), or a bound.
#[derive(Debug, Clone, Copy)]
enum Base {
    Live,
    Centre,
}

/// Magnitude of each component, as a fraction of the step limit.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Zero,
    /// ±u · step, u ∈ [0, 1).
    Uniform,
    /// ±step exactly (`max_delta_per_step · range`).
    Full,
    /// ±step nudged by −2..=2 ulps.
    NearLimit,
    /// ±u · 2e-9 · range: around the no-direction threshold.
    Tiny,
    /// ±(1 + u) · step: too large.
    Over,
    /// +u · step: every dimension drifts up (towards the bounds).
    Drift,
}

/// One component replaced by something hostile.
#[derive(Debug, Clone, Copy)]
enum Special {
    Value(f64),
    /// `bound − live + overshoot · range` for the upper or lower bound.
    ToBound {
        upper: bool,
        overshoot: f64,
    },
    /// `±step` nudged by `ulps`.
    StepLimit {
        negative: bool,
        ulps: i64,
    },
}

#[derive(Debug, Clone, Copy)]
enum LenMode {
    Exact,
    Short(usize),
    Long(usize),
}

#[derive(Debug, Clone)]
struct ApplySpec {
    kind: Kind,
    /// A bounds-aware proposer: a component that would leave its bounds is
    /// proposed in the other direction instead.
    reflect: bool,
    base: Base,
    scale: Scale,
    seed: u64,
    special: Option<(usize, Special)>,
    len: LenMode,
    id: u64,
}

#[derive(Debug, Clone, Copy)]
enum GenSpec {
    Centre,
    Live,
    Offset(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Apply(ApplySpec),
    NoChange,
    /// Clock forward by this many µs.
    Advance(u64),
    /// Clock backwards by this many µs (saturating at 0), via `set`.
    Backwards(u64),
    /// Clock to exactly a deadline the model knows of (the `which`-th of
    /// those that exist: min interval, rate window, stabilisation, flip
    /// window, a latch's timer, budget buckets, rollback window), plus
    /// `offset` µs (−1, 0 or +1), to hit the edges of every window.
    Boundary {
        which: u8,
        offset: i8,
    },
    SetBaseline,
    Rollback,
    Report {
        generation: GenSpec,
        objective: f64,
    },
    Freeze,
    Resume,
    /// Drain up to this many audit events (`None`: all).
    Drain(Option<usize>),
    BudgetRemaining(usize),
}

#[derive(Clone)]
struct Case {
    profile: Profile,
    setup: Setup,
    ops: Vec<RawOp>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Profile {
    /// Presets with random variations, realistic time steps, any queue.
    Mixed,
    /// Fast rates, tiny time steps, small queues: the windows, flips, budget
    /// and audit reserve are hit constantly.
    Pressure,
}

fn preset_guardrails(i: u8) -> Guardrails {
    match i % 3 {
        0 => Guardrails::preset_conservative(),
        1 => Guardrails::preset_balanced(),
        _ => Guardrails::preset_aggressive(),
    }
}

fn preset_policy(i: u8) -> RollbackPolicy {
    match i % 3 {
        0 => RollbackPolicy::preset_conservative(),
        1 => RollbackPolicy::preset_balanced(),
        _ => RollbackPolicy::preset_aggressive(),
    }
}

/// One parameter: `(bounds, initial value)`.
fn param_strategy(bounded: bool) -> BoxedStrategy<(Option<(f64, f64)>, f64)> {
    if bounded {
        (
            prop_oneof![
                3 => -1e3..1e3f64,
                1 => Just(0.0f64),
                1 => -1e9..1e9f64,
            ],
            prop_oneof![
                2 => 1e-3..10.0f64,
                2 => 1.0..1e4f64,
                1 => Just(1.0f64),
                1 => 1e6..1e9f64,
            ],
            prop_oneof![
                4 => 0.0..=1.0f64,
                1 => Just(0.0f64),
                1 => Just(1.0f64),
                1 => Just(0.5f64),
            ],
        )
            .prop_map(|(min, width, pos)| {
                let max = min + width;
                let value = if pos >= 1.0 {
                    max
                } else {
                    (min + pos * (max - min)).clamp(min, max)
                };
                (Some((min, max)), value)
            })
            .boxed()
    } else {
        prop_oneof![
            4 => -10.0..10.0f64,
            1 => Just(0.0f64),
            1 => Just(-0.0f64),
            1 => -1e6..1e6f64,
            1 => 1e9..1e13f64,
        ]
        .prop_map(|v| (None, v))
        .boxed()
    }
}

fn guardrails_strategy(profile: Profile) -> BoxedStrategy<Guardrails> {
    let base = (
        0u8..3,
        prop::option::of(prop_oneof![1e-6..=1.0f64, Just(1.0f64), Just(0.5f64)]),
        prop::option::of(prop_oneof![
            1.0..=1000.0f64,
            Just(1000.0f64),
            Just(1.0f64),
            1.0..5.0f64
        ]),
        prop::option::of(prop_oneof![Just(0u64), 0..2 * SECOND, 0..1_000u64]),
        prop::option::of(0u32..=5),
        prop::option::of(prop_oneof![Just(0u64), 0..120 * SECOND]),
        prop::option::of(prop_oneof![1e-3..3.0f64, 0.05..1.0f64]),
        prop::option::of(1u32..=12),
        prop::option::of(1u32..=25),
    );
    match profile {
        Profile::Mixed => base
            .prop_map(
                |(preset, step, rate, interval, flips, cooldown, budget, regr, viol)| {
                    let p = preset_guardrails(preset);
                    Guardrails {
                        max_delta_per_step: step.unwrap_or(p.max_delta_per_step),
                        max_updates_per_second: rate.unwrap_or(p.max_updates_per_second),
                        min_interval_us: interval.unwrap_or(p.min_interval_us),
                        direction_flip_limit: flips.unwrap_or(p.direction_flip_limit),
                        cooldown_after_flip_us: cooldown.unwrap_or(p.cooldown_after_flip_us),
                        max_cumulative_delta_per_minute: budget
                            .unwrap_or(p.max_cumulative_delta_per_minute),
                        regression_count_limit: regr.unwrap_or(p.regression_count_limit),
                        violation_limit: viol.unwrap_or(p.violation_limit),
                        bounds: None,
                    }
                },
            )
            .boxed(),
        Profile::Pressure => (
            0u8..3,
            prop_oneof![1e-3..=1.0f64, Just(1.0f64), Just(0.1f64)],
            prop_oneof![50.0..=1000.0f64, Just(1000.0f64), 1.0..50.0f64],
            prop_oneof![4 => Just(0u64), 1 => 0..5_000u64],
            0u32..=5,
            prop_oneof![Just(0u64), 0..5 * SECOND],
            prop_oneof![1e-3..3.0f64, 0.05..1.0f64],
            1u32..=12,
            3u32..=25,
        )
            .prop_map(
                |(preset, step, rate, interval, flips, cooldown, budget, regr, viol)| Guardrails {
                    max_delta_per_step: step,
                    max_updates_per_second: rate,
                    min_interval_us: interval,
                    direction_flip_limit: flips,
                    cooldown_after_flip_us: cooldown,
                    max_cumulative_delta_per_minute: budget,
                    regression_count_limit: regr,
                    violation_limit: viol,
                    ..preset_guardrails(preset)
                },
            )
            .boxed(),
    }
}

fn policy_strategy(profile: Profile) -> BoxedStrategy<RollbackPolicy> {
    let stable = match profile {
        Profile::Mixed => prop_oneof![Just(0u64), 0..10 * SECOND, 0..50_000u64].boxed(),
        Profile::Pressure => prop_oneof![Just(0u64), 0..SECOND, 0..2_000u64].boxed(),
    };
    (
        0u8..3,
        prop::option::of(1u32..=6),
        prop::option::of(0u32..=12),
        prop::option::of(stable),
        prop::option::of(0.0..4.0f64),
        prop::option::of(prop_oneof![Just(0.0f64), 0.0..0.1f64]),
    )
        .prop_map(|(preset, regr, per_hour, stable, sigmas, tolerance)| {
            let p = preset_policy(preset);
            RollbackPolicy {
                max_consecutive_regressions: regr.unwrap_or(p.max_consecutive_regressions),
                max_rollbacks_per_hour: per_hour.unwrap_or(p.max_rollbacks_per_hour),
                min_stable_time_us: stable.unwrap_or(p.min_stable_time_us),
                regression_sigmas: sigmas.unwrap_or(p.regression_sigmas),
                regression_tolerance: tolerance.unwrap_or(p.regression_tolerance),
            }
        })
        .boxed()
}

fn setup_strategy(profile: Profile) -> BoxedStrategy<Setup> {
    let capacity = match profile {
        Profile::Mixed => prop_oneof![
            3 => 16usize..=64,
            1 => Just(16usize),
            1 => 65usize..1024,
            3 => Just(4096usize),
        ]
        .boxed(),
        Profile::Pressure => prop_oneof![3 => 16usize..=64, 1 => Just(16usize)].boxed(),
    };
    (1usize..=16, any::<bool>())
        .prop_flat_map(move |(n, bounded)| {
            (
                prop::collection::vec(param_strategy(bounded), n),
                prop_oneof![4 => Just(0u64), 1 => 0..1_000_000u64],
                guardrails_strategy(profile),
                policy_strategy(profile),
                capacity.clone(),
                prop_oneof![
                    Just(0u64),
                    Just(SECOND),
                    0..1_000_000_000_000u64,
                    (0..10 * SECOND).prop_map(|x| u64::MAX - x),
                ],
                prop::bool::weighted(0.3),
                prop_oneof![
                    2 => Just(Hostility::Tame),
                    2 => Just(Hostility::Normal),
                    1 => Just(Hostility::Hostile),
                ],
            )
        })
        .prop_map(
            |(
                params,
                initial_generation,
                mut guardrails,
                policy,
                audit_capacity,
                clock_start,
                eager,
                hostility,
            )| {
                let bounded = params.iter().all(|(b, _)| b.is_some());
                guardrails.bounds =
                    bounded.then(|| params.iter().map(|(b, _)| b.unwrap()).collect());
                Setup {
                    initial: params.iter().map(|(_, v)| *v).collect(),
                    initial_generation,
                    guardrails,
                    policy,
                    audit_capacity,
                    clock_start,
                    eager_consumer: eager,
                    hostility,
                }
            },
        )
        .boxed()
}

/// An operation as generated: a selector in `0..1000` (which operation,
/// by the profile's weights; 0 is the simplest) and a seed for its
/// parameters. Two integers are much cheaper for proptest to generate than a
/// tree of unions, shrink by removal like any element, and decode
/// deterministically into an [`Op`].
#[derive(Debug, Clone, Copy)]
struct RawOp(u32, u64);

/// Bit fields of a seed, low bits first; a zero seed decodes to the simplest
/// choice of every field.
struct Bits(u64);

impl Bits {
    fn take(&mut self, n: u32) -> u64 {
        let v = self.0 & ((1u64 << n) - 1);
        self.0 >>= n;
        v
    }
}

/// `u ∈ [0, 1)` from a seed (hashed, so independent of the bit fields).
fn unit(seed: u64, salt: u64) -> f64 {
    (splitmix(seed ^ salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// The entry of `table` (weights, first = simplest) that `r` falls in;
/// `r` is reduced modulo the total weight.
fn pick<T: Copy>(r: u64, table: &[(u64, T)]) -> T {
    let total: u64 = table.iter().map(|(w, _)| w).sum();
    let mut r = r % total;
    for &(w, t) in table {
        if r < w {
            return t;
        }
        r -= w;
    }
    unreachable!()
}

#[derive(Clone, Copy)]
enum OpKind {
    Advance,
    Apply,
    Boundary,
    NoChange,
    Jump,
    Backwards,
    SetBaseline,
    Rollback,
    Report,
    Freeze,
    Resume,
    DrainAll,
    DrainSome,
    Budget,
}

fn op_table(profile: Profile) -> &'static [(u64, OpKind)] {
    use OpKind::*;
    match profile {
        Profile::Mixed => &[
            (190, Advance),
            (470, Apply),
            (30, Boundary),
            (20, NoChange),
            (10, Jump),
            (10, Backwards),
            (30, SetBaseline),
            (12, Rollback),
            (100, Report),
            (4, Freeze),
            (54, Resume),
            (40, DrainAll),
            (20, DrainSome),
            (10, Budget),
        ],
        Profile::Pressure => &[
            (203, Advance),
            (520, Apply),
            (40, Boundary),
            (15, NoChange),
            (15, Jump),
            (8, Backwards),
            (25, SetBaseline),
            (15, Rollback),
            (60, Report),
            (4, Freeze),
            (40, Resume),
            (30, DrainAll),
            (15, DrainSome),
            (10, Budget),
        ],
    }
}

/// How often the proposer sends malformed or hostile values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hostility {
    Tame,
    Normal,
    Hostile,
}

fn decode_apply(seed: u64, hostility: Hostility) -> ApplySpec {
    let mut b = Bits(seed);
    let kind = [Kind::Plus, Kind::Minus, Kind::Update][(b.take(8) % 3) as usize];
    let base = if b.take(4) < 10 {
        Base::Live
    } else {
        Base::Centre
    };
    let reflect_odds = match hostility {
        Hostility::Tame => 13,
        Hostility::Normal => 10,
        Hostility::Hostile => 5,
    };
    let reflect = b.take(4) < reflect_odds;
    let over = match hostility {
        Hostility::Tame => 0,
        Hostility::Normal => 2,
        Hostility::Hostile => 6,
    };
    let scale = pick(
        b.take(8),
        &[
            (2, Scale::Zero),
            (16, Scale::Uniform),
            (4, Scale::Full),
            (4, Scale::NearLimit),
            (2, Scale::Tiny),
            (over, Scale::Over),
            (3, Scale::Drift),
        ],
    );
    let special_odds = match hostility {
        Hostility::Tame => 1,
        Hostility::Normal => 5,
        Hostility::Hostile => 14,
    };
    let special = (b.take(6) >= 64 - special_odds).then(|| {
        let which = b.take(4);
        let index = b.take(4) as usize;
        let special = match which {
            0 => Special::Value(f64::NAN),
            1 => Special::Value(f64::INFINITY),
            2 => Special::Value(f64::NEG_INFINITY),
            3 => Special::Value(1e300),
            4 => Special::Value(-1e300),
            5 => Special::Value(f64::MAX),
            6 => Special::Value(f64::MIN_POSITIVE),
            7 => Special::Value(5e-324),
            8 => Special::Value(-0.0),
            9..=12 => {
                let upper = b.take(1) == 1;
                let u = unit(seed, 0x5EED);
                let sign = if b.take(1) == 1 { -1.0 } else { 1.0 };
                let overshoot = match b.take(2) {
                    0 => 0.0,
                    1 => sign * u * 1e-12,
                    2 => sign * u * 0.01,
                    _ => u,
                };
                Special::ToBound { upper, overshoot }
            }
            _ => Special::StepLimit {
                negative: b.take(1) == 1,
                ulps: (b.take(3) % 7) as i64 - 3,
            },
        };
        (index, special)
    });
    let malformed_len = match hostility {
        Hostility::Tame => 0,
        Hostility::Normal => 1,
        Hostility::Hostile => 3,
    };
    let len = match b.take(6) {
        r if r >= 64 - malformed_len => {
            if r % 2 == 0 {
                LenMode::Short(1 + (b.take(2) % 3) as usize)
            } else {
                LenMode::Long(1 + (b.take(2) % 3) as usize)
            }
        }
        _ => LenMode::Exact,
    };
    ApplySpec {
        kind,
        reflect,
        base,
        scale,
        seed,
        special,
        len,
        id: b.take(10),
    }
}

fn decode(profile: Profile, hostility: Hostility, RawOp(sel, seed): RawOp) -> Op {
    let mut b = Bits(seed);
    let u = unit(seed, 0xD1CE);
    let pressure = profile == Profile::Pressure;
    match pick(sel as u64, op_table(profile)) {
        OpKind::Advance => {
            let max = match (pressure, b.take(2)) {
                (false, 0) => 1_000,
                (false, 1) => 200_000,
                (false, _) => 2 * SECOND,
                (true, 3) => 20_000,
                (true, _) => 2_000,
            };
            Op::Advance((u * max as f64) as u64)
        }
        OpKind::Apply => Op::Apply(decode_apply(seed, hostility)),
        OpKind::Boundary => Op::Boundary {
            which: b.take(8) as u8,
            offset: (b.take(2) % 3) as i8 - 1,
        },
        OpKind::NoChange => Op::NoChange,
        OpKind::Jump => {
            let span = if pressure { MINUTE } else { 9 * MINUTE };
            Op::Advance(MINUTE + (u * span as f64) as u64)
        }
        OpKind::Backwards => {
            if b.take(3) == 7 {
                Op::Backwards(u64::MAX)
            } else {
                let max = if pressure { 50_000 } else { 5 * SECOND };
                Op::Backwards((u * max as f64) as u64)
            }
        }
        OpKind::SetBaseline => Op::SetBaseline,
        OpKind::Rollback => Op::Rollback,
        OpKind::Report => {
            let generation = match b.take(4) {
                0..=12 => GenSpec::Centre,
                13 => GenSpec::Live,
                14 => GenSpec::Offset(-1 - b.take(1) as i64),
                _ => GenSpec::Offset(1 + b.take(1) as i64),
            };
            let objective = match b.take(5) {
                0..=24 => 0.9 + 0.2 * u,
                25..=28 => 1.5 + 1.5 * u,
                29 => -1e3 + 2e3 * u,
                30 => f64::NAN,
                _ => f64::INFINITY,
            };
            Op::Report {
                generation,
                objective,
            }
        }
        OpKind::Freeze => Op::Freeze,
        OpKind::Resume => Op::Resume,
        OpKind::DrainAll => Op::Drain(None),
        OpKind::DrainSome => Op::Drain(Some(b.take(3) as usize)),
        OpKind::Budget => Op::BudgetRemaining(b.take(4) as usize),
    }
}

impl Case {
    fn decoded(&self) -> Vec<Op> {
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
struct OpsStrategy {
    len: std::ops::RangeInclusive<usize>,
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

struct OpsTree {
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

fn case_strategy(profile: Profile, len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Case> {
    (setup_strategy(profile), OpsStrategy { len })
        .prop_map(move |(setup, ops)| Case {
            profile,
            setup,
            ops,
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `x` moved by `ulps` units in the last place, towards +∞ for positive
/// `ulps` when `x > 0`.
fn nudge(x: f64, ulps: i64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let bits = x.to_bits() as i64 + ulps;
    f64::from_bits(bits as u64)
}

fn bit_eq(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn reason_set(cs: &ControlSafety) -> ReasonSet {
    cs.reasons()
}

fn without(set: ReasonSet, remove: ReasonSet) -> ReasonSet {
    let mut out = ReasonSet::EMPTY;
    for r in set.iter().filter(|r| !remove.contains(*r)) {
        out.insert(r);
    }
    out
}

fn is_subset(a: ReasonSet, b: ReasonSet) -> bool {
    a.iter().all(|r| b.contains(r))
}

#[derive(Debug, Clone)]
struct BaselineModel {
    params: Vec<f64>,
    reports: u64,
    mean: f64,
    m2: f64,
}

impl BaselineModel {
    fn add(&mut self, x: f64) {
        self.reports += 1;
        let d = x - self.mean;
        self.mean += d / self.reports as f64;
        self.m2 += d * (x - self.mean);
    }

    fn sd(&self) -> f64 {
        if self.reports < 2 {
            0.0
        } else {
            (self.m2 / (self.reports - 1) as f64).max(0.0).sqrt()
        }
    }
}

/// The executor's observable state, rebuilt from receipts only.
#[derive(Debug, Clone)]
struct Model {
    live: Vec<f64>,
    generation: u64,
    centre: Vec<f64>,
    centre_generation: u64,
    centre_is_baseline: bool,
    baseline: Option<BaselineModel>,
    /// The executor's time: the latest clock reading it has seen.
    now: u64,
    /// Accepted applies in the last second, oldest first.
    applies: VecDeque<u64>,
    last_apply: Option<u64>,
    stable_until: u64,
    directions: Vec<i8>,
    /// Per dimension: times of committed direction reversals (last minute).
    flips: Vec<VecDeque<u64>>,
    /// Committed moves (|move| / range per dimension) of the last 65 s.
    commits: VecDeque<(u64, Vec<f64>)>,
    /// Rollbacks of the last hour.
    rollbacks: VecDeque<u64>,
    regressions_total: u32,
    regressions_since_rollback: u32,
    consecutive_malformed: u32,
    applied: u64,
    refused: u64,
    rollback_count: u64,
    min_clock_regressions: u64,
}

/// What an operation's audit events must contain.
#[derive(Debug, Clone)]
enum Expect {
    Applied {
        seq: u64,
        kind: ProposalKind,
        correlation_id: u64,
        previous_generation: u64,
        delta: Vec<f64>,
        params: Vec<f64>,
    },
    RolledBack {
        seq: u64,
        reason: RollbackReason,
        previous_generation: u64,
        params: Vec<f64>,
    },
    BaselineSet {
        baseline_generation: u64,
        params: Vec<f64>,
    },
    Outcome {
        reported_generation: u64,
        objective: f64,
        verdict: OutcomeVerdict,
    },
    Resumed {
        cleared: ReasonSet,
    },
}

#[derive(Debug, Clone)]
struct Refusal {
    request: RequestKind,
    correlation_id: u64,
    violation: Violation,
    delta: Vec<f64>,
}

/// One executor call and what its audit events must be.
#[derive(Debug, Clone)]
struct OpRecord {
    step: usize,
    label: &'static str,
    seq_start: u64,
    seq_end: u64,
    /// Events queued when the call started.
    queue_len: usize,
    now: u64,
    dropped: bool,
    latched_before: ReasonSet,
    latched_after: ReasonSet,
    expects: Vec<Expect>,
    refusals: Vec<Refusal>,
}

/// State captured before an executor call.
struct Pre {
    now: u64,
    queue_len: usize,
    safety: ControlSafety,
    stats: ExecutorStats,
    seq_start: u64,
    generation: u64,
    live: Vec<f64>,
}

/// Outcome counters, for the report printed at the end of each property.
#[derive(Debug, Default, Clone)]
struct Counters {
    cases: u64,
    steps: u64,
    applies_ok: u64,
    rollbacks_ok: u64,
    events: u64,
    dropped: u64,
    refusals: BTreeMap<&'static str, u64>,
}

fn violation_name(v: &Violation) -> &'static str {
    match v {
        Violation::DeltaTooLarge { .. } => "DeltaTooLarge",
        Violation::RateLimitExceeded {
            rule: RateRule::MinInterval,
            ..
        } => "RateLimit(MinInterval)",
        Violation::RateLimitExceeded {
            rule: RateRule::PerSecond,
            ..
        } => "RateLimit(PerSecond)",
        Violation::DirectionFlipViolation { .. } => "DirectionFlip",
        Violation::CumulativeDeltaViolation { .. } => "CumulativeDelta",
        Violation::InSafeMode { reason, .. } => match reason {
            SafeModeReason::Thrashing => "InSafeMode(Thrashing)",
            SafeModeReason::BudgetExhausted => "InSafeMode(BudgetExhausted)",
            SafeModeReason::Regressions => "InSafeMode(Regressions)",
            SafeModeReason::RollbackCircuitBreaker => "InSafeMode(RollbackCircuitBreaker)",
            SafeModeReason::AuditQueueFull => "InSafeMode(AuditQueueFull)",
            SafeModeReason::RepeatedViolations => "InSafeMode(RepeatedViolations)",
            SafeModeReason::Manual => "InSafeMode(Manual)",
            _ => "InSafeMode(other)",
        },
        Violation::AuditQueueFull { .. } => "AuditQueueFull",
        Violation::NoBaseline => "NoBaseline",
        Violation::WrongLength { .. } => "WrongLength",
        Violation::NonFinite { .. } => "NonFinite",
        Violation::OutOfBounds { .. } => "OutOfBounds",
        Violation::ExcursionTooLarge { .. } => "ExcursionTooLarge",
        Violation::StabilizationPending { .. } => "StabilizationPending",
        Violation::NonFiniteObjective => "NonFiniteObjective",
        Violation::StaleOutcome { .. } => "StaleOutcome",
        _ => "other",
    }
}

/// `prop_assert!` with a formatted message (and no `!` on float comparisons).
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {{
        let holds: bool = $cond;
        if !holds {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    }};
}

struct Harness {
    g: Guardrails,
    policy: RollbackPolicy,
    capacity: usize,
    reserve_threshold: usize,
    bounds: Vec<(f64, f64)>,
    ranges: Vec<f64>,
    rate_cap: usize,
    eager: bool,
    config: Arc<AtomicConfig>,
    clock: ManualClock,
    ex: SafetyExecutor<ManualClock>,
    m: Model,
    trail: Vec<AuditEvent>,
    records: Vec<OpRecord>,
    step: usize,
    log: Option<Vec<String>>,
    counters: Counters,
}

impl Harness {
    fn new(setup: &Setup, log: bool) -> Result<Self, TestCaseError> {
        let n = setup.initial.len();
        let g = setup.guardrails.clone();
        let config = Arc::new(AtomicConfig::with_generation(
            ParamVec::from_slice(&setup.initial),
            setup.initial_generation,
        ));
        let clock = ManualClock::new(setup.clock_start);
        let ex = SafetyExecutor::builder(config.clone())
            .guardrails(g.clone())
            .rollback_policy(setup.policy)
            .clock(clock.clone())
            .audit_capacity(setup.audit_capacity)
            .build()
            .map_err(|e| TestCaseError::fail(format!("valid settings refused: {e}")))?;
        let bounds: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                g.bounds
                    .as_ref()
                    .map_or((f64::NEG_INFINITY, f64::INFINITY), |b| b[i])
            })
            .collect();
        let ranges: Vec<f64> = (0..n)
            .map(|i| g.bounds.as_ref().map_or(1.0, |b| b[i].1 - b[i].0))
            .collect();
        let rate_cap = g.max_updates_per_second.floor() as usize;
        let capacity = setup.audit_capacity;
        let m = Model {
            live: setup.initial.clone(),
            generation: setup.initial_generation,
            centre: setup.initial.clone(),
            centre_generation: setup.initial_generation,
            centre_is_baseline: false,
            baseline: None,
            now: setup.clock_start.min(MAX_TIME_US),
            applies: VecDeque::new(),
            last_apply: None,
            stable_until: 0,
            directions: vec![0; n],
            flips: vec![VecDeque::new(); n],
            commits: VecDeque::new(),
            rollbacks: VecDeque::new(),
            regressions_total: 0,
            regressions_since_rollback: 0,
            consecutive_malformed: 0,
            applied: 0,
            refused: 0,
            rollback_count: 0,
            min_clock_regressions: 0,
        };
        let mut h = Harness {
            policy: setup.policy,
            capacity,
            reserve_threshold: capacity - capacity / 8,
            bounds,
            ranges,
            rate_cap,
            eager: setup.eager_consumer,
            config,
            clock,
            ex,
            m,
            trail: Vec::new(),
            records: Vec::new(),
            step: 0,
            log: log.then(Vec::new),
            counters: Counters::default(),
            g,
        };
        h.note(|| format!("setup: {setup:?}"));
        h.check_state()?;
        Ok(h)
    }

    fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(log) = self.log.as_mut() {
            log.push(f());
        }
    }

    fn n(&self) -> usize {
        self.m.live.len()
    }

    fn step_limit(&self, i: usize) -> f64 {
        self.g.max_delta_per_step * self.ranges[i]
    }

    // -- delta construction ------------------------------------------------

    fn resolve(&self, spec: &ApplySpec) -> Vec<f64> {
        let n = self.n();
        let mut d = Vec::with_capacity(n + 4);
        for i in 0..n {
            let r = splitmix(spec.seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            let step = self.step_limit(i);
            let frac = match spec.scale {
                Scale::Zero => 0.0,
                Scale::Uniform => sign * u * step,
                Scale::Full => sign * step,
                Scale::NearLimit => sign * nudge(step, ((r >> 1) % 5) as i64 - 2),
                Scale::Tiny => sign * u * 2e-9 * self.ranges[i],
                Scale::Over => sign * step * (1.0 + u + 1e-6),
                Scale::Drift => u * step,
            };
            let mut x = match spec.base {
                Base::Live => frac,
                // Probe points and steps around the centre, half a step out.
                Base::Centre => (self.m.centre[i] + 0.5 * frac) - self.m.live[i],
            };
            let (lo, hi) = self.bounds[i];
            let to = self.m.live[i] + x;
            if spec.reflect && !(to >= lo && to <= hi) {
                x = match spec.base {
                    Base::Live => -frac,
                    Base::Centre => (self.m.centre[i] - 0.5 * frac) - self.m.live[i],
                };
            }
            d.push(x);
        }
        if let Some((index, special)) = spec.special {
            let i = index % n;
            d[i] = match special {
                Special::Value(v) => v,
                Special::ToBound { upper, overshoot } => {
                    let (lo, hi) = self.bounds[i];
                    let b = if upper { hi } else { lo };
                    (b - self.m.live[i]) + overshoot * self.ranges[i]
                }
                Special::StepLimit { negative, ulps } => {
                    let v = nudge(self.step_limit(i), ulps);
                    if negative {
                        -v
                    } else {
                        v
                    }
                }
            };
        }
        match spec.len {
            LenMode::Exact => {}
            LenMode::Short(k) => d.truncate(n.saturating_sub(k)),
            LenMode::Long(k) => d.extend(std::iter::repeat_n(0.0, k)),
        }
        d
    }

    /// Rules 2–5 exactly as documented; the candidate values if they pass.
    fn content(&self, kind: Kind, d: &[f64]) -> Result<Vec<f64>, Violation> {
        let n = self.n();
        if d.len() != n {
            return Err(Violation::WrongLength {
                expected: n,
                got: d.len(),
            });
        }
        if let Some(index) = d.iter().position(|x| !x.is_finite()) {
            return Err(Violation::NonFinite { index });
        }
        let limit = self.g.max_delta_per_step;
        // The step is what would be applied: `live + delta`, rounded.
        let candidate: Vec<f64> = d.iter().zip(&self.m.live).map(|(x, l)| l + x).collect();
        for (index, (&value, &live)) in candidate.iter().zip(&self.m.live).enumerate() {
            let step = (value - live).abs() / self.ranges[index];
            if step.is_nan() || step > limit {
                return Err(Violation::DeltaTooLarge {
                    index,
                    delta: step,
                    limit,
                });
            }
        }
        for (index, &value) in candidate.iter().enumerate() {
            let (min, max) = self.bounds[index];
            if !(value.is_finite() && value >= min && value <= max) {
                return Err(Violation::OutOfBounds {
                    index,
                    value,
                    min,
                    max,
                });
            }
        }
        if kind != Kind::Update {
            for (index, &c) in candidate.iter().enumerate() {
                let excursion = (c - self.m.centre[index]).abs() / self.ranges[index];
                if excursion > limit {
                    return Err(Violation::ExcursionTooLarge {
                        index,
                        excursion,
                        limit,
                    });
                }
            }
        }
        Ok(candidate)
    }

    fn direction(&self, i: usize, to: f64) -> i8 {
        let m = (to - self.m.centre[i]) / self.ranges[i];
        if m > DIRECTION_EPSILON {
            1
        } else if m < -DIRECTION_EPSILON {
            -1
        } else {
            0
        }
    }

    /// Movement of dimension `i` the executor's 5 s buckets still hold at
    /// `now` (between 60 and 65 s of history).
    fn bucketed_spent(&self, i: usize, now: u64) -> f64 {
        let newest = now / BUCKET;
        self.m
            .commits
            .iter()
            .filter(|(t, _)| t / BUCKET + BUCKETS > newest)
            .map(|(_, moves)| moves[i])
            .sum()
    }

    fn prune(&mut self, now: u64) {
        while self.m.applies.front().is_some_and(|&t| now - t >= SECOND) {
            self.m.applies.pop_front();
        }
        for ring in &mut self.m.flips {
            while ring.front().is_some_and(|&t| now - t >= MINUTE) {
                ring.pop_front();
            }
        }
        let newest = now / BUCKET;
        while self
            .m
            .commits
            .front()
            .is_some_and(|(t, _)| t / BUCKET + BUCKETS <= newest && now - t >= MINUTE)
        {
            self.m.commits.pop_front();
        }
        while self.m.rollbacks.front().is_some_and(|&t| now - t >= HOUR) {
            self.m.rollbacks.pop_front();
        }
    }

    /// Times at which some rule's verdict changes, from the model.
    fn deadlines(&self) -> Vec<u64> {
        let m = &self.m;
        let mut d = Vec::new();
        if let Some(last) = m.last_apply {
            d.push(last.saturating_add(self.g.min_interval_us));
        }
        if m.applies.len() >= self.rate_cap {
            d.push(m.applies[m.applies.len() - self.rate_cap].saturating_add(SECOND));
        }
        if let Some(&first) = m.applies.front() {
            d.push(first.saturating_add(SECOND));
        }
        if m.stable_until > 0 {
            d.push(m.stable_until);
        }
        let limit = self.g.direction_flip_limit as usize;
        for ring in &m.flips {
            if ring.len() >= limit.max(1) {
                d.push(ring[ring.len() - limit.max(1)].saturating_add(MINUTE));
            }
        }
        let safety = self.ex.control_safety();
        for r in safety.reasons().iter() {
            if let Some(SafeModeExit::At(t)) = safety.exit_of(r) {
                d.push(t);
            }
        }
        d.push((m.now / BUCKET + 1).saturating_mul(BUCKET));
        if let Some((t, _)) = m.commits.front() {
            d.push(t.saturating_add(MINUTE));
            d.push((t / BUCKET + BUCKETS).saturating_mul(BUCKET));
        }
        if let Some(&t) = m.rollbacks.front() {
            d.push(t.saturating_add(HOUR));
        }
        d
    }

    // -- calls -------------------------------------------------------------

    fn pre(&mut self) -> Pre {
        // The executor clamps readings beyond MAX_TIME_US (fails closed).
        let clock = self.clock.now_us().min(MAX_TIME_US);
        if clock < self.m.now {
            self.m.min_clock_regressions += 1;
        }
        self.m.now = self.m.now.max(clock);
        let now = self.m.now;
        self.prune(now);
        let queue_len = self.ex.audit_queue().len();
        Pre {
            now,
            queue_len,
            safety: self.ex.control_safety().clone(),
            stats: self.ex.stats(),
            seq_start: self.trail.len() as u64 + queue_len as u64,
            generation: self.m.generation,
            live: self.m.live.clone(),
        }
    }

    fn record(
        &mut self,
        label: &'static str,
        pre: &Pre,
        expects: Vec<Expect>,
        refusals: Vec<Refusal>,
    ) -> Result<(), TestCaseError> {
        let queue_len = self.ex.audit_queue().len();
        let seq_end = self.trail.len() as u64 + queue_len as u64;
        check!(
            seq_end >= pre.seq_start,
            "{label}: the audit queue shrank during the call"
        );
        let stats = self.ex.stats();
        check!(
            stats.audit_dropped >= pre.stats.audit_dropped,
            "{label}: audit_dropped went down"
        );
        let dropped = stats.audit_dropped > pre.stats.audit_dropped;
        self.counters.dropped += stats.audit_dropped - pre.stats.audit_dropped;
        for r in &refusals {
            *self
                .counters
                .refusals
                .entry(violation_name(&r.violation))
                .or_default() += 1;
        }
        // Reasons with a manual exit are only cleared by resume.
        let after = self.ex.control_safety().clone();
        if label != "resume" {
            for r in pre.safety.reasons().iter() {
                if matches!(
                    pre.safety.exit_of(r),
                    Some(SafeModeExit::Manual | SafeModeExit::Never)
                ) {
                    check!(
                        after.exit_of(r) == pre.safety.exit_of(r),
                        "{label}: {r:?} (manual exit) cleared or changed without resume: {:?}",
                        after.exit_of(r)
                    );
                }
            }
        }
        self.records.push(OpRecord {
            step: self.step,
            label,
            seq_start: pre.seq_start,
            seq_end,
            queue_len: pre.queue_len,
            now: pre.now,
            dropped,
            latched_before: reason_set(&pre.safety),
            latched_after: reason_set(&after),
            expects,
            refusals,
        });
        Ok(())
    }

    /// A refusal must leave the live config and the centre as they were.
    fn check_unchanged(&self, label: &str, pre: &Pre) -> Result<(), TestCaseError> {
        let snap = self.config.load();
        check!(
            snap.generation == pre.generation && bit_eq(&snap.params, &pre.live),
            "{label}: refused but the live config changed: gen {} → {}, {:?} → {:?}",
            pre.generation,
            snap.generation,
            pre.live,
            snap.params
        );
        check!(
            bit_eq(self.ex.centre(), &self.m.centre)
                && self.ex.centre_generation() == self.m.centre_generation,
            "{label}: refused but the centre changed"
        );
        Ok(())
    }

    /// A latched reason must still be latched, with a timer at least `until`.
    fn check_latched(
        &self,
        label: &str,
        reason: SafeModeReason,
        exit: SafeModeExit,
    ) -> Result<(), TestCaseError> {
        let got = self.ex.control_safety().exit_of(reason);
        let ok = match (got, exit) {
            (Some(SafeModeExit::At(a)), SafeModeExit::At(b)) => a >= b,
            (Some(SafeModeExit::Manual | SafeModeExit::Never), _) => true,
            (Some(a), b) => a == b,
            (None, _) => false,
        };
        check!(
            ok,
            "{label}: expected {reason:?} latched with {exit:?}, got {got:?}"
        );
        Ok(())
    }

    /// Safe-mode prediction for `apply`: `Ok(true)` if the call must get past
    /// rule 1, `Ok(false)` if it was (correctly) refused by it.
    fn judge_safe_mode(
        &self,
        pre: &Pre,
        result: Option<&Violation>,
        dropped: bool,
    ) -> Result<bool, TestCaseError> {
        let drained = pre.queue_len <= self.capacity / 2;
        let mut not_due = ReasonSet::EMPTY;
        for r in pre.safety.reasons().iter() {
            let due = match pre.safety.exit_of(r) {
                Some(SafeModeExit::At(t)) => pre.now >= t,
                Some(SafeModeExit::QueueDrained) => drained,
                _ => false,
            };
            if !due {
                not_due.insert(r);
            }
        }
        match result {
            Some(Violation::InSafeMode { reason, until_us }) => {
                check!(
                    pre.safety.reasons().contains(*reason),
                    "InSafeMode({reason:?}) but it was not latched: {:?}",
                    pre.safety
                );
                let exit = pre.safety.exit_of(*reason);
                let expected_until = match exit {
                    Some(SafeModeExit::At(t)) => Some(t),
                    _ => None,
                };
                check!(
                    *until_us == expected_until,
                    "InSafeMode({reason:?}) reports until {until_us:?}, latch is {exit:?}"
                );
                check!(
                    not_due.iter().all(|r| r >= *reason),
                    "InSafeMode({reason:?}) but {not_due:?} is latched and comes first"
                );
                if !not_due.contains(*reason) {
                    // Its exit was due; it stays only if the exit event could
                    // not be recorded, which counts a drop.
                    check!(
                        dropped,
                        "InSafeMode({reason:?}) although its exit {exit:?} was due at {} (queue {})",
                        pre.now,
                        pre.queue_len
                    );
                }
                Ok(false)
            }
            _ => {
                check!(
                    not_due.is_empty(),
                    "apply got past safe mode although {not_due:?} was latched and not due \
                     (now {}, queue {}, latch {:?}); result {result:?}",
                    pre.now,
                    pre.queue_len,
                    pre.safety
                );
                Ok(true)
            }
        }
    }

    fn op_apply(&mut self, spec: &ApplySpec) -> TestCaseResult {
        let delta = self.resolve(spec);
        let n = self.n();
        let (kind, proposal) = match spec.kind {
            Kind::Plus => (
                ProposalKind::ApplyPlus,
                Proposal::ApplyPlus {
                    perturbation_id: spec.id,
                    delta: ParamVec::from_slice(&delta),
                },
            ),
            Kind::Minus => (
                ProposalKind::ApplyMinus,
                Proposal::ApplyMinus {
                    perturbation_id: spec.id,
                    delta: ParamVec::from_slice(&delta),
                },
            ),
            Kind::Update => (
                ProposalKind::Update,
                Proposal::Update {
                    iteration: spec.id,
                    delta: ParamVec::from_slice(&delta),
                    gradient_estimate: ParamVec::zeros(n),
                },
            ),
        };
        let pre = self.pre();
        let result = self.ex.apply(proposal);
        let now = pre.now;
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        self.note(|| format!("apply {kind:?} {delta:?} at {now} → {result:?}"));

        // Which rule must refuse, in the documented order.
        let past_safe_mode = self.judge_safe_mode(&pre, result.as_ref().err(), dropped)?;
        let mut candidate = None;
        if past_safe_mode {
            match self.content(spec.kind, &delta) {
                Err(v) => check!(
                    result == Err(v),
                    "apply {kind:?} {delta:?}: expected {v:?}, got {result:?}"
                ),
                Ok(c) => {
                    self.judge_timing(spec.kind, &c, &pre, &result)?;
                    candidate = Some(c);
                }
            }
        }

        let label = "apply";
        match result {
            Ok(receipt) => {
                let candidate = candidate.expect("an accepted apply passed the model's checks");
                check!(
                    receipt.kind == kind
                        && receipt.old_generation == pre.generation
                        && receipt.new_generation == pre.generation + 1
                        && receipt.timestamp_us == now,
                    "apply receipt {receipt:?}, expected {kind:?} {} → {} at {now}",
                    pre.generation,
                    pre.generation + 1
                );
                let seq = receipt.audit_seq.ok_or_else(|| {
                    TestCaseError::fail("an accepted apply has no audit_seq".to_string())
                })?;
                let snap = self.config.load();
                check!(
                    bit_eq(&snap.params, &candidate),
                    "applied {:?}, expected exactly live + delta = {candidate:?}",
                    snap.params
                );
                // Step size of the change actually applied.
                for (i, (&new, &old)) in candidate.iter().zip(&pre.live).enumerate() {
                    let moved = (new - old).abs();
                    check!(
                        moved / self.ranges[i] <= self.g.max_delta_per_step,
                        "params[{i}] moved by {moved:e} ({old} → {new}), more than the step \
                         limit {:e} = {} · {}",
                        self.step_limit(i),
                        self.g.max_delta_per_step,
                        self.ranges[i]
                    );
                }
                // Probes stay within one step of the centre.
                if spec.kind != Kind::Update {
                    for (i, (&c, &centre)) in candidate.iter().zip(&self.m.centre).enumerate() {
                        let excursion = (c - centre).abs();
                        check!(
                            excursion / self.ranges[i] <= self.g.max_delta_per_step,
                            "probe params[{i}] strays {excursion:e} from the centre {}, more \
                             than the step limit {:e}",
                            centre,
                            self.step_limit(i)
                        );
                    }
                }
                check!(
                    !self.ex.control_safety().is_latched(),
                    "an apply succeeded but safe mode is latched after it: {:?}",
                    self.ex.control_safety()
                );
                // Rate.
                if let Some(last) = self.m.last_apply {
                    check!(
                        now >= last && now - last >= self.g.min_interval_us,
                        "applies at {last} and {now}: closer than min_interval {}",
                        self.g.min_interval_us
                    );
                }
                self.m.applies.push_back(now);
                self.m.last_apply = Some(now);
                let in_window = self.m.applies.iter().filter(|&&t| now - t < SECOND).count();
                check!(
                    in_window <= self.rate_cap,
                    "{in_window} applies in the second up to {now}, at most {}",
                    self.rate_cap
                );
                if spec.kind == Kind::Update {
                    self.commit(&candidate, now)?;
                    self.m.centre_generation = receipt.new_generation;
                }
                self.m.live = candidate.clone();
                self.m.generation = receipt.new_generation;
                self.m.applied += 1;
                self.m.consecutive_malformed = 0;
                self.counters.applies_ok += 1;
                self.record(
                    label,
                    &pre,
                    vec![Expect::Applied {
                        seq,
                        kind,
                        correlation_id: spec.id,
                        previous_generation: pre.generation,
                        delta: delta.clone(),
                        params: candidate,
                    }],
                    vec![],
                )
            }
            Err(v) => {
                self.check_unchanged(label, &pre)?;
                self.m.refused += 1;
                match v {
                    Violation::DirectionFlipViolation {
                        cooldown_until_us, ..
                    } => self.check_latched(
                        label,
                        SafeModeReason::Thrashing,
                        SafeModeExit::At(cooldown_until_us),
                    )?,
                    Violation::CumulativeDeltaViolation { retry_at_us, .. } => self.check_latched(
                        label,
                        SafeModeReason::BudgetExhausted,
                        SafeModeExit::At(retry_at_us),
                    )?,
                    Violation::AuditQueueFull { .. } => self.check_latched(
                        label,
                        SafeModeReason::AuditQueueFull,
                        SafeModeExit::QueueDrained,
                    )?,
                    v if v.is_malformed() => {
                        self.m.consecutive_malformed += 1;
                        if self.m.consecutive_malformed >= self.g.violation_limit {
                            self.check_latched(
                                label,
                                SafeModeReason::RepeatedViolations,
                                SafeModeExit::Manual,
                            )?;
                        }
                    }
                    _ => {}
                }
                self.record(
                    label,
                    &pre,
                    vec![],
                    vec![Refusal {
                        request: RequestKind::Proposal(kind),
                        correlation_id: spec.id,
                        violation: v,
                        delta,
                    }],
                )
            }
        }
    }

    /// Rules 6–10 for a proposal that passed rules 1–5.
    fn judge_timing(
        &self,
        kind: Kind,
        candidate: &[f64],
        pre: &Pre,
        result: &Result<hotpath::ApplyReceipt, Violation>,
    ) -> TestCaseResult {
        let now = pre.now;
        let g = &self.g;
        let expected = if now < self.m.stable_until {
            Some(Violation::StabilizationPending {
                retry_at_us: self.m.stable_until,
            })
        } else if let Some(next) = self
            .m
            .last_apply
            .map(|t| t.saturating_add(g.min_interval_us))
            .filter(|&next| now < next)
        {
            Some(Violation::RateLimitExceeded {
                rule: RateRule::MinInterval,
                retry_at_us: next,
            })
        } else if self.m.applies.len() >= self.rate_cap {
            let oldest = self.m.applies[self.m.applies.len() - self.rate_cap];
            Some(Violation::RateLimitExceeded {
                rule: RateRule::PerSecond,
                retry_at_us: oldest.saturating_add(SECOND),
            })
        } else if kind == Kind::Update {
            (0..self.n()).find_map(|i| {
                let direction = self.direction(i, candidate[i]);
                let last = self.m.directions[i];
                let recent = self.m.flips[i].len();
                (direction != 0
                    && last != 0
                    && direction != last
                    && recent >= g.direction_flip_limit as usize)
                    .then(|| Violation::DirectionFlipViolation {
                        index: i,
                        flips: recent.min(g.direction_flip_limit as usize) as u32 + 1,
                        limit: g.direction_flip_limit,
                        cooldown_until_us: now.saturating_add(g.cooldown_after_flip_us),
                    })
            })
        } else {
            None
        };
        if let Some(v) = expected {
            check!(
                *result == Err(v),
                "{kind:?} to {candidate:?} at {now}: expected {v:?}, got {result:?}"
            );
            return Ok(());
        }
        // Budget (bucketed in the executor: compare with a tolerance).
        if kind == Kind::Update {
            let limit = g.max_cumulative_delta_per_minute;
            let spent: Vec<f64> = (0..self.n())
                .map(|i| {
                    self.bucketed_spent(i, now)
                        + (candidate[i] - self.m.centre[i]).abs() / self.ranges[i]
                })
                .collect();
            match result {
                Err(Violation::CumulativeDeltaViolation {
                    index,
                    spent: got,
                    limit: l,
                    retry_at_us,
                }) => {
                    check!(
                        *l == limit && *retry_at_us == now.saturating_add(BUDGET_CLEAR),
                        "budget violation {result:?}: limit {limit}, retry at {}",
                        now.saturating_add(BUDGET_CLEAR)
                    );
                    check!(
                        *got > limit && (got - spent[*index]).abs() <= SUM_TOLERANCE,
                        "budget violation for params[{index}] spent {got}, model {} (limit {limit})",
                        spent[*index]
                    );
                    check!(
                        spent[..*index].iter().all(|&s| s <= limit + SUM_TOLERANCE),
                        "budget violation for params[{index}] but an earlier one is over: {spent:?}"
                    );
                    return Ok(());
                }
                _ => {
                    if let Some(i) = spent.iter().position(|&s| s > limit + SUM_TOLERANCE) {
                        return Err(TestCaseError::fail(format!(
                            "update to {candidate:?} at {now} would spend {} of params[{i}] \
                             (budget {limit}) but got {result:?}",
                            spent[i]
                        )));
                    }
                }
            }
        }
        // Audit: only a (nearly) full queue may refuse now.
        match result {
            Ok(_) => Ok(()),
            Err(Violation::AuditQueueFull { capacity }) => {
                check!(
                    *capacity == self.capacity
                        && pre.queue_len + SafeModeReason::ALL.len() + 1 >= self.reserve_threshold,
                    "AuditQueueFull {capacity} with queue at {} of {} (reserve from {})",
                    pre.queue_len,
                    self.capacity,
                    self.reserve_threshold
                );
                Ok(())
            }
            other => Err(TestCaseError::fail(format!(
                "{kind:?} to {candidate:?} at {now} passes every rule, got {other:?}"
            ))),
        }
    }

    /// Commits an accepted update to the model and checks the flip and budget
    /// invariants on exact 60 s windows.
    fn commit(&mut self, candidate: &[f64], now: u64) -> TestCaseResult {
        let n = self.n();
        let mut moves = Vec::with_capacity(n);
        for (i, &c) in candidate.iter().enumerate() {
            let direction = self.direction(i, c);
            if direction != 0 {
                let last = self.m.directions[i];
                if last != 0 && last != direction {
                    self.m.flips[i].push_back(now);
                }
                self.m.directions[i] = direction;
            }
            let flips = self.m.flips[i].len();
            check!(
                flips <= self.g.direction_flip_limit as usize,
                "params[{i}]: {flips} committed reversals in the minute up to {now}, at most {}",
                self.g.direction_flip_limit
            );
            moves.push((c - self.m.centre[i]).abs() / self.ranges[i]);
        }
        self.m.commits.push_back((now, moves));
        let limit = self.g.max_cumulative_delta_per_minute;
        for i in 0..n {
            let spent: f64 = self
                .m
                .commits
                .iter()
                .filter(|(t, _)| now - t < MINUTE)
                .map(|(_, m)| m[i])
                .sum();
            check!(
                spent <= limit + SUM_TOLERANCE,
                "params[{i}] moved {spent} of its range in the minute up to {now}, budget {limit}"
            );
        }
        self.m.centre = candidate.to_vec();
        self.m.centre_is_baseline = false;
        Ok(())
    }

    /// Applies a successful rollback's receipt to the model.
    fn rolled_back(
        &mut self,
        label: &str,
        pre_generation: u64,
        now: u64,
        receipt: &RollbackReceipt,
        reason: RollbackReason,
    ) -> Result<Expect, TestCaseError> {
        let baseline = self
            .m
            .baseline
            .as_ref()
            .ok_or_else(|| TestCaseError::fail(format!("{label}: rolled back without baseline")))?
            .params
            .clone();
        let tripped = self.m.rollbacks.len() >= self.policy.max_rollbacks_per_hour as usize;
        check!(
            receipt.reason == reason
                && receipt.old_generation == pre_generation
                && receipt.new_generation == pre_generation + 1
                && receipt.timestamp_us == now
                && receipt.circuit_breaker_tripped == tripped,
            "{label}: rollback receipt {receipt:?}, expected {reason:?} {pre_generation} → {} at \
             {now}, tripped {tripped} ({} in the hour, limit {})",
            pre_generation + 1,
            self.m.rollbacks.len(),
            self.policy.max_rollbacks_per_hour
        );
        let snap = self.config.load();
        check!(
            bit_eq(&snap.params, &baseline),
            "{label}: rolled back to {:?}, baseline is {baseline:?}",
            snap.params
        );
        if tripped {
            self.check_latched(
                label,
                SafeModeReason::RollbackCircuitBreaker,
                SafeModeExit::Manual,
            )?;
        }
        self.m.rollbacks.push_back(now);
        self.m.live = baseline.clone();
        self.m.generation = receipt.new_generation;
        self.m.centre = baseline.clone();
        self.m.centre_generation = receipt.new_generation;
        self.m.centre_is_baseline = true;
        self.m.directions.fill(0);
        self.m.stable_until = now.saturating_add(self.policy.min_stable_time_us);
        self.m.regressions_since_rollback = 0;
        self.m.rollback_count += 1;
        self.counters.rollbacks_ok += 1;
        Ok(Expect::RolledBack {
            seq: receipt.audit_seq,
            reason,
            previous_generation: pre_generation,
            params: baseline,
        })
    }

    fn op_rollback(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.rollback();
        let now = pre.now;
        self.note(|| format!("rollback at {now} → {result:?}"));
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        match result {
            Ok(receipt) => {
                let e = self.rolled_back(
                    "rollback",
                    pre.generation,
                    now,
                    &receipt,
                    RollbackReason::Manual,
                )?;
                self.record("rollback", &pre, vec![e], vec![])
            }
            Err(v) => {
                self.check_unchanged("rollback", &pre)?;
                if self.m.baseline.is_none() {
                    check!(
                        v == Violation::NoBaseline,
                        "rollback without baseline: {v:?}"
                    );
                } else {
                    check!(
                        v == Violation::AuditQueueFull {
                            capacity: self.capacity
                        } && dropped,
                        "rollback refused with {v:?} (queue {} of {}, dropped {dropped})",
                        pre.queue_len,
                        self.capacity
                    );
                    self.check_latched(
                        "rollback",
                        SafeModeReason::AuditQueueFull,
                        SafeModeExit::QueueDrained,
                    )?;
                }
                self.m.refused += 1;
                self.record(
                    "rollback",
                    &pre,
                    vec![],
                    vec![Refusal {
                        request: RequestKind::Rollback,
                        correlation_id: 0,
                        violation: v,
                        delta: vec![],
                    }],
                )
            }
        }
    }

    fn op_set_baseline(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.set_baseline();
        self.note(|| format!("set_baseline at {} → {result:?}", pre.now));
        match result {
            Ok(generation) => {
                check!(
                    generation == self.m.centre_generation,
                    "set_baseline returned {generation}, centre is {}",
                    self.m.centre_generation
                );
                self.check_unchanged("set_baseline", &pre)?;
                self.m.baseline = Some(BaselineModel {
                    params: self.m.centre.clone(),
                    reports: 0,
                    mean: 0.0,
                    m2: 0.0,
                });
                self.m.centre_is_baseline = true;
                self.m.regressions_since_rollback = 0;
                self.m.regressions_total = 0;
                let e = Expect::BaselineSet {
                    baseline_generation: generation,
                    params: self.m.centre.clone(),
                };
                self.record("set_baseline", &pre, vec![e], vec![])
            }
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && pre.queue_len + 1 >= self.reserve_threshold,
                    "set_baseline refused with {v:?} (queue {} of {})",
                    pre.queue_len,
                    self.capacity
                );
                self.check_unchanged("set_baseline", &pre)?;
                self.check_latched(
                    "set_baseline",
                    SafeModeReason::AuditQueueFull,
                    SafeModeExit::QueueDrained,
                )?;
                self.m.refused += 1;
                self.record(
                    "set_baseline",
                    &pre,
                    vec![],
                    vec![Refusal {
                        request: RequestKind::SetBaseline,
                        correlation_id: 0,
                        violation: v,
                        delta: vec![],
                    }],
                )
            }
        }
    }

    fn op_report(&mut self, spec: GenSpec, objective: f64) -> TestCaseResult {
        let generation = match spec {
            GenSpec::Centre => self.m.centre_generation,
            GenSpec::Live => self.m.generation,
            GenSpec::Offset(k) => self.m.centre_generation.wrapping_add_signed(k),
        };
        let pre = self.pre();
        let result = self.ex.report_outcome(generation, objective);
        let now = pre.now;
        self.note(|| format!("report_outcome({generation}, {objective}) at {now} → {result:?}"));
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        let refusal = |violation| Refusal {
            request: RequestKind::Outcome,
            correlation_id: 0,
            violation,
            delta: vec![],
        };
        let expected_err = if !objective.is_finite() {
            Some(Violation::NonFiniteObjective)
        } else if generation != self.m.centre_generation {
            Some(Violation::StaleOutcome {
                reported: generation,
                centre: self.m.centre_generation,
            })
        } else {
            None
        };
        if let Some(v) = expected_err {
            check!(
                result == Err(v),
                "report_outcome: expected {v:?}, got {result:?}"
            );
            self.check_unchanged("report_outcome", &pre)?;
            self.m.refused += 1;
            return self.record("report_outcome", &pre, vec![], vec![refusal(v)]);
        }
        let verdict = match &self.m.baseline {
            None => OutcomeVerdict::Unjudged,
            Some(_) if self.m.centre_is_baseline => OutcomeVerdict::BaselineSample,
            Some(b) if b.reports < hotpath::MIN_BASELINE_REPORTS => OutcomeVerdict::Unjudged,
            Some(b) => {
                let p = &self.policy;
                let allowance =
                    (p.regression_sigmas * b.sd()).max(p.regression_tolerance * b.mean.abs());
                if objective > b.mean + allowance {
                    OutcomeVerdict::Regressed {
                        consecutive: self.m.regressions_total.saturating_add(1),
                    }
                } else {
                    OutcomeVerdict::Acceptable
                }
            }
        };
        let receipt = match result {
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && pre.queue_len + SafeModeReason::ALL.len() + 1 >= self.reserve_threshold,
                    "report_outcome refused with {v:?} (queue {} of {})",
                    pre.queue_len,
                    self.capacity
                );
                self.check_unchanged("report_outcome", &pre)?;
                self.m.refused += 1;
                return self.record("report_outcome", &pre, vec![], vec![refusal(v)]);
            }
            Ok(receipt) => receipt,
        };
        check!(
            receipt.verdict == verdict,
            "report_outcome verdict {:?}, model {verdict:?}",
            receipt.verdict
        );
        let mut expects = vec![Expect::Outcome {
            reported_generation: generation,
            objective,
            verdict,
        }];
        let mut refusals = vec![];
        let mut latches = false;
        let mut rollback_attempted = false;
        match verdict {
            OutcomeVerdict::BaselineSample => {
                if let Some(b) = self.m.baseline.as_mut() {
                    b.add(objective);
                }
            }
            OutcomeVerdict::Acceptable => {
                self.m.regressions_total = 0;
                self.m.regressions_since_rollback = 0;
            }
            OutcomeVerdict::Regressed { consecutive } => {
                self.m.regressions_total = consecutive;
                self.m.regressions_since_rollback += 1;
                rollback_attempted =
                    self.m.regressions_since_rollback >= self.policy.max_consecutive_regressions;
                latches = consecutive >= self.g.regression_count_limit;
            }
            OutcomeVerdict::Unjudged => {}
        }
        match (rollback_attempted, receipt.rollback) {
            (false, None) => self.check_unchanged("report_outcome", &pre)?,
            (false, Some(r)) => {
                return Err(TestCaseError::fail(format!(
                    "report_outcome rolled back unexpectedly: {r:?}"
                )))
            }
            (true, Some(r)) => {
                let e = self.rolled_back(
                    "report_outcome",
                    pre.generation,
                    now,
                    &r,
                    RollbackReason::Regressions,
                )?;
                expects.push(e);
            }
            (true, None) => {
                // Only a full queue can refuse a rollback with a baseline.
                check!(
                    dropped,
                    "report_outcome: automatic rollback due but not done, and nothing dropped"
                );
                self.check_unchanged("report_outcome", &pre)?;
                self.m.refused += 1;
                refusals.push(Refusal {
                    request: RequestKind::Rollback,
                    correlation_id: 0,
                    violation: Violation::AuditQueueFull {
                        capacity: self.capacity,
                    },
                    delta: vec![],
                });
            }
        }
        check!(
            receipt.safe_mode_latched == latches,
            "report_outcome safe_mode_latched {}, expected {latches}",
            receipt.safe_mode_latched
        );
        if latches {
            self.check_latched(
                "report_outcome",
                SafeModeReason::Regressions,
                SafeModeExit::Manual,
            )?;
        }
        self.record("report_outcome", &pre, expects, refusals)
    }

    fn op_freeze(&mut self) -> TestCaseResult {
        let pre = self.pre();
        self.ex.freeze();
        self.note(|| format!("freeze at {}", pre.now));
        self.check_unchanged("freeze", &pre)?;
        self.check_latched("freeze", SafeModeReason::Manual, SafeModeExit::Manual)?;
        self.record("freeze", &pre, vec![], vec![])
    }

    fn op_resume(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.resume();
        self.note(|| format!("resume at {} → {result:?}", pre.now));
        self.check_unchanged("resume", &pre)?;
        let dropped = self.ex.stats().audit_dropped > pre.stats.audit_dropped;
        match result {
            Ok(cleared) => {
                let mut misconfigured = ReasonSet::EMPTY;
                misconfigured.insert(SafeModeReason::Misconfigured);
                let expected = without(pre.safety.reasons(), misconfigured);
                check!(
                    cleared == expected,
                    "resume cleared {cleared:?}, latched were {expected:?}"
                );
                check!(
                    !self.ex.control_safety().is_latched(),
                    "still latched after resume: {:?}",
                    self.ex.control_safety()
                );
                self.m.regressions_total = 0;
                self.m.regressions_since_rollback = 0;
                self.m.consecutive_malformed = 0;
                self.record("resume", &pre, vec![Expect::Resumed { cleared }], vec![])
            }
            Err(v) => {
                check!(
                    v == Violation::AuditQueueFull {
                        capacity: self.capacity
                    } && dropped,
                    "resume refused with {v:?}, dropped {dropped}"
                );
                check!(
                    *self.ex.control_safety() == pre.safety,
                    "a refused resume changed the latch"
                );
                self.record("resume", &pre, vec![], vec![])
            }
        }
    }

    fn op_no_change(&mut self) -> TestCaseResult {
        let pre = self.pre();
        let result = self.ex.apply(Proposal::NoChange {
            reason: NoChangeReason::CollectingSamples,
        });
        self.note(|| format!("apply NoChange at {} → {result:?}", pre.now));
        let receipt =
            result.map_err(|v| TestCaseError::fail(format!("NoChange refused: {v:?}")))?;
        check!(
            receipt.kind == ProposalKind::NoChange
                && receipt.old_generation == pre.generation
                && receipt.new_generation == pre.generation
                && receipt.timestamp_us == pre.now
                && receipt.audit_seq.is_none(),
            "NoChange receipt {receipt:?}"
        );
        self.check_unchanged("no_change", &pre)?;
        check!(
            *self.ex.control_safety() == pre.safety,
            "NoChange changed the safe-mode latch"
        );
        self.record("no_change", &pre, vec![], vec![])
    }

    fn op_budget(&mut self, index: usize) -> TestCaseResult {
        let i = index % self.n();
        let pre = self.pre();
        let got = self.ex.budget_remaining(i);
        let expected =
            (self.g.max_cumulative_delta_per_minute - self.bucketed_spent(i, pre.now)).max(0.0);
        self.note(|| format!("budget_remaining({i}) at {} → {got}", pre.now));
        check!(
            (got - expected).abs() <= SUM_TOLERANCE,
            "budget_remaining({i}) = {got}, model {expected}"
        );
        self.record("budget_remaining", &pre, vec![], vec![])
    }

    // -- audit -------------------------------------------------------------

    fn drain(&mut self, max: Option<usize>) -> TestCaseResult {
        let mut taken = 0;
        while max.is_none_or(|k| taken < k) {
            let Some(e) = self.ex.audit_queue().try_dequeue() else {
                break;
            };
            taken += 1;
            check!(
                e.seq == self.trail.len() as u64,
                "audit seq {} after {} events (gap or reorder): {e:?}",
                e.seq,
                self.trail.len()
            );
            if let Some(prev) = self.trail.last() {
                check!(
                    e.timestamp_us >= prev.timestamp_us,
                    "audit time went backwards: {prev:?} then {e:?}"
                );
            }
            self.trail.push(e);
        }
        self.counters.events += taken as u64;
        Ok(())
    }

    fn check_events(&self, r: &OpRecord) -> TestCaseResult {
        let events = &self.trail[r.seq_start as usize..r.seq_end as usize];
        let ctx = || format!("step {} ({}) events {events:?}", r.step, r.label);
        let mut set = r.latched_before;
        let mut found = vec![false; r.expects.len()];
        let mut refusals = r.refusals.iter();
        let mut rejected = 0;
        let mut exits_before = 0;
        for e in events {
            // Queue length when this event was pushed.
            let queued = r.queue_len + (e.seq - r.seq_start) as usize;
            if matches!(
                e.details,
                AuditDetails::Applied { .. }
                    | AuditDetails::BaselineSet { .. }
                    | AuditDetails::Outcome { .. }
            ) {
                check!(
                    queued < self.reserve_threshold,
                    "ordinary event queued at length {queued}, reserve starts at {}: {}",
                    self.reserve_threshold,
                    ctx()
                );
            }
            check!(
                e.timestamp_us == r.now,
                "event time {} ≠ call time {}: {}",
                e.timestamp_us,
                r.now,
                ctx()
            );
            match &e.details {
                AuditDetails::Started { .. } => {
                    return Err(TestCaseError::fail(format!("second Started: {}", ctx())))
                }
                AuditDetails::EventsDropped { count } => {
                    check!(*count > 0, "EventsDropped of 0: {}", ctx())
                }
                AuditDetails::SafeModeExited { reason } => {
                    exits_before += 1;
                    check!(
                        set.contains(*reason),
                        "exit of unlatched {reason:?}: {}",
                        ctx()
                    );
                    let mut one = ReasonSet::EMPTY;
                    one.insert(*reason);
                    set = without(set, one);
                }
                AuditDetails::SafeModeEntered { reason, .. } => {
                    check!(
                        !set.contains(*reason),
                        "entry of latched {reason:?}: {}",
                        ctx()
                    );
                    set.insert(*reason);
                }
                AuditDetails::Rejected {
                    request,
                    correlation_id,
                    violation,
                    delta,
                } => {
                    rejected += 1;
                    if *violation
                        == (Violation::AuditQueueFull {
                            capacity: self.capacity,
                        })
                        && *request != RequestKind::Rollback
                    {
                        // The refused ordinary event found the queue (after
                        // this call's exits and at most one drop notice) at
                        // the reserve, or one short of it with a notice due.
                        check!(
                            r.queue_len + exits_before + 2 >= self.reserve_threshold,
                            "AuditQueueFull with {} queued + {exits_before} exits, reserve \
                             starts at {}: {}",
                            r.queue_len,
                            self.reserve_threshold,
                            ctx()
                        );
                    }
                    let matches = |f: &Refusal| {
                        f.request == *request
                            && f.correlation_id == *correlation_id
                            && f.violation == *violation
                            && bit_eq(&f.delta, delta)
                    };
                    let ok = if r.dropped {
                        refusals.any(matches)
                    } else {
                        refusals.next().is_some_and(matches)
                    };
                    check!(
                        ok,
                        "unexpected Rejected {e:?}; refusals {:?}: {}",
                        r.refusals,
                        ctx()
                    );
                }
                details => {
                    let pos = r.expects.iter().enumerate().position(|(k, x)| {
                        !found[k]
                            && match (x, details) {
                                (
                                    Expect::Applied {
                                        seq,
                                        kind,
                                        correlation_id,
                                        previous_generation,
                                        delta,
                                        params,
                                    },
                                    AuditDetails::Applied {
                                        kind: k2,
                                        correlation_id: c2,
                                        previous_generation: p2,
                                        delta: d2,
                                        params: q2,
                                    },
                                ) => {
                                    *seq == e.seq
                                        && kind == k2
                                        && correlation_id == c2
                                        && previous_generation == p2
                                        && e.generation == p2 + 1
                                        && bit_eq(delta, d2)
                                        && bit_eq(params, q2)
                                }
                                (
                                    Expect::RolledBack {
                                        seq,
                                        reason,
                                        previous_generation,
                                        params,
                                    },
                                    AuditDetails::RolledBack {
                                        reason: r2,
                                        previous_generation: p2,
                                        params: q2,
                                    },
                                ) => {
                                    *seq == e.seq
                                        && reason == r2
                                        && previous_generation == p2
                                        && e.generation == p2 + 1
                                        && bit_eq(params, q2)
                                }
                                (
                                    Expect::BaselineSet {
                                        baseline_generation,
                                        params,
                                    },
                                    AuditDetails::BaselineSet {
                                        baseline_generation: b2,
                                        params: q2,
                                    },
                                ) => baseline_generation == b2 && bit_eq(params, q2),
                                (
                                    Expect::Outcome {
                                        reported_generation,
                                        objective,
                                        verdict,
                                    },
                                    AuditDetails::Outcome {
                                        reported_generation: g2,
                                        objective: o2,
                                        verdict: v2,
                                    },
                                ) => {
                                    reported_generation == g2
                                        && objective.to_bits() == o2.to_bits()
                                        && verdict == v2
                                }
                                (
                                    Expect::Resumed { cleared },
                                    AuditDetails::Resumed { cleared: c2 },
                                ) => cleared == c2,
                                _ => false,
                            }
                    });
                    let Some(k) = pos else {
                        return Err(TestCaseError::fail(format!(
                            "unexpected {e:?}; expected {:?}: {}",
                            r.expects,
                            ctx()
                        )));
                    };
                    found[k] = true;
                    if let AuditDetails::Resumed { cleared } = details {
                        set = without(set, *cleared);
                    }
                }
            }
        }
        check!(
            found.iter().all(|&f| f),
            "missing events {:?}: {}",
            r.expects,
            ctx()
        );
        if !r.dropped {
            check!(
                rejected == r.refusals.len(),
                "{} refusals but {rejected} Rejected events (nothing dropped): {}",
                r.refusals.len(),
                ctx()
            );
            check!(
                set == r.latched_after,
                "audited safe-mode state {set:?} ≠ latch {:?}: {}",
                r.latched_after,
                ctx()
            );
        } else {
            check!(
                is_subset(set, r.latched_after),
                "audited safe-mode state {set:?} ⊄ latch {:?}: {}",
                r.latched_after,
                ctx()
            );
        }
        Ok(())
    }

    // -- per-step state ------------------------------------------------------

    fn check_state(&self) -> TestCaseResult {
        let snap = self.ex.snapshot();
        let load = self.config.load();
        check!(
            snap.generation == load.generation && bit_eq(&snap.params, &load.params),
            "snapshot {snap:?} ≠ config.load() {load:?}"
        );
        check!(
            load.generation == self.m.generation && bit_eq(&load.params, &self.m.live),
            "live {load:?} ≠ model gen {} {:?}",
            self.m.generation,
            self.m.live
        );
        for (i, &v) in load.params.iter().enumerate() {
            let (min, max) = self.bounds[i];
            check!(
                v.is_finite() && v >= min && v <= max,
                "params[{i}] = {v} outside [{min}, {max}]"
            );
        }
        check!(
            bit_eq(self.ex.centre(), &self.m.centre)
                && self.ex.centre_generation() == self.m.centre_generation,
            "centre {:?} @{} ≠ model {:?} @{}",
            self.ex.centre(),
            self.ex.centre_generation(),
            self.m.centre,
            self.m.centre_generation
        );
        let stats = self.ex.stats();
        check!(
            stats.applied == self.m.applied
                && stats.refused == self.m.refused
                && stats.rollbacks == self.m.rollback_count
                && stats.clock_regressions >= self.m.min_clock_regressions,
            "stats {stats:?}, model applied {} refused {} rollbacks {} clock regressions ≥ {}",
            self.m.applied,
            self.m.refused,
            self.m.rollback_count,
            self.m.min_clock_regressions
        );
        Ok(())
    }

    fn run_op(&mut self, op: &Op) -> TestCaseResult {
        match op {
            Op::Apply(spec) => self.op_apply(spec)?,
            Op::NoChange => self.op_no_change()?,
            Op::Advance(us) => {
                self.clock.advance(*us);
                let t = self.clock.now_us();
                self.note(|| format!("clock +{us} → {t}"));
            }
            Op::Backwards(us) => {
                let t = self.clock.now_us().saturating_sub(*us);
                self.clock.set(t);
                self.note(|| format!("clock −{us} → {t}"));
            }
            Op::Boundary { which, offset } => {
                let deadlines = self.deadlines();
                if !deadlines.is_empty() {
                    let t = deadlines[*which as usize % deadlines.len()]
                        .saturating_add_signed(*offset as i64);
                    if t > self.clock.now_us() {
                        self.clock.set(t);
                        self.note(|| format!("clock to deadline {t}"));
                    }
                }
            }
            Op::SetBaseline => self.op_set_baseline()?,
            Op::Rollback => self.op_rollback()?,
            Op::Report {
                generation,
                objective,
            } => self.op_report(*generation, *objective)?,
            Op::Freeze => self.op_freeze()?,
            Op::Resume => self.op_resume()?,
            Op::Drain(max) => {
                self.drain(*max)?;
                let seq = self.trail.len();
                self.note(|| format!("drained to seq {seq}"));
            }
            Op::BudgetRemaining(i) => self.op_budget(*i)?,
        }
        if self.eager {
            self.drain(None)?;
        }
        self.check_state()
    }

    /// Drains everything, flushes a pending drop notice, and checks the
    /// whole trail against the calls and the final state.
    fn finish(&mut self) -> TestCaseResult {
        self.drain(None)?;
        // The next recorded event reports earlier drops: make one.
        self.op_resume()?;
        self.drain(None)?;
        self.check_state()?;
        check!(
            self.ex.audit_queue().is_empty(),
            "queue not empty after draining"
        );
        let first = self
            .trail
            .first()
            .ok_or_else(|| TestCaseError::fail("no Started event".to_string()))?;
        let (mut params, mut generation) = match &first.details {
            AuditDetails::Started { params } => (params.to_vec(), first.generation),
            other => {
                return Err(TestCaseError::fail(format!(
                    "first event is not Started: {other:?}"
                )))
            }
        };
        let dropped_reported: u64 = self
            .trail
            .iter()
            .map(|e| match e.details {
                AuditDetails::EventsDropped { count } => count,
                _ => 0,
            })
            .sum();
        check!(
            dropped_reported == self.ex.stats().audit_dropped,
            "EventsDropped report {dropped_reported}, stats {}",
            self.ex.stats().audit_dropped
        );
        // Replay.
        for e in &self.trail[1..] {
            match &e.details {
                AuditDetails::Applied {
                    previous_generation,
                    params: p,
                    ..
                }
                | AuditDetails::RolledBack {
                    previous_generation,
                    params: p,
                    ..
                } => {
                    check!(
                        *previous_generation == generation && e.generation == generation + 1,
                        "replay: {e:?} at generation {generation}"
                    );
                    generation += 1;
                    params = p.to_vec();
                }
                _ => check!(
                    e.generation == generation,
                    "replay: {e:?} at generation {generation}"
                ),
            }
        }
        let live = self.config.load();
        check!(
            generation == live.generation && bit_eq(&params, &live.params),
            "replay gives gen {generation} {params:?}, live is {live:?}"
        );
        // Every call's events.
        let started_ok = self.records.first().is_none_or(|r| r.seq_start >= 1);
        check!(started_ok, "events before Started");
        for r in &self.records {
            self.check_events(r)?;
        }
        Ok(())
    }
}

fn run_case_inner(case: &Case, log: bool) -> (TestCaseResult, Option<Vec<String>>, Counters) {
    let mut h = match Harness::new(&case.setup, log) {
        Ok(h) => h,
        Err(e) => return (Err(e), None, Counters::default()),
    };
    let mut result = Ok(());
    for op in &case.decoded() {
        h.step += 1;
        h.counters.steps += 1;
        if let Err(e) = h.run_op(op) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = h.finish();
    }
    (result, h.log.take(), h.counters)
}

fn run_case(case: &Case, totals: &RefCell<Counters>) -> TestCaseResult {
    let (result, _, counters) = run_case_inner(case, false);
    {
        let mut t = totals.borrow_mut();
        t.cases += 1;
        t.steps += counters.steps;
        t.applies_ok += counters.applies_ok;
        t.rollbacks_ok += counters.rollbacks_ok;
        t.events += counters.events;
        t.dropped += counters.dropped;
        for (k, v) in counters.refusals {
            *t.refusals.entry(k).or_default() += v;
        }
    }
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            // Re-run with a step log for the report.
            let (_, log, _) = run_case_inner(case, true);
            let log = log.unwrap_or_default();
            // The setup line, then the last steps.
            let tail = log.len().saturating_sub(80).max(1);
            Err(TestCaseError::fail(format!(
                "{e}\n--- step log ({} steps) ---\n{}\n{}{}",
                log.len() - 1,
                log.first().map_or("", String::as_str),
                if tail > 1 { "…\n" } else { "" },
                log[tail.min(log.len())..].join("\n")
            )))
        }
    }
}

fn run_property(name: &str, profile: Profile, cases: u32, len: std::ops::RangeInclusive<usize>) {
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let totals = RefCell::new(Counters::default());
    let start = Instant::now();
    let result = runner.run(&case_strategy(profile, len), |case| {
        run_case(&case, &totals)
    });
    let t = totals.into_inner();
    println!(
        "{name}: {} cases, {} steps in {:.1?}; {} applies and {} rollbacks accepted, {} audit \
         events, {} dropped; refusals {:?}",
        t.cases,
        t.steps,
        start.elapsed(),
        t.applies_ok,
        t.rollbacks_ok,
        t.events,
        t.dropped,
        t.refusals
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Presets with random variations, every operation, realistic time steps.
#[test]
fn executor_invariants_hold_under_random_operations() {
    run_property("mixed", Profile::Mixed, 2_000, 300..=340);
}

/// Fast rates, sub-millisecond time steps, small audit queues.
#[test]
fn executor_invariants_hold_under_pressure() {
    run_property("pressure", Profile::Pressure, 1_500, 300..=340);
}

// ---------------------------------------------------------------------------
// Regression tests for the executor bugs these properties found (the step
// rule measured the delta instead of the applied change; a saturated clock
// switched the rate and flip limits off).
// ---------------------------------------------------------------------------

/// Rule 3 bounds `|delta| / range`, but what is applied is `live + delta`
/// rounded to an `f64`, which can move further than `max_delta_per_step`
/// of the range: here 0.125 for a limit of 0.1 (25 % over).
#[test]
fn step_limit_bounds_the_applied_change_not_just_the_delta() {
    // Bounds [1e15, 1e15 + 2]: range 2, and f64 values are 0.125 apart here.
    let lo = 1e15;
    let start = lo + 1.0;
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[start])));
    let mut ex = SafetyExecutor::builder(config.clone())
        // max_delta_per_step 0.05 of a range of 2: at most 0.1 per step.
        .guardrails(Guardrails::preset_conservative().with_bounds(vec![(lo, lo + 2.0)]))
        .clock(ManualClock::new(0))
        .build()
        .expect("valid settings");
    let receipt = ex.apply(Proposal::Update {
        iteration: 1,
        delta: ParamVec::from_slice(&[0.1]),
        gradient_estimate: ParamVec::zeros(1),
    });
    let moved = config.load().params[0] - start;
    assert!(
        receipt.is_err() || moved <= 0.1,
        "accepted {receipt:?} and moved by {moved}, step limit 0.1"
    );
}

/// At `t = u64::MAX` every window admits: `TimeRing::admits` computes
/// `oldest.saturating_add(window)`, which is `u64::MAX ≤ now`, and the
/// min-interval check `now < last.saturating_add(min_interval)` is false.
/// Because the executor clamps time to the latest reading, one glitched
/// reading of `u64::MAX` disables the min interval, the per-second rate and
/// the flip limit for good (and expires every timer: cooldowns,
/// stabilisation, the budget latch).
#[test]
fn rate_and_flip_limits_hold_when_the_clock_saturates() {
    let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    let clock = ManualClock::new(SECOND);
    // Balanced: min_interval 100 ms, ≤ 10 applies per second, ≤ 3 flips per
    // minute, budget 0.5 per minute.
    let mut ex = SafetyExecutor::builder(config)
        .clock(clock.clone())
        .build()
        .expect("valid settings");
    clock.set(u64::MAX); // one glitched reading…
    ex.apply(Proposal::NoChange {
        reason: NoChangeReason::CollectingSamples,
    })
    .expect("NoChange");
    clock.set(2 * SECOND); // …and the clock is back to normal.
    let (mut accepted, mut flips) = (0, 0);
    for i in 0..20 {
        let d = if i % 2 == 0 { 0.01 } else { -0.01 };
        let update = Proposal::Update {
            iteration: i,
            delta: ParamVec::from_slice(&[d]),
            gradient_estimate: ParamVec::zeros(1),
        };
        if ex.apply(update).is_ok() {
            accepted += 1;
            flips += usize::from(accepted > 1);
        }
    }
    assert!(
        accepted <= 1 && flips <= 3,
        "{accepted} updates ({flips} direction flips) accepted at one instant; \
         min_interval 100 ms, 10/s, 3 flips/min"
    );
}
