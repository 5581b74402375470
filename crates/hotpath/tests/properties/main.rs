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
//! Failures are persisted next to this file (`main.regressions`: proptest's
//! `WithSource("regressions")` swaps the extension of the file that
//! configures the runner, here `main.rs`) and replayed first on the next
//! run. Failing sequences shrink by deleting chunks of operations (see
//! [`case::OpsStrategy`]), and a failing case is re-run with a step log
//! (every call, its resolved delta and its result), which is included in
//! the failure message.
//!
//! Clocks within seconds of `u64::MAX` are generated on purpose: the
//! executor must keep limiting there. Two bugs these properties found have
//! regression tests at the end of this file.
//!
//! # Layout
//!
//! * [`setup`]: what each case's executor is built from, per [`setup::Profile`];
//! * [`ops`]: the operations, and how a `(selector, seed)` decodes into one;
//! * [`case`]: a case, and the strategy that generates and shrinks it;
//! * [`harness`]: the executor and the model side by side, the state checks
//!   after every step, running one case;
//! * [`model`]: the executor's state rebuilt from receipts, and its windows;
//! * [`rules`]: which documented rule must refuse an apply, in order;
//! * [`apply`] and [`calls`]: each executor call, checked and recorded;
//! * [`audit`]: the audit trail, per call and replayed at the end.

use hotpath::{
    AtomicConfig, Guardrails, ManualClock, NoChangeReason, ParamVec, Proposal, SafetyExecutor,
};
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use case::case_strategy;
use harness::{run_case, Counters};
use setup::Profile;

pub(crate) const SECOND: u64 = 1_000_000;
pub(crate) const MINUTE: u64 = 60 * SECOND;
pub(crate) const HOUR: u64 = 60 * MINUTE;

/// `prop_assert!` with a formatted message (and no `!` on float comparisons).
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {{
        let holds: bool = $cond;
        if !holds {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    }};
}

// Declared after `check!`, so that every module can use it.
mod apply;
mod audit;
mod calls;
mod case;
mod harness;
mod model;
mod ops;
mod rules;
mod setup;

fn run_property(name: &str, profile: Profile, cases: u32, len: std::ops::RangeInclusive<usize>) {
    let config = Config {
        cases,
        // `main.regressions`, beside this file.
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
        "{name}: {} cases, {} steps in {:.1?}; {} applies and {} rollbacks accepted ({} already \
         at the baseline), {} audit events, {} dropped; refusals {:?}",
        t.cases,
        t.steps,
        start.elapsed(),
        t.applies_ok,
        t.rollbacks_ok,
        t.rollbacks_noop,
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
