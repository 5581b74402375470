//! Plans: the moves the engine has decided on, and how each is offered to the
//! executor one allowed hop at a time.

use super::{no_change, AdaptiveEngine, Phase, STEP_MARGIN};
use crate::audit::EngineEvent;
use crate::clock::Clock;
use crate::proposal::{NoChangeReason, Proposal, ProposalKind};
use crate::space::ParamSpace;
use crate::violation::Violation;
use crate::ParamVec;

/// A move the engine has decided on and not yet completed.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) kind: ProposalKind,
    pub(super) correlation_id: u64,
    pub(super) target: ParamVec,
    pub(super) gradient: ParamVec,
    pub(super) then: Phase,
}

impl Plan {
    /// A gradient step: `Update` to the new centre `target`, then a centre
    /// window.
    pub(super) fn update(iteration: u64, target: ParamVec, gradient: ParamVec) -> Self {
        Self {
            kind: ProposalKind::Update,
            correlation_id: iteration,
            target,
            gradient,
            then: Phase::Centre,
        }
    }

    /// A move of the centre that is not a gradient step (a revert, a move
    /// inside the bounds, a step toward feasibility): `Update` to `target`
    /// with a zero gradient, then a centre window.
    pub(super) fn move_centre(iteration: u64, target: ParamVec) -> Self {
        let gradient = ParamVec::zeros(target.len());
        Self::update(iteration, target, gradient)
    }

    /// Back to the centre from a probe: `ApplyMinus` (a probe move, so the
    /// centre is not committed again), then a centre window.
    fn return_to(iteration: u64, centre: ParamVec) -> Self {
        Self {
            kind: ProposalKind::ApplyMinus,
            correlation_id: iteration,
            gradient: ParamVec::zeros(centre.len()),
            target: centre,
            then: Phase::Centre,
        }
    }

    /// The first probe of a pair: `ApplyPlus` to `θ + cΔ`, then its window.
    pub(super) fn plus(perturbation_id: u64, target: ParamVec) -> Self {
        Self::probe(
            ProposalKind::ApplyPlus,
            Phase::Plus,
            perturbation_id,
            target,
        )
    }

    /// The second probe of a pair: `ApplyMinus` to `θ − cΔ`, then its window.
    pub(super) fn minus(perturbation_id: u64, target: ParamVec) -> Self {
        Self::probe(
            ProposalKind::ApplyMinus,
            Phase::Minus,
            perturbation_id,
            target,
        )
    }

    fn probe(kind: ProposalKind, then: Phase, perturbation_id: u64, target: ParamVec) -> Self {
        Self {
            kind,
            correlation_id: perturbation_id,
            gradient: ParamVec::zeros(target.len()),
            target,
            then,
        }
    }

    /// The proposal of one hop of this plan: `delta` from the live
    /// configuration, as `kind` (the plan's own kind, or a probe kind for a
    /// hop back through the centre).
    fn proposal(&self, kind: ProposalKind, delta: ParamVec) -> Proposal {
        match kind {
            ProposalKind::ApplyPlus => Proposal::ApplyPlus {
                perturbation_id: self.correlation_id,
                delta,
            },
            ProposalKind::ApplyMinus => Proposal::ApplyMinus {
                perturbation_id: self.correlation_id,
                delta,
            },
            _ => Proposal::Update {
                iteration: self.correlation_id,
                delta,
                gradient_estimate: self.gradient.clone(),
            },
        }
    }
}

/// The proposal last offered by `observe`, to recognise it in `apply`.
#[derive(Debug, Clone)]
pub(super) struct Offer {
    pub(super) proposal: Proposal,
    pub(super) completes_plan: bool,
}

impl<C: Clock> AdaptiveEngine<C> {
    /// Plans one allowed step back toward the last feasible centre (or back
    /// to the centre from a probe), then a centre window.
    pub(super) fn plan_toward_feasible(&mut self) {
        let centre = self.executor.centre();
        let target = self.step_toward(centre, &self.last_feasible);
        let iteration = self.spsa.iteration();
        self.pending = Some(if target.bit_eq(centre) {
            Plan::return_to(iteration, target)
        } else {
            Plan::move_centre(iteration, target)
        });
    }

    pub(super) fn return_to_centre(&self) -> Plan {
        Plan::return_to(
            self.spsa.iteration(),
            ParamVec::from_slice(self.executor.centre()),
        )
    }

    /// Plans `ApplyPlus` to `θ + cΔ` around the iterate `θ` (the committed
    /// centre moved by the carry), first moving the centre inside the
    /// bounds by the smallest probe if it is closer than that to one.
    pub(super) fn plan_probe(&mut self) {
        let floor = self.probe_floor();
        let centre = ParamVec::from_slice(self.executor.centre());
        let inside = self.project(&centre, floor);
        if !inside.bit_eq(&centre) {
            self.pending = Some(Plan::move_centre(self.spsa.iteration(), inside));
            return;
        }
        self.iterate = self.iterate_around(&centre, floor);
        let delta = self.spsa.generate_perturbation();
        let c = self
            .spsa
            .in_flight_scale()
            .unwrap_or_else(|| self.spsa.perturbation_scale(self.spsa.iteration()));
        self.probe = self.probe_sizes(&centre);
        let iterate = self.iterate.clone();
        let target = self.probe_point(&iterate, &delta, 1.0);
        self.measure_perturbation(&iterate, &delta, c);
        self.pending = Some(Plan::plus(self.current_perturbation_id(), target));
    }

    /// The iterate: `centre` moved by the carry in each knob's coordinate,
    /// kept `margin` inside the bounds (the carry is trimmed to match). A
    /// choice stays where the centre has it.
    fn iterate_around(&mut self, centre: &[f64], margin: f64) -> ParamVec {
        let space = std::sync::Arc::clone(self.executor.space());
        // A carry the hysteresis held back stays within reach: the probes
        // around the iterate must keep within the excursion limit.
        let reach = 0.5 * STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        self.carry
            .iter_mut()
            .for_each(|m| *m = m.clamp(-reach, reach));
        let moved: ParamVec = centre
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if self.carry[i] == 0.0 || space.choice_indices().contains(&i) {
                    v
                } else {
                    space.offset(i, v, self.carry[i])
                }
            })
            .collect();
        let iterate: ParamVec = moved
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if space.choice_indices().contains(&i) {
                    return v;
                }
                // Continuous, also for an integer: the probes round it.
                space.inset_continuous(i, v, probe_reach(&space, i, margin))
            })
            .collect();
        for (i, (&t, &v)) in iterate.iter().zip(centre).enumerate() {
            if t.to_bits() != moved[i].to_bits() {
                self.carry[i] = space.fraction(i, v, t); // the projection trimmed it
            }
        }
        iterate
    }

    /// Plans `ApplyMinus` to `θ − cΔ`.
    pub(super) fn plan_minus(&mut self) {
        let crate::spsa::SpsaState::WaitingMinus {
            delta,
            perturbation_id,
            ..
        } = self.spsa.state()
        else {
            return;
        };
        let target = self.probe_point(&self.iterate, delta, -1.0);
        self.pending = Some(Plan::minus(*perturbation_id, target));
    }

    /// The probe point `θ + cΔ` (`sign` −1 for `θ − cΔ`), `c` the pair's
    /// probe size per knob, each knob in its coordinate and inside its
    /// bounds. An integer probe moves at least one grid step (a
    /// perturbation that rounds to no change would measure nothing); a
    /// choice is not perturbed (the bandit switches it). The centre is
    /// kept far enough inside the bounds (see [`project`](Self::project))
    /// that the clamp only removes rounding.
    pub(super) fn probe_point(&self, centre: &[f64], delta: &[f64], sign: f64) -> ParamVec {
        let space = self.executor.space();
        let point = |i: usize, t: f64, d: f64| {
            let c = sign * self.probe.get(i).copied().unwrap_or(0.0);
            let (lo, hi) = space.bounds(i);
            let raw = space.offset(i, t, c * d).clamp(lo, hi);
            match (space.choice_indices().contains(&i), space.grid_step(i)) {
                (true, _) => t,
                (false, None) => raw,
                (false, Some(step)) => {
                    let snapped = space.snap(i, raw);
                    let away = (snapped - t) * (c * d).signum();
                    if away >= step {
                        snapped
                    } else {
                        space.snap(i, t + step * (c * d).signum())
                    }
                }
            }
        };
        let probe = centre.iter().zip(delta.iter()).enumerate();
        probe.map(|(i, (&t, &d))| point(i, t, d)).collect()
    }

    /// Clamps `point` into `[min + m·range, max − m·range]` per bounded
    /// knob, in its coordinate and on its grid (the middle if that interval
    /// is empty), where `m` is `c`, or one grid step for an integer whose
    /// step is more: where a centre must sit for both probes to stay in
    /// bounds. A choice is left where it is.
    pub(super) fn project(&self, point: &[f64], c: f64) -> ParamVec {
        let space = self.executor.space();
        point
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if space.choice_indices().contains(&i) {
                    return v;
                }
                space.inset(i, v, probe_reach(space, i, c))
            })
            .collect()
    }

    /// Turns the pending plan into the next proposal, if the executor would
    /// accept it now; adjusts an `Update` the flip or budget rules would
    /// refuse; otherwise waits.
    pub(super) fn offer(&mut self, at: u64) -> Proposal {
        // Each pass offers, waits, or narrows the update by one parameter,
        // so one pass per parameter and one more suffice.
        for _ in 0..=self.executor.space().len() {
            let Some(plan) = self.pending.as_ref() else {
                return no_change(NoChangeReason::CollectingSamples);
            };
            let live = self.executor.snapshot().params;
            let (hop, hop_kind, completes_plan) = self.next_hop(plan, &live);
            let delta: ParamVec = hop.iter().zip(live.iter()).map(|(h, l)| h - l).collect();
            if completes_plan && delta.iter().all(|d| *d == 0.0) {
                // Already there: nothing to apply.
                let then = plan.then;
                self.pending = None;
                self.window_opened_us = at;
                self.enter(then);
                return no_change(NoChangeReason::CollectingSamples);
            }
            let proposal = plan.proposal(hop_kind, delta);
            match self.executor.would_accept(&proposal) {
                Ok(()) => {
                    self.offered = Some(Offer {
                        proposal: proposal.clone(),
                        completes_plan,
                    });
                    return proposal;
                }
                Err(violation) => {
                    if let Some(wait) = self.refused_offer(violation, &live) {
                        return wait;
                    }
                }
            }
        }
        no_change(NoChangeReason::WaitingForExecutor)
    }

    /// The next hop of `plan` from `live`: its target, kind, and whether it
    /// completes the plan. Straight to the target; else back through the
    /// centre; else (at the centre already) one full step toward the target.
    fn next_hop(&self, plan: &Plan, live: &ParamVec) -> (ParamVec, ProposalKind, bool) {
        let centre = self.executor.centre();
        let space = self.executor.space();
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        // Targets planned at exactly `limit` may round a hair past it;
        // the executor's own limit is 0.1 % further out.
        let reach = limit * (1.0 + 1e-9);
        let within = |from: &[f64], to: &[f64]| {
            let mut moves = to.iter().zip(from).enumerate();
            moves.all(|(i, (&t, &f))| space.within_step(i, f, t, reach))
        };
        if within(live, &plan.target) {
            (plan.target.clone(), plan.kind, true)
        } else if !live.bit_eq(centre) && within(live, centre) {
            let kind = if plan.kind == ProposalKind::ApplyMinus {
                ProposalKind::ApplyMinus
            } else {
                ProposalKind::ApplyPlus
            };
            (ParamVec::from_slice(centre), kind, false)
        } else {
            (self.step_toward(live, &plan.target), plan.kind, false)
        }
    }

    /// One allowed step from `from` toward `to`: each knob moves by at most
    /// the step limit (less the rounding margin) of its range, an integer
    /// at least one grid step.
    fn step_toward(&self, from: &[f64], to: &[f64]) -> ParamVec {
        let space = self.executor.space();
        let limit = STEP_MARGIN * self.executor.guardrails().max_delta_per_step;
        let moves = from.iter().zip(to).enumerate();
        moves
            .map(|(i, (&f, &t))| space.toward_at_least_one_step(i, f, t, limit))
            .collect()
    }

    /// What to do about an offer the executor would refuse: `Some` to wait
    /// (timing, safe mode) or give up the plan, `None` after narrowing the
    /// pending update to what the flip or budget rule allows (offer again).
    fn refused_offer(&mut self, violation: Violation, live: &ParamVec) -> Option<Proposal> {
        match violation {
            Violation::InSafeMode { .. } => Some(no_change(NoChangeReason::SafeMode)),
            Violation::RateLimitExceeded { .. }
            | Violation::StabilizationPending { .. }
            | Violation::AuditQueueFull { .. } => {
                Some(no_change(NoChangeReason::WaitingForExecutor))
            }
            Violation::DirectionFlipViolation { index, .. } => {
                self.hold_parameter(index, 0.0);
                None
            }
            Violation::CumulativeDeltaViolation { index, .. } => {
                let left = STEP_MARGIN * self.executor.budget_remaining(index);
                self.hold_parameter(index, left);
                None
            }
            violation => {
                tracing::warn!(%violation, "engine plan refused; returning to the centre");
                self.note(EngineEvent::PlanAbandoned { violation });
                self.spsa.abort_iteration();
                self.pending = Some(self.return_to_centre());
                if live.bit_eq(self.executor.centre()) {
                    self.pending = None;
                    self.enter(Phase::Centre);
                }
                Some(no_change(NoChangeReason::WaitingForExecutor))
            }
        }
    }

    /// Limits the pending update's move of parameter `index` to `allowed`
    /// (fraction of its range) from the centre.
    fn hold_parameter(&mut self, index: usize, allowed: f64) {
        let centre = self.executor.centre().get(index).copied();
        let space = std::sync::Arc::clone(self.executor.space());
        if let (Some(plan), Some(c)) = (self.pending.as_mut(), centre) {
            if let Some(t) = plan.target.get_mut(index) {
                *t = space.toward(index, c, *t, allowed);
            }
        }
    }
}

/// How far a probe of scale `c` reaches knob `i`, in fractions of its
/// range: `c`, or one grid step for an integer whose step is more.
fn probe_reach(space: &ParamSpace, i: usize, c: f64) -> f64 {
    let one_step = space.grid_step(i).map_or(0.0, |s| s / space.range(i));
    c.max(one_step)
}
