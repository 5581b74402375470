//! # hotpath: governed real-time tuning
//!
//! A running service's numeric knobs (batch size, concurrency limit,
//! timeouts, cache TTL, …) live in an [`AtomicConfig`] that the service's
//! hot path reads lock-free, in nanoseconds. They are changed only by a
//! [`SafetyExecutor`], the single writer, which judges every [`Proposal`]
//! against [`Guardrails`], rate limits, anti-thrashing rules, a movement
//! budget, a safe-mode latch and a [`RollbackPolicy`], and records every
//! decision in an [`AuditQueue`] before it takes effect.
//!
//! ```text
//!  telemetry ──► proposer (SPSA) ──Proposal──► SafetyExecutor ──publish──► AtomicConfig ──► readers
//!                                                 │  guardrails, safe mode,        (lock-free,
//!                                                 │  rollback policy               no shared writes)
//!                                                 └──AuditEvent──► AuditQueue ──► consumer thread
//! ```
//!
//! # Units
//!
//! Parameters are plain `f64`s in a [`ParamVec`], addressed by index. Every
//! *movement* limit is a **fraction of the parameter's range**: the width of
//! its bounds in [`Guardrails::bounds`], or 1 when there are no bounds. That
//! covers [`Proposal`] deltas as judged by `max_delta_per_step`,
//! `max_cumulative_delta_per_minute`, and the excursion of probes from the
//! centre. Proposal deltas themselves are in the parameter's own units.
//! Times are microseconds from an injected [`Clock`].
//!
//! # Invariants the executor enforces
//!
//! * Only the executor writes the live config: the writer handle is
//!   crate-private and claimed once per config (see [`AtomicConfig`]).
//! * Every live change moves each parameter by at most `max_delta_per_step`
//!   of its range and keeps it finite and within bounds (rollback, which
//!   restores a known-good baseline, is the one change exempt from the step
//!   size).
//! * A refused proposal changes neither the live config nor the accounting
//!   of accepted moves.
//! * Every decision is one audit event, queued before it takes effect, with
//!   a gap-free sequence number; nothing is dropped without being counted
//!   and reported.
//!
//! # Parameters
//!
//! A [`ParamSpace`] names each parameter and gives its bounds; the executor
//! and the engine share it (`SafetyExecutor::space`). Without one, the
//! executor derives it from [`Guardrails::bounds`] (parameters `p0`, `p1`, …).
//!
//! # Constructors and errors
//!
//! One rule throughout: `new` only where construction cannot fail;
//! `try_new` and `builder(…).build()` return a typed error. The two
//! exceptions are named for what they do: [`SafetyExecutor::new`] (also
//! [`SafetyExecutor::new_fail_closed`]) and [`AdaptiveEngine::new`], the
//! names the API reference gives, never fail but *fail closed*: on bad
//! settings they return an object latched in safe mode (`Misconfigured`)
//! that refuses every change and reports why through `misconfiguration()`.
//! Every fallible function documents its errors under `# Errors`, and
//! nothing here panics on input a caller, a file or the clock controls.
//!
//! # Where things are
//!
//! Every public type has one path, at the crate root; the modules are
//! private. `executor/` ([`SafetyExecutor`], split by concern: rules,
//! accounting, recording, outcomes, persistence), `engine/`
//! ([`AdaptiveEngine`]: stages, plans, calibration, step control,
//! hysteresis), `spsa` ([`Spsa`]), `space` ([`ParamSpace`]),
//! `config_atomic` ([`AtomicConfig`]), `audit` ([`AuditQueue`] and its slot
//! ring), `telemetry` ([`TelemetryDigest`]), `guardrails`, `rollback`,
//! `safe_mode`, `violation`, `proposal`, `clock`, `param`.
//!
//! # `unsafe`
//!
//! The crate denies `unsafe_code` everywhere but one module: the audit
//! queue's slot ring (`audit/ring.rs`), which writes and reads events in
//! place in preallocated slots. Moving 320-byte events by value through
//! `crossbeam`'s `ArrayQueue` cost 55 ns per round trip against 13 ns in
//! place (BENCHMARKS.md). Each block states its safety argument; the
//! protocol is model-checked with loom and stress-tested with threads.
//!
//! # Embedding in ten lines
//!
//! ```
//! use hotpath::{AtomicConfig, Guardrails, ParamVec, Proposal, SafetyExecutor};
//! use std::sync::Arc;
//!
//! let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[64.0, 8.0])));
//! let guardrails = Guardrails::default().with_bounds(vec![(1.0, 512.0), (1.0, 64.0)]);
//! let mut executor = SafetyExecutor::builder(config.clone()).guardrails(guardrails).build()?;
//! let audit = executor.audit_queue().clone(); // drain it from another thread
//! let mut reader = config.reader();           // one per hot-path thread
//! executor.set_baseline()?;
//! executor.apply(Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[16.0, 0.0]),
//!                                   gradient_estimate: ParamVec::new() })?;
//! assert_eq!(reader.get().params[0], 80.0);
//! while let Some(event) = audit.try_dequeue() { println!("{event:?}"); }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod clock;
mod config_atomic;
mod engine;
mod error;
mod executor;
mod guardrails;
mod limits;
mod param;
mod proposal;
mod rollback;
mod safe_mode;
mod short_float;
mod space;
mod spsa;
mod stats;
mod sync;
mod telemetry;
mod violation;

pub use audit::{
    AuditDetails, AuditEvent, AuditQueue, EngineEvent, EnqueueResult, EvalPhase, EventType,
    OutcomeVerdict, RequestKind, RollbackReason, UnknownEventType, MAX_AUDIT_CAPACITY,
    MAX_AUDIT_SEQ,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config_atomic::{AtomicConfig, ConfigReader, ConfigSnapshot, MAX_GENERATION};
pub use engine::{
    AdaptiveEngine, AdaptiveEngineConfig, BanditState, CalibrationConfig, EngineError, EngineStage,
    EngineState, EngineStats, StepOutcome, ENGINE_STATE_VERSION,
};
pub use error::ConfigError;
pub use executor::{
    ApplyReceipt, Baseline, ExecutorBuilder, ExecutorState, ExecutorStats, OutcomeReceipt,
    PersistedExit, PersistedLatch, RollbackReceipt, SafeExecutor, SafetyExecutor,
    DEFAULT_AUDIT_CAPACITY, EXECUTOR_STATE_VERSION, MAX_TIME_US, MIN_BASELINE_REPORTS,
};
pub use guardrails::{Guardrails, MAX_FLIP_LIMIT, MAX_UPDATES_PER_SECOND};
pub use param::{ParamVec, INLINE_PARAMS};
pub use proposal::{NoChangeReason, Proposal, ProposalKind};
pub use rollback::{RollbackPolicy, MAX_ROLLBACKS_PER_HOUR};
pub use safe_mode::{ControlSafety, ReasonSet, SafeModeExit, SafeModeReason};
pub use short_float::ShortFloat;
pub use space::{
    ChoiceKnob, IntKnob, Knob, KnobHandle, KnobKind, KnobLookupError, KnobProblem, NamedValues,
    ParamSpace, RealKnob, Scale, Value, ValueProblem, MAX_EXACT_INT, MAX_OPTIONS, MAX_PARAMS,
};
pub use spsa::{
    Spsa, SpsaCheckpoint, SpsaConfig, SpsaConfigError, SpsaState, MAX_EVAL_WINDOW_DIGESTS,
};
pub use telemetry::{Aggregation, AggregationError, DigestError, TelemetryDigest};
pub use violation::{Named, RateRule, Violation};
