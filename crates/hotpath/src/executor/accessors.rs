//! Read-only views of the executor: what it governs and how.

use super::{Baseline, ExecutorStats, SafetyExecutor};
use crate::audit::AuditQueue;
use crate::clock::Clock;
use crate::config_atomic::{AtomicConfig, ConfigSnapshot};
use crate::error::ConfigError;
use crate::guardrails::Guardrails;
use crate::rollback::RollbackPolicy;
use crate::safe_mode::ControlSafety;
use crate::space::ParamSpace;
use crate::sync::Arc;

impl<C: Clock> SafetyExecutor<C> {
    /// The live generation.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// assert_eq!(ex.generation(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.live_generation
    }

    /// The current time on the executor's clock (clamped, never backwards).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// clock.advance(5);
    /// assert_eq!(ex.now_us(), 1_000_005);
    /// clock.set(0); // backwards: the executor keeps the latest time it saw
    /// assert_eq!(ex.now_us(), 1_000_005);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn now_us(&mut self) -> u64 {
        self.now()
    }

    /// The live configuration, from the executor's own copy (it is the only
    /// writer, so the copy is exact). No allocation up to 16 parameters.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// let snap = ex.snapshot();
    /// assert_eq!((snap.generation, snap.params[0]), (1, 0.55));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> ConfigSnapshot {
        ConfigSnapshot {
            generation: self.live_generation,
            params: self.live.clone(),
        }
    }

    /// The committed configuration (equal to the live one except during a
    /// probe).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(Proposal::ApplyPlus { perturbation_id: 1, delta: ParamVec::from_slice(&[0.05]) })?;
    /// assert_eq!((ex.snapshot().params[0], ex.centre()[0]), (0.55, 0.5)); // a probe
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn centre(&self) -> &[f64] {
        &self.centre
    }

    /// The generation at which the centre was committed.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// assert_eq!(ex.centre_generation(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn centre_generation(&self) -> u64 {
        self.centre_generation
    }

    /// The baseline and its outcome statistics, if set.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// assert!(ex.baseline().is_none());
    /// ex.set_baseline()?;
    /// assert_eq!(ex.baseline().map(|b| b.snapshot.params[0]), Some(0.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// The parameters' names, bounds and ranges.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, Guardrails, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[64.0])));
    /// let g = Guardrails::default().with_bounds(vec![(1.0, 512.0)]);
    /// let ex = SafetyExecutor::builder(config).guardrails(g).build()?;
    /// assert_eq!((ex.space().name(0), ex.space().range(0)), ("p0", 511.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn space(&self) -> &Arc<ParamSpace> {
        &self.space
    }

    /// The guardrails in force (their `bounds` are the space's when every
    /// parameter is bounded).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).build()?;
    /// assert_eq!(ex.guardrails().max_delta_per_step, 0.1); // Balanced
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    /// The rollback policy in force.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).build()?;
    /// assert_eq!(ex.rollback_policy().max_consecutive_regressions, 3); // Balanced
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback_policy(&self) -> &RollbackPolicy {
        &self.rollback_policy
    }

    /// The safe-mode latch.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.freeze();
    /// assert!(ex.control_safety().is_latched());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn control_safety(&self) -> &ControlSafety {
        &self.control_safety
    }

    /// Why [`new`](SafetyExecutor::new) failed closed, if it did.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ConfigError, Guardrails, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::new(config, Guardrails { min_interval_us: 0, max_updates_per_second: 0.0,
    ///                                                   ..Guardrails::default() });
    /// assert!(matches!(ex.misconfiguration(), Some(ConfigError::InvalidField { .. })));
    /// ```
    pub fn misconfiguration(&self) -> Option<ConfigError> {
        self.misconfiguration
    }

    /// The audit queue, to hand to its consumer.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ParamVec, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let ex = SafetyExecutor::builder(config).build()?;
    /// let started = ex.audit_queue().try_dequeue().unwrap();
    /// assert_eq!(started.seq, 0); // every executor's trail begins with `Started`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn audit_queue(&self) -> &Arc<AuditQueue> {
        &self.audit_queue
    }

    /// The configuration this executor governs (read-only to everyone else).
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// assert_eq!(ex.config().load().params[0], 0.55);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> &Arc<AtomicConfig> {
        &self.config
    }

    /// Monitoring counters.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// ex.apply(update(0.05))?;
    /// assert!(ex.apply(update(0.05)).is_err()); // too soon
    /// assert_eq!((ex.stats().applied, ex.stats().refused), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> ExecutorStats {
        self.stats
    }

    /// The clock the executor reads.
    ///
    /// ```
    /// use hotpath::{AtomicConfig, ManualClock, Clock, ParamVec, Proposal, SafetyExecutor};
    /// use std::sync::Arc;
    ///
    /// let config = Arc::new(AtomicConfig::new(ParamVec::from_slice(&[0.5])));
    /// let clock = ManualClock::new(1_000_000);
    /// let mut ex = SafetyExecutor::builder(config.clone()).clock(clock.clone()).build()?;
    /// let update = |d: f64| Proposal::Update { iteration: 1, delta: ParamVec::from_slice(&[d]),
    ///                                          gradient_estimate: ParamVec::new() };
    /// assert_eq!(ex.clock().now_us(), 1_000_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }
}
