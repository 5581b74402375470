//! [`ExecutorBuilder`]: every setting of a [`SafetyExecutor`], validated
//! by [`build`](ExecutorBuilder::build).

use super::persist::ExecutorState;
use super::record::Priority;
use super::SafetyExecutor;
use crate::audit::{AuditDetails, AuditQueue, MAX_AUDIT_SEQ};
use crate::clock::{Clock, SystemClock};
use crate::config_atomic::AtomicConfig;
use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::rollback::RollbackPolicy;
use crate::space::ParamSpace;
use crate::sync::Arc;

/// Default [`AuditQueue`] capacity when the builder is given none.
pub const DEFAULT_AUDIT_CAPACITY: usize = 4096;

/// Builds a [`SafetyExecutor`] with validated settings.
///
/// ```
/// use hotpath::{AtomicConfig, Guardrails, ManualClock, ParamVec, RollbackPolicy, SafetyExecutor};
/// use std::sync::Arc;
///
/// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[100.0])));
/// let executor = SafetyExecutor::builder(config)
///     .guardrails(Guardrails::preset_conservative().with_bounds(vec![(10.0, 1000.0)]))
///     .rollback_policy(RollbackPolicy::preset_conservative())
///     .clock(ManualClock::new(0))
///     .audit_capacity(1024)
///     .build()
///     .expect("valid settings");
/// assert_eq!(executor.snapshot().params[0], 100.0);
/// ```
pub struct ExecutorBuilder<C = SystemClock> {
    config: Arc<AtomicConfig>,
    space: Option<Arc<ParamSpace>>,
    guardrails: Guardrails,
    rollback_policy: RollbackPolicy,
    audit_queue: Option<Arc<AuditQueue>>,
    audit_capacity: usize,
    clock: C,
    restore: Option<ExecutorState>,
    audit_sequence_start: Option<u64>,
}

impl ExecutorBuilder<SystemClock> {
    /// Defaults for every setting but the configuration.
    pub(super) fn new(config: Arc<AtomicConfig>) -> Self {
        Self {
            config,
            space: None,
            guardrails: Guardrails::default(),
            rollback_policy: RollbackPolicy::default(),
            audit_queue: None,
            audit_capacity: DEFAULT_AUDIT_CAPACITY,
            clock: SystemClock::new(),
            restore: None,
            audit_sequence_start: None,
        }
    }
}

impl<C: Clock> ExecutorBuilder<C> {
    /// Restores a persisted [`ExecutorState`] (see its docs). The
    /// configuration must hold exactly the state's live values, at the
    /// state's generation or a later one (build it with
    /// [`AtomicConfig::with_generation`]; later when an audit log shows
    /// generations the state file had not caught up with, so generations keep
    /// rising). The executor then records a `Restored` audit event instead of
    /// `Started`.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let mut first = SafetyExecutor::builder(config).clock(ManualClock::new(0)).build()?;
    /// first.freeze();
    /// let state = first.export_state();
    /// drop(first);
    /// let again = Arc::new(AtomicConfig::with_generation(state.live.params.clone(), state.live.generation));
    /// let restored = SafetyExecutor::builder(again).restore(state).build()?;
    /// assert!(restored.control_safety().is_latched()); // the latch survived
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore(mut self, state: ExecutorState) -> Self {
        self.restore = Some(state);
        self
    }

    /// The sequence number of the first audit event (default: the restored
    /// state's next number, or 0). A durable audit log that is reopened
    /// knows the number its chain expects next; pass it here so numbering
    /// stays gap-free across restarts. It wins over the restored state's,
    /// which may be ahead of the log (events queued but not yet written
    /// when the process died) or behind it (a state saved earlier).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).audit_sequence_start(41).build()?;
    /// assert_eq!(ex.audit_queue().try_dequeue().map(|e| e.seq), Some(41));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit_sequence_start(mut self, seq: u64) -> Self {
        self.audit_sequence_start = Some(seq);
        self
    }

    /// The parameters' names and bounds (default: the guardrails' `bounds`,
    /// or unbounded parameters named `p0`, `p1`, …). When both are given,
    /// the guardrails' bounds must be the space's.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Knob, ParamSpace, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let space = Arc::new(ParamSpace::new(vec![Knob::real("batch_size", 1.0, 512.0, 64.0)])?);
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[64.0])));
    /// let ex = SafetyExecutor::builder(config).space(space).build()?;
    /// assert_eq!(ex.space().name(0), "batch_size");
    /// assert_eq!(ex.guardrails().bounds, Some(vec![(1.0, 512.0)]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn space(mut self, space: Arc<ParamSpace>) -> Self {
        self.space = Some(space);
        self
    }

    /// The guardrails (default: Balanced).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).guardrails(Guardrails::preset_conservative()).build()?;
    /// assert_eq!(ex.guardrails().max_delta_per_step, 0.05);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.guardrails = guardrails;
        self
    }

    /// The rollback policy (default: Balanced).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, RollbackPolicy, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let policy = RollbackPolicy::preset_aggressive();
    /// let ex = SafetyExecutor::builder(config).rollback_policy(policy).build()?;
    /// assert_eq!(ex.rollback_policy().max_consecutive_regressions, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback_policy(mut self, policy: RollbackPolicy) -> Self {
        self.rollback_policy = policy;
        self
    }

    /// An existing audit queue to write to (shared with its consumer).
    ///
    /// ```
    /// use hotpath::{AuditQueue, AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let queue = Arc::new(AuditQueue::try_new(64)?);
    /// let ex = SafetyExecutor::builder(config).audit_queue(queue.clone()).build()?;
    /// assert_eq!(queue.len(), 1); // `Started`, written where the consumer reads
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit_queue(mut self, queue: Arc<AuditQueue>) -> Self {
        self.audit_queue = Some(queue);
        self
    }

    /// Capacity of a new audit queue (default
    /// [`DEFAULT_AUDIT_CAPACITY`]); ignored if a queue is given.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).audit_capacity(64).build()?;
    /// assert_eq!(ex.audit_queue().capacity(), 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit_capacity(mut self, capacity: usize) -> Self {
        self.audit_capacity = capacity;
        self
    }

    /// The clock (default: [`SystemClock`]).
    ///
    /// ```
    /// use hotpath::{ManualClock, AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).clock(ManualClock::new(7)).build()?;
    /// assert_eq!(ex.audit_queue().try_dequeue().map(|e| e.timestamp_us), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> ExecutorBuilder<C2> {
        ExecutorBuilder {
            config: self.config,
            space: self.space,
            guardrails: self.guardrails,
            rollback_policy: self.rollback_policy,
            audit_queue: self.audit_queue,
            audit_capacity: self.audit_capacity,
            clock,
            restore: self.restore,
            audit_sequence_start: self.audit_sequence_start,
        }
    }

    /// Validates the settings against the configuration, claims its writer
    /// and records a `Started` audit event.
    ///
    /// # Errors
    ///
    /// The first invalid setting as a [`ConfigError`]: a guardrail or policy
    /// field, bounds or a space that do not fit the configuration, an initial
    /// value outside its bounds, a state that cannot be restored onto it, a zero
    /// audit capacity, or `WriterTaken` if the configuration already has an
    /// executor.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ConfigError, Guardrails, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let out_of_bounds = SafetyExecutor::builder(config.clone())
    ///     .guardrails(Guardrails::default().with_bounds(vec![(0.0, 0.25)]))
    ///     .build();
    /// assert!(matches!(out_of_bounds, Err(ConfigError::InitialOutOfBounds { index: 0, .. })));
    /// let _ex = SafetyExecutor::builder(config.clone()).build()?;
    /// assert!(matches!(SafetyExecutor::builder(config).build(), Err(ConfigError::WriterTaken)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<SafetyExecutor<C>, ConfigError> {
        let n = self.config.len();
        if let Some(got) = self.audit_sequence_start.filter(|&s| s > MAX_AUDIT_SEQ) {
            return Err(ConfigError::BeyondCeiling {
                what: "audit_sequence_start",
                got,
            });
        }
        let mut guardrails = self.guardrails;
        guardrails.validate_for(n)?;
        self.rollback_policy.validate()?;
        let live = self.config.load();
        let space = match self.space {
            None => {
                live_values_fit(&live.params, |i| guardrails.bounds_of(i), None)?;
                Arc::new(ParamSpace::from_guardrails(&guardrails, &live.params)?)
            }
            Some(space) => {
                if space.len() != n {
                    return Err(ConfigError::SpaceLength {
                        expected: n,
                        got: space.len(),
                    });
                }
                if let Some(bounds) = &guardrails.bounds {
                    if let Some(index) =
                        (0..n).find(|&i| Some(bounds[i]) != space.knobs()[i].bounds())
                    {
                        return Err(ConfigError::BoundsMismatch { index });
                    }
                }
                live_values_fit(&live.params, |i| space.bounds(i), Some(&space))?;
                guardrails.bounds = space.guardrail_bounds();
                space
            }
        };
        if let Some(state) = &self.restore {
            state
                .check(&space)
                .map_err(|reason| ConfigError::InvalidState { reason })?;
            if !(state.live.generation <= live.generation && state.live.params.bit_eq(&live.params))
            {
                return Err(ConfigError::InvalidState {
                    reason: "the configuration does not hold the state's live values at its generation or later",
                });
            }
        }
        let audit_queue = match self.audit_queue {
            Some(q) => q,
            None => Arc::new(AuditQueue::try_new(self.audit_capacity)?),
        };
        let writer = self.config.claim_writer().ok_or(ConfigError::WriterTaken)?;
        let mut executor = SafetyExecutor::assemble(
            self.config,
            Some(writer),
            space,
            guardrails,
            self.rollback_policy,
            audit_queue,
            self.clock,
            live,
        );
        // The reading `assemble` took: the trail starts with `Started` even
        // when that reading was a clock fault (the next request latches it).
        let now = executor.latest_now;
        let params = executor.live.clone();
        let details = match self.restore {
            Some(state) => {
                executor.load_state(state);
                AuditDetails::Restored {
                    params,
                    safe_mode: executor.control_safety.reasons(),
                }
            }
            None => AuditDetails::Started { params },
        };
        if let Some(seq) = self.audit_sequence_start {
            executor.next_seq = seq;
        }
        // A full queue at start is recorded as dropped, like any other event.
        executor.record(now, details, Priority::Safety);
        Ok(executor)
    }
}

/// Every live value is finite and within `bounds`, and, given a space, on
/// its knob's grid.
fn live_values_fit(
    live: &[f64],
    bounds: impl Fn(usize) -> (f64, f64),
    space: Option<&ParamSpace>,
) -> Result<(), ConfigError> {
    for (index, &value) in live.iter().enumerate() {
        let (min, max) = bounds(index);
        if !(value.is_finite() && value >= min && value <= max) {
            return Err(ConfigError::InitialOutOfBounds {
                index,
                value,
                min,
                max,
            });
        }
        if space.is_some_and(|s| !s.admits(index, value)) {
            return Err(ConfigError::InitialOffGrid { index, value });
        }
    }
    Ok(())
}
