//! The operations a case runs: the [`Op`] vocabulary, and how a generated
//! [`RawOp`] (a selector and a seed) decodes into one, by the profile's
//! weights.

use crate::setup::{Hostility, Profile};
use crate::{MINUTE, SECOND};

#[derive(Debug, Clone)]
pub(crate) enum Op {
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

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Plus,
    Minus,
    Update,
}

/// What the delta is relative to: the live values (as proposals are), or the
/// centre (a proposer returning from a probe), or a bound.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base {
    Live,
    Centre,
}

/// Magnitude of each component, as a fraction of the step limit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scale {
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
pub(crate) enum Special {
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
pub(crate) enum LenMode {
    Exact,
    Short(usize),
    Long(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct ApplySpec {
    pub(crate) kind: Kind,
    /// A bounds-aware proposer: a component that would leave its bounds is
    /// proposed in the other direction instead.
    pub(crate) reflect: bool,
    pub(crate) base: Base,
    pub(crate) scale: Scale,
    pub(crate) seed: u64,
    pub(crate) special: Option<(usize, Special)>,
    pub(crate) len: LenMode,
    pub(crate) id: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum GenSpec {
    Centre,
    Live,
    Offset(i64),
}

/// An operation as generated: a selector in `0..1000` (which operation,
/// by the profile's weights; 0 is the simplest) and a seed for its
/// parameters. Two integers are much cheaper for proptest to generate than a
/// tree of unions, shrink by removal like any element, and decode
/// deterministically into an [`Op`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawOp(pub(crate) u32, pub(crate) u64);

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

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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

pub(crate) fn decode(profile: Profile, hostility: Hostility, RawOp(sel, seed): RawOp) -> Op {
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
