//! The control loop: [`observe`](AdaptiveEngine::observe) admits digests into
//! windows, [`apply`](AdaptiveEngine::apply) hands decisions to the executor,
//! and completed windows decide what comes next.

use super::{no_change, AdaptiveEngine, EngineError, Phase, Stage};
use crate::audit::{EngineEvent, RollbackReason};
use crate::clock::Clock;
use crate::executor::ApplyReceipt;
use crate::proposal::{NoChangeReason, Proposal, ProposalKind};
use crate::safe_mode::{SafeModeExit, SafeModeReason};
use crate::telemetry::{Aggregation, TelemetryDigest};
use crate::violation::Violation;
use crate::ParamVec;

/// What [`AdaptiveEngine::step`] did with one digest.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The engine's decision.
    pub proposal: Proposal,
    /// The executor's verdict, if the decision was a move.
    pub applied: Option<Result<ApplyReceipt, Violation>>,
}

impl<C: Clock> AdaptiveEngine<C> {
    /// Takes one digest and decides the next move. Never changes the live
    /// configuration: pass a returned move to [`apply`](Self::apply), or use
    /// [`step`](Self::step). A malformed digest is an error and changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`EngineError::Digest`] for a malformed digest (NaN or ∞ objective,
    /// zero samples, …) and [`EngineError::TimestampWentBackwards`] for one
    /// timed before the previous digest; neither changes anything.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, EngineError, ManualClock, ParamVec};
    /// use hotpath::{Proposal, SpsaConfig, TelemetryDigest};
    ///
    /// let clock = ManualClock::new(0);
    /// let config = AdaptiveEngineConfig {
    ///     spsa: SpsaConfig { eval_window_digests: 1, ..SpsaConfig::default() },
    ///     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
    /// };
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, clock.clone())?;
    /// let mut decided = None;
    /// while decided.is_none() {
    ///     clock.advance(200_000);
    ///     match engine.observe(TelemetryDigest::new(200_000, 1.0, 10))? {
    ///         Proposal::NoChange { .. } => {}
    ///         proposal => decided = Some(proposal),
    ///     }
    /// }
    /// assert_eq!(engine.config().generation(), 0, "deciding changed nothing");
    ///
    /// let nan = TelemetryDigest::new(200_000, f64::NAN, 10);
    /// assert!(matches!(engine.observe(nan), Err(EngineError::Digest(_))));
    /// # Ok::<(), EngineError>(())
    /// ```
    pub fn observe(&mut self, digest: TelemetryDigest) -> Result<Proposal, EngineError> {
        digest.validate()?;
        let now = self.executor.now_us();
        let at = digest.timestamp_us.unwrap_or(now);
        if let Some(previous) = self.last_digest_us {
            if at < previous {
                return Err(EngineError::TimestampWentBackwards { previous, got: at });
            }
        }
        self.last_digest_us = Some(at);
        self.stats.digests += 1;
        self.resync_if_moved(at);
        if self.executor.misconfiguration().is_some() {
            return Ok(no_change(NoChangeReason::SafeMode));
        }

        if let Some(margin) = digest.constraint_margin {
            if let Some(decision) = self.on_margin(margin, at) {
                return Ok(decision);
            }
        }

        if self.pending.is_some() {
            self.stats.discarded_pending += 1;
            return Ok(self.offer(at));
        }
        if at
            < self
                .window_opened_us
                .saturating_add(self.config.spsa.settle_time_us)
        {
            self.stats.discarded_settling += 1;
            return Ok(self.timeout_or(at, NoChangeReason::Settling));
        }
        if digest
            .generation
            .is_some_and(|g| g != self.executor.generation())
        {
            self.stats.discarded_stale += 1;
            return Ok(self.timeout_or(at, NoChangeReason::CollectingSamples));
        }

        self.stats.used += 1;
        let sample = (digest.objective_value, digest.sample_count);
        let full = match self.phase {
            Phase::Centre => {
                self.window.push(sample);
                self.window.len() >= self.config.spsa.eval_window_digests
            }
            Phase::Plus | Phase::Minus => {
                self.spsa.record_weighted(sample.0, sample.1);
                self.spsa.has_enough_samples()
            }
        };
        if !full {
            return Ok(self.timeout_or(at, NoChangeReason::CollectingSamples));
        }
        self.consecutive_timeouts = 0;
        self.complete_window(at);
        Ok(self.offer(at))
    }

    /// Sends a move to the executor and updates the engine with the result.
    /// The move the engine last offered advances its plan; a refused one is
    /// offered again later. Any other proposal is judged by the executor
    /// like any other, and if it changes the centre the engine abandons its
    /// iteration and restarts from the new centre.
    ///
    /// # Errors
    ///
    /// The executor's [`Violation`] if it refuses the proposal (the live
    /// configuration is then unchanged). The engine counts the refusal of
    /// its own move ([`EngineStats::refused`](super::EngineStats::refused))
    /// and offers it again when the executor would accept it.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    /// use hotpath::{Proposal, SpsaConfig, TelemetryDigest, Violation};
    ///
    /// let clock = ManualClock::new(0);
    /// let config = AdaptiveEngineConfig {
    ///     spsa: SpsaConfig { eval_window_digests: 1, ..SpsaConfig::default() },
    ///     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
    /// };
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, clock.clone())?;
    /// let mut tick = |engine: &mut AdaptiveEngine<ManualClock>| {
    ///     clock.advance(200_000);
    ///     engine.observe(TelemetryDigest::new(200_000, 1.0, 10))
    /// };
    /// let proposal = loop {
    ///     let p = tick(&mut engine)?;
    ///     if !matches!(p, Proposal::NoChange { .. }) {
    ///         break p;
    ///     }
    /// };
    /// engine.executor_mut().freeze();
    /// assert!(matches!(engine.apply(proposal.clone()), Err(Violation::InSafeMode { .. })));
    /// assert_eq!(engine.stats().refused, 1);
    ///
    /// engine.executor_mut().resume()?;
    /// let again = tick(&mut engine)?;
    /// assert_eq!(again, proposal, "the refused move is offered again");
    /// assert!(engine.apply(again).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&mut self, proposal: Proposal) -> Result<ApplyReceipt, Violation> {
        let offered = self.offered.take();
        let ours = offered.as_ref().is_some_and(|o| o.proposal == proposal);
        let centre_before = ParamVec::from_slice(self.executor.centre());
        let result = self.executor.apply(proposal);
        match &result {
            Ok(receipt) if ours => {
                if receipt.kind == ProposalKind::Update {
                    self.committed(&centre_before);
                }
                self.window_opened_us = receipt.timestamp_us;
                if offered.is_some_and(|o| o.completes_plan) {
                    if let Some(plan) = self.pending.take() {
                        self.enter(plan.then);
                    }
                }
                self.seen_centre_generation = self.executor.centre_generation();
            }
            Ok(receipt) => {
                let at = receipt.timestamp_us;
                self.resync_if_moved(at);
            }
            Err(_) => self.stats.refused += 1,
        }
        result
    }

    /// [`observe`](Self::observe), then [`apply`](Self::apply) if the engine
    /// decided to move. The control loop in one call; the executor's verdict
    /// on a move is in [`StepOutcome::applied`].
    ///
    /// # Errors
    ///
    /// As [`observe`](Self::observe): a malformed or backdated digest is an
    /// [`EngineError`] and changes nothing.
    ///
    /// ```
    /// use hotpath::{AdaptiveEngine, AdaptiveEngineConfig, ManualClock, ParamVec};
    /// use hotpath::{SpsaConfig, TelemetryDigest};
    ///
    /// let clock = ManualClock::new(0);
    /// let config = AdaptiveEngineConfig {
    ///     spsa: SpsaConfig { eval_window_digests: 1, ..SpsaConfig::default() },
    ///     ..AdaptiveEngineConfig::bounded(vec![(0.0, 1.0)])
    /// };
    /// let initial = ParamVec::from_slice(&[0.5]);
    /// let mut engine = AdaptiveEngine::with_clock(config, initial, clock.clone())?;
    /// let mut applied = 0;
    /// for _ in 0..30 {
    ///     clock.advance(200_000);
    ///     let live = engine.config().load().params[0];
    ///     let outcome = engine.step(TelemetryDigest::new(200_000, (live - 0.3).powi(2), 10))?;
    ///     applied += outcome.applied.is_some_and(|verdict| verdict.is_ok()) as u32;
    /// }
    /// assert!(applied > 0 && engine.config().generation() > 0);
    /// # Ok::<(), hotpath::EngineError>(())
    /// ```
    pub fn step(&mut self, digest: TelemetryDigest) -> Result<StepOutcome, EngineError> {
        let proposal = self.observe(digest)?;
        let applied = match proposal {
            Proposal::NoChange { .. } => None,
            _ => Some(self.apply(proposal.clone())),
        };
        Ok(StepOutcome { proposal, applied })
    }

    /// Restarts from the executor's centre if it moved behind the engine's
    /// back (automatic or manual rollback, a foreign proposal).
    pub(super) fn resync_if_moved(&mut self, at: u64) {
        let generation = self.executor.centre_generation();
        if generation == self.seen_centre_generation {
            return;
        }
        self.seen_centre_generation = generation;
        self.spsa.abort_iteration();
        self.window_opened_us = at;
        self.stage.restart();
        self.restart_at_centre();
    }

    /// Handles a constraint margin; `Some` when it decides the outcome.
    fn on_margin(&mut self, margin: f64, at: u64) -> Option<Proposal> {
        if margin < self.config.emergency_margin {
            if !self.in_emergency {
                self.in_emergency = true;
                self.note(EngineEvent::ConstraintViolated {
                    margin,
                    emergency: true,
                });
            }
            // Rolls back while away from the baseline; once there, the
            // executor's rollback is a no-op that records nothing.
            match self
                .executor
                .rollback_for(RollbackReason::ConstraintEmergency)
            {
                Ok(_) => self.resync_if_moved(at),
                Err(violation) => {
                    tracing::error!(%violation, margin, "emergency rollback refused");
                }
            }
            return Some(no_change(NoChangeReason::ConstraintViolated));
        }
        self.in_emergency = false;
        if margin < 0.0 {
            self.window_infeasible = true;
            if !self.infeasible {
                self.infeasible = true;
                self.note(EngineEvent::ConstraintViolated {
                    margin,
                    emergency: false,
                });
                self.spsa.abort_iteration();
                self.plan_toward_feasible();
                return Some(self.offer(at));
            }
        } else if self.infeasible {
            self.infeasible = false;
            self.note(EngineEvent::ConstraintCleared);
        }
        None
    }

    /// `NoChange { EvalTimeout }` if the open window has run out of time,
    /// otherwise `NoChange { reason }`.
    fn timeout_or(&mut self, at: u64, reason: NoChangeReason) -> Proposal {
        let deadline = self
            .window_opened_us
            .saturating_add(self.config.spsa.settle_time_us)
            .saturating_add(self.config.spsa.eval_window_us);
        if at <= deadline {
            return no_change(reason);
        }
        self.stats.eval_timeouts += 1;
        self.consecutive_timeouts += 1;
        let phase = self.phase;
        self.note(EngineEvent::EvalTimeout {
            phase: self.stage.eval_phase(phase),
            consecutive: self.consecutive_timeouts,
        });
        if self.consecutive_timeouts >= self.config.max_eval_timeouts {
            self.executor
                .latch_external(SafeModeReason::TelemetryStalled, SafeModeExit::Manual);
        }
        match phase {
            Phase::Plus | Phase::Minus => {
                self.spsa.abort_iteration();
                self.pending = Some(self.return_to_centre());
            }
            Phase::Centre => {
                self.window_opened_us = at;
                self.restart_window();
            }
        }
        no_change(NoChangeReason::EvalTimeout)
    }

    /// A window is full: aggregate it and plan what comes next.
    fn complete_window(&mut self, at: u64) {
        if let Stage::Noise { .. } = self.stage {
            self.noise_window_done(at);
            return;
        }
        match self.phase {
            Phase::Centre => {
                let Some(y) = self.aggregate_window() else {
                    return;
                };
                if !self.window_infeasible {
                    self.last_feasible.copy_from(self.executor.centre());
                }
                if self.report_centre(y, at) {
                    return;
                }
                if self.infeasible {
                    self.plan_toward_feasible();
                    return;
                }
                self.detect_drift(y);
                if self.step_rejected(y) {
                    return;
                }
                self.centre_objective = Some(y);
                self.probe_reference = None;
                if self.stage.is_tuning() {
                    if let Some(switch) = self.choose_options(y) {
                        self.pending = Some(switch);
                        return;
                    }
                }
                self.plan_probe();
            }
            Phase::Plus => {
                self.spsa.complete_eval_window();
                self.plan_minus();
            }
            Phase::Minus => {
                let y_plus = self.spsa.y_plus().unwrap_or(f64::NAN);
                let perturbation_id = self.current_perturbation_id();
                let Some((mut gradient, mut update)) = self.spsa.complete_eval_window() else {
                    return;
                };
                self.correct_gradient(&mut gradient, &mut update);
                let y_minus = self.spsa.y_minus().unwrap_or(y_plus);
                self.stats.gradients += 1;
                if self.stage.is_tuning() {
                    self.plan_update(update, gradient, y_plus, y_minus, perturbation_id);
                } else {
                    self.gain_pair_done(&gradient, y_plus, y_minus, perturbation_id);
                }
            }
        }
    }

    pub(super) fn current_perturbation_id(&self) -> u64 {
        match self.spsa.state() {
            crate::spsa::SpsaState::WaitingPlus {
                perturbation_id, ..
            }
            | crate::spsa::SpsaState::WaitingMinus {
                perturbation_id, ..
            } => *perturbation_id,
            crate::spsa::SpsaState::Ready => 0,
        }
    }

    pub(super) fn aggregate_window(&mut self) -> Option<f64> {
        let aggregation: Aggregation = self.config.spsa.aggregation;
        aggregation.aggregate(&mut self.window)
    }

    /// Reports the centre's objective to the executor; `true` if that rolled
    /// back (the engine has resynchronised).
    pub(super) fn report_centre(&mut self, y: f64, at: u64) -> bool {
        let generation = self.executor.centre_generation();
        if let Ok(receipt) = self.executor.report_outcome(generation, y) {
            if receipt.rollback.is_some() {
                self.resync_if_moved(at);
                return true;
            }
        }
        false
    }
}
