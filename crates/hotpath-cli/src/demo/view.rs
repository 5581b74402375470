//! The demo's live view: a block redrawn in place on a terminal, plain
//! periodic lines otherwise (so CI logs stay readable).
//!
//! Decision lines keep the two kinds of move apart. SPSA's probes
//! (`ApplyPlus`, then `ApplyMinus`) visit points on either side of the
//! committed centre and are undone: one line per pair, `probe ± #7:
//! batch_size 50 | 46, …`, the values at the `+` and the `−` point of the
//! knobs they moved. A committed move (`Update`) is the centre moving, said
//! from the previous centre: `centre #7: batch_size 48 -> 52`, or `holds`
//! when the iteration's step was too small to commit and the live config
//! only came back from the probes to the centre. (Deltas are
//! relative to the live config, which during a pair is a probe point, so
//! `after − delta` would show the probe point, not where the centre was.)

use crate::cli::print as emit;
use crate::named::{self, Digits};
use crate::report::{self, Tally};
use crate::CliError;
use hotpath::{
    AuditDetails, AuditEvent, EngineEvent, Knob, KnobKind, OutcomeVerdict, ParamSpace,
    ProposalKind, RequestKind, Scale,
};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

/// Decisions kept on screen.
const RECENT: usize = 6;
/// Redraw period on a terminal.
const FRAME: Duration = Duration::from_millis(250);
/// Status line period without a terminal.
const LINE: Duration = Duration::from_secs(2);

/// What the view shows, at one moment.
pub struct Status<'a> {
    /// Time since the start.
    pub elapsed: Duration,
    /// Planned run time.
    pub total: Duration,
    /// What the run is doing (`steady load`, `peak load`, `comparing`).
    pub phase: &'a str,
    /// Offered load, records per second.
    pub rate: u64,
    /// The parameters.
    pub params: &'a ParamSpace,
    /// Their live values.
    pub live: Vec<f64>,
    /// The committed centre (the live values but during a probe).
    pub centre: Vec<f64>,
    /// Last measured objective (ms per record) and its record count.
    pub objective: Option<(f64, u64)>,
    /// Live config generation.
    pub generation: u64,
    /// SPSA iteration.
    pub iteration: u64,
    /// Measured noise, once calibrated.
    pub noise: Option<f64>,
    /// Safe-mode reasons latched, or empty.
    pub safe_mode: String,
    /// Decisions so far.
    pub tally: &'a Tally,
}

/// The live view.
pub struct View {
    live: bool,
    drawn: usize,
    last: Option<Duration>,
    recent: VecDeque<String>,
    preset: &'static str,
    /// The committed centre as the events have moved it.
    centre: Vec<f64>,
    /// The `+` probe point of the pair under way, with its id.
    plus: Option<(u64, Vec<f64>)>,
}

impl View {
    /// Redraws in place if standard output is a terminal (and not
    /// `plain`); the run starts at `centre`.
    pub fn new(plain: bool, preset: &'static str, centre: &[f64]) -> Self {
        Self {
            live: !plain && std::io::stdout().is_terminal(),
            drawn: 0,
            last: None,
            recent: VecDeque::with_capacity(RECENT + 1),
            preset,
            centre: centre.to_vec(),
            plus: None,
        }
    }

    /// Reports something that happened at `at` (seconds since the start).
    pub fn note(&mut self, at: f64, message: &str) -> Result<(), CliError> {
        let line = format!("[{at:5.1}s] {message}");
        if self.live {
            self.recent.push_back(line);
            if self.recent.len() > RECENT {
                self.recent.pop_front();
            }
            Ok(())
        } else {
            emit(&format!("{line}\n"))
        }
    }

    /// Reports an audit event, if it is worth a line.
    pub fn event(&mut self, event: &AuditEvent, params: &ParamSpace) -> Result<(), CliError> {
        let Some(message) = self
            .moved(event, params)
            .or_else(|| describe(event, params))
        else {
            return Ok(());
        };
        self.note(event.timestamp_us as f64 / 1e6, &message)
    }

    /// The line of a move (a probe pair, a centre moving, a rollback or
    /// restore putting it elsewhere), following the centre; `None` for
    /// the other events.
    fn moved(&mut self, event: &AuditEvent, space: &ParamSpace) -> Option<String> {
        match &event.details {
            AuditDetails::Applied {
                kind,
                correlation_id: id,
                params: after,
                ..
            } => match kind {
                ProposalKind::ApplyPlus => {
                    self.plus = Some((*id, after.to_vec()));
                    None
                }
                ProposalKind::ApplyMinus => {
                    let plus = self.plus.take().filter(|(p, _)| p == id);
                    let plus = plus.map_or_else(|| self.centre.clone(), |(_, v)| v);
                    Some(format!(
                        "probe ± #{id}: {}",
                        self.probes(space, &plus, after)
                    ))
                }
                ProposalKind::Update if after.bit_eq(&self.centre) => Some(format!(
                    "centre #{id}: holds (no knob moved enough to commit)"
                )),
                ProposalKind::Update => {
                    let moved = named::changes(space, &self.centre, after, Digits::Two);
                    self.centre = after.to_vec();
                    Some(format!("centre #{id}: {moved}"))
                }
                _ => None,
            },
            AuditDetails::RolledBack { params: to, .. }
            | AuditDetails::Restored { params: to, .. } => {
                self.centre = to.to_vec();
                self.plus = None;
                None
            }
            _ => None,
        }
    }

    /// `name plus | minus` for each knob a probe pair moved off the centre.
    fn probes(&self, space: &ParamSpace, plus: &[f64], minus: &[f64]) -> String {
        let shown = |i: usize, v: f64| named::value(space.value(i, v), Digits::Two);
        let moved: Vec<String> = (0..space.len())
            .filter_map(|i| {
                let (c, p, m) = (self.centre.get(i)?, plus.get(i)?, minus.get(i)?);
                (p != c || m != c)
                    .then(|| format!("{} {} | {}", space.name(i), shown(i, *p), shown(i, *m)))
            })
            .collect();
        if moved.is_empty() {
            "at the centre".into()
        } else {
            moved.join(", ")
        }
    }

    /// Shows the status: redraws on a terminal (at most every 250 ms),
    /// prints a line every 2 s otherwise. `force` draws now.
    pub fn frame(&mut self, status: &Status, force: bool) -> Result<(), CliError> {
        let period = if self.live { FRAME } else { LINE };
        if !force && self.last.is_some_and(|t| status.elapsed < t + period) {
            return Ok(());
        }
        self.last = Some(status.elapsed);
        if self.live {
            self.redraw(status)
        } else {
            emit(&format!("{}\n", plain_line(status)))
        }
    }

    fn redraw(&mut self, s: &Status) -> Result<(), CliError> {
        let mut text = String::new();
        if self.drawn > 0 {
            // Back to the top of the previous frame, and clear it.
            let _ = write!(text, "\x1b[{}F\x1b[J", self.drawn);
        }
        let _ = writeln!(
            text,
            "hotpath demo  {:5.1} s of {} s   {} {} records/s   {} preset",
            s.elapsed.as_secs_f64(),
            s.total.as_secs(),
            s.phase,
            s.rate,
            self.preset
        );
        for (i, (v, c)) in s.live.iter().zip(&s.centre).enumerate() {
            let shown = |v: f64| named::value(s.params.value(i, v), Digits::Two);
            let name = s.params.name(i);
            let range = s.params.knobs().get(i).map(range).unwrap_or_default();
            let _ = writeln!(
                text,
                "  {name:<16}{:>9}   centre {:>7}   {range}",
                shown(*v),
                shown(*c)
            );
        }
        match s.objective {
            Some((y, n)) => {
                let _ = writeln!(
                    text,
                    "  {:<16}{y:>9.2} ms per record (last 100 ms, {n} records)",
                    "latency"
                );
            }
            None => text.push_str("  latency                  … measuring\n"),
        }
        let noise = s
            .noise
            .map_or("calibrating".to_string(), |n| format!("noise {n:.3} ms"));
        let safe = if s.safe_mode.is_empty() {
            "off".to_string()
        } else {
            s.safe_mode.clone()
        };
        let _ = writeln!(
            text,
            "  engine           generation {}, iteration {}, {noise}; safe mode {safe}",
            s.generation, s.iteration
        );
        let _ = writeln!(
            text,
            "  executor         applied {}, refused {}, rollbacks {}",
            s.tally.applied,
            report::Breakdown(&s.tally.refused),
            report::Breakdown(&s.tally.rollbacks)
        );
        text.push_str("  last decisions\n");
        for line in &self.recent {
            let _ = writeln!(text, "    {line}");
        }
        self.drawn = text.matches('\n').count();
        emit(&text)
    }
}

fn plain_line(s: &Status) -> String {
    let mut line = format!(
        "[{:5.1}s] {} {}/s ",
        s.elapsed.as_secs_f64(),
        s.phase,
        s.rate
    );
    let _ = write!(line, " {}", named::values(s.params, &s.live, Digits::Two));
    match s.objective {
        Some((y, _)) => {
            let _ = write!(line, "  latency {y:.2} ms");
        }
        None => line.push_str("  latency -"),
    }
    let _ = write!(
        line,
        "  gen {}  iteration {}  applied {}  refused {}  rollbacks {}  safe mode {}",
        s.generation,
        s.iteration,
        s.tally.applied,
        s.tally.refusals(),
        s.tally.rollback_count(),
        if s.safe_mode.is_empty() {
            "off"
        } else {
            &s.safe_mode
        }
    );
    line
}

/// A knob's values for the status block: `[1, 64]`, `[0.1, 6] log`,
/// `json | csv | varint`.
fn range(knob: &Knob) -> String {
    let log = |s: &Scale| if *s == Scale::Log { " log" } else { "" };
    match knob.kind() {
        KnobKind::Real { min, max, scale } => format!("[{min}, {max}]{}", log(scale)),
        KnobKind::Int {
            min, max, scale, ..
        } => format!("[{min}, {max}]{}", log(scale)),
        KnobKind::Choice { options } => options.join(" | "),
    }
}

/// A line for the other events worth showing: refusals, rollbacks, safe
/// mode, regressions and the engine's own decisions.
fn describe(event: &AuditEvent, params: &ParamSpace) -> Option<String> {
    Some(match &event.details {
        AuditDetails::Rejected {
            request, violation, ..
        } => {
            let what = match request {
                RequestKind::Proposal(kind) => report::kind_name(*kind),
                RequestKind::Rollback => "rollback",
                RequestKind::SetBaseline => "baseline",
                RequestKind::Outcome => "outcome report",
            };
            format!("REFUSED {what}: {}", violation.named(params))
        }
        AuditDetails::RolledBack {
            reason,
            params: restored,
            ..
        } => format!(
            "ROLLED BACK ({}) to {}",
            report::rollback_name(*reason),
            named::values(params, restored, Digits::Two)
        ),
        AuditDetails::SafeModeEntered { reason, .. } => format!("SAFE MODE entered: {reason}"),
        AuditDetails::SafeModeExited { reason } => format!("safe mode exited: {reason}"),
        AuditDetails::Outcome {
            objective,
            verdict: OutcomeVerdict::Regressed { consecutive },
            ..
        } => format!(
            "centre regressed against the baseline: {objective:.2} ms ({consecutive} in a row)"
        ),
        AuditDetails::Engine { event } => match event {
            EngineEvent::Calibrated {
                noise_sd,
                perturbation_scale,
                learning_rate,
                ..
            } => format!(
                "calibrated: noise {noise_sd:.3} ms, probes {:.1} % of the range, gain {learning_rate:.3}",
                perturbation_scale * 100.0
            ),
            EngineEvent::StepRejected {
                iteration,
                objective,
                previous,
                ..
            } => format!(
                "step #{iteration} rejected: {objective:.2} ms after it, {previous:.2} ms before; moving back"
            ),
            EngineEvent::DriftDetected {
                objective,
                previous,
                ..
            } => format!(
                "the workload changed: {objective:.2} ms where it was {previous:.2} ms; gains restarted"
            ),
            EngineEvent::EvalTimeout { phase, .. } => {
                format!("{phase:?} window timed out")
            }
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::View;
    use hotpath::{AuditDetails, AuditEvent, Knob, ParamSpace, ParamVec, ProposalKind};

    fn applied(kind: ProposalKind, id: u64, params: &[f64]) -> AuditEvent {
        AuditEvent {
            seq: 0,
            timestamp_us: 0,
            generation: 1,
            details: AuditDetails::Applied {
                kind,
                correlation_id: id,
                previous_generation: 0,
                delta: ParamVec::zeros(params.len()),
                params: ParamVec::from_slice(params),
            },
        }
    }

    #[test]
    fn probe_pairs_and_centre_moves_have_lines_of_their_own() {
        let space = ParamSpace::new(vec![
            Knob::int("batch_size", 1, 64, 48),
            Knob::choice("encoding", ["json", "csv"], "csv"),
        ])
        .expect("valid");
        let mut view = View::new(true, "balanced", &[48.0, 1.0]);
        let mut line = |event| view.moved(&event, &space);
        assert_eq!(
            line(applied(ProposalKind::ApplyPlus, 3, &[50.0, 1.0])),
            None
        );
        assert_eq!(
            line(applied(ProposalKind::ApplyMinus, 3, &[46.0, 1.0])).as_deref(),
            Some("probe ± #3: batch_size 50 | 46")
        );
        assert_eq!(
            line(applied(ProposalKind::Update, 3, &[48.0, 1.0])).as_deref(),
            Some("centre #3: holds (no knob moved enough to commit)")
        );
        assert_eq!(
            line(applied(ProposalKind::Update, 4, &[52.0, 0.0])).as_deref(),
            Some("centre #4: batch_size 48 -> 52, encoding csv -> json")
        );
        // The centre the next move is told from is the one just committed.
        assert_eq!(
            line(applied(ProposalKind::Update, 5, &[53.0, 0.0])).as_deref(),
            Some("centre #5: batch_size 52 -> 53")
        );
    }
}
