use super::*;

fn space(knobs: Vec<Knob>) -> ParamSpace {
    ParamSpace::new(knobs).expect("valid space")
}

fn problem(knob: Knob) -> KnobProblem {
    match ParamSpace::new(vec![knob]) {
        Err(ConfigError::InvalidKnob { index: 0, problem }) => problem,
        other => panic!("expected an invalid knob, got {other:?}"),
    }
}

#[test]
fn derived_columns_follow_each_kind() {
    let s = space(vec![
        Knob::real("a", -2.0, 6.0, 0.0),
        Knob::unbounded("b", 3.0),
        Knob::real("c", 1.0, 100.0, 10.0).log(),
        Knob::int("d", 0, 10, 4).step(2),
        Knob::choice("e", ["x", "y", "z"], "y"),
    ]);
    assert_eq!(s.ranges()[..2], [8.0, 1.0]);
    assert!((s.ranges()[2] - 100f64.ln()).abs() < 1e-12);
    assert_eq!(s.ranges()[3..], [10.0, 2.0]);
    assert_eq!(s.inv_ranges()[0], 0.125);
    assert_eq!(s.finite_lows()[..2], [-2.0, f64::MIN]);
    assert_eq!(s.finite_highs()[..2], [6.0, f64::MAX]);
    assert_eq!(s.log_indices(), &[2]);
    assert_eq!(s.grid_indices(), &[3, 4]);
    assert_eq!(s.choice_indices(), &[4]);
    assert!(!s.is_plain());
    assert!(space(vec![Knob::real("a", 0.0, 1.0, 0.5)]).is_plain());
    assert_eq!(&s.initial()[..], &[0.0, 3.0, 10.0, 4.0, 1.0]);
    assert_eq!(s.guardrail_bounds(), None);
}

#[test]
fn every_bad_definition_is_named() {
    let cases = [
        (Knob::unbounded("", 0.0), KnobProblem::EmptyName),
        (
            Knob::real("a", 1.0, 1.0, 1.0),
            KnobProblem::InvalidBounds { min: 1.0, max: 1.0 },
        ),
        (
            Knob::real("a", f64::MIN, f64::MAX, 0.0),
            KnobProblem::InvalidBounds {
                min: f64::MIN,
                max: f64::MAX,
            },
        ),
        (
            Knob::real("a", 0.0, 10.0, 1.0).log(),
            KnobProblem::LogNeedsPositiveMin { min: 0.0 },
        ),
        (
            Knob::int("a", -5, 5, 1).log(),
            KnobProblem::LogNeedsPositiveMin { min: -5.0 },
        ),
        (
            Knob::int("a", 5, 5, 5),
            KnobProblem::InvalidBounds { min: 5.0, max: 5.0 },
        ),
        (
            Knob::int("a", 0, 10, 0).step(0),
            KnobProblem::InvalidStep { step: 0 },
        ),
        (
            Knob::int("a", 0, 10, 0).step(11),
            KnobProblem::InvalidStep { step: 11 },
        ),
        (
            Knob::int("a", 0, MAX_EXACT_INT + 1, 0),
            KnobProblem::BeyondExactIntegers,
        ),
        (
            Knob::choice("a", ["x"], "x"),
            KnobProblem::OptionCount { count: 1 },
        ),
        (
            Knob::choice("a", Vec::<String>::new(), "x"),
            KnobProblem::OptionCount { count: 0 },
        ),
        (
            Knob::choice("a", ["x", ""], "x"),
            KnobProblem::EmptyOption { index: 1 },
        ),
        (
            Knob::choice("a", ["x", "y", "x"], "x"),
            KnobProblem::DuplicateOption { index: 2, first: 0 },
        ),
        (
            Knob::choice("a", ["x", "y"], "z"),
            KnobProblem::Initial(ValueProblem::OutOfBounds),
        ),
        (
            Knob::real("a", 0.0, 1.0, 2.0),
            KnobProblem::Initial(ValueProblem::OutOfBounds),
        ),
        (
            Knob::real("a", 0.0, 1.0, f64::NAN),
            KnobProblem::Initial(ValueProblem::OutOfBounds),
        ),
        (
            Knob::int("a", 0, 10, 3).step(2),
            KnobProblem::Initial(ValueProblem::OffGrid),
        ),
        (
            Knob::new(
                "a",
                KnobKind::Int {
                    min: 0,
                    max: 10,
                    step: 1,
                    scale: Scale::Linear,
                },
                2.5,
            ),
            KnobProblem::Initial(ValueProblem::OffGrid),
        ),
    ];
    for (knob, expected) in cases {
        assert_eq!(problem(knob.clone()), expected, "{knob:?}");
    }
    let many = vec![Knob::choice("a", ["x"; 1].repeat(300), "x")];
    assert!(matches!(
        ParamSpace::new(many),
        Err(ConfigError::InvalidKnob { .. })
    ));
    let too_many = (0..=MAX_PARAMS)
        .map(|i| Knob::unbounded(format!("p{i}"), 0.0))
        .collect();
    assert_eq!(
        ParamSpace::new(too_many),
        Err(ConfigError::TooManyParams {
            count: MAX_PARAMS + 1,
            limit: MAX_PARAMS
        })
    );
}

#[test]
fn values_are_checked_for_bounds_and_grid() {
    let s = space(vec![
        Knob::int("n", 2, 20, 4).step(2),
        Knob::choice("c", ["a", "b", "c"], "a"),
        Knob::unbounded("g", 0.0),
    ]);
    assert_eq!(s.value_problem(0, 6.0), None);
    assert_eq!(s.value_problem(0, 7.0), Some(ValueProblem::OffGrid));
    assert_eq!(s.value_problem(0, 6.5), Some(ValueProblem::OffGrid));
    assert_eq!(s.value_problem(0, 22.0), Some(ValueProblem::OutOfBounds));
    assert_eq!(s.value_problem(1, 2.0), None);
    assert_eq!(s.value_problem(1, 3.0), Some(ValueProblem::OutOfBounds));
    assert_eq!(s.value_problem(1, 0.5), Some(ValueProblem::OffGrid));
    assert_eq!(
        s.value_problem(2, f64::INFINITY),
        Some(ValueProblem::OutOfBounds)
    );
    assert_eq!(s.value_problem(9, 0.0), Some(ValueProblem::OutOfBounds));
    assert_eq!(s.first_invalid(&[4.0, 1.0, 1e300]), None);
    assert_eq!(
        s.first_invalid(&[4.0, 1.5, 0.0]),
        Some((1, ValueProblem::OffGrid))
    );
    assert_eq!(
        s.first_invalid(&[4.0]),
        Some((1, ValueProblem::OutOfBounds))
    );
}

#[test]
fn snapping_lands_on_the_nearest_value() {
    let s = space(vec![
        Knob::int("n", 1, 10, 1).step(3), // 1, 4, 7, 10
        Knob::int("l", 1, 4096, 64).log(),
        Knob::choice("c", ["a", "b", "c"], "a"),
        Knob::real("r", 0.0, 1.0, 0.5),
        Knob::int("m", 0, 10, 0).step(4), // 0, 4, 8 (10 is off the grid)
    ]);
    assert_eq!(s.snap(0, 5.4), 4.0);
    assert_eq!(s.snap(0, 5.6), 7.0);
    assert_eq!(s.snap(0, 99.0), 10.0);
    assert_eq!(s.snap(0, f64::NAN), 1.0);
    // On a log scale 2.9 is nearer 3 by ratio; 1.45 is nearer 1 than 2 only
    // below √2.
    assert_eq!(s.snap(1, 1.40), 1.0);
    assert_eq!(s.snap(1, 1.43), 2.0);
    assert_eq!(s.snap(2, 1.6), 2.0);
    assert_eq!(s.snap(2, -3.0), 0.0);
    assert_eq!(s.snap(3, 0.123), 0.123);
    assert_eq!(s.snap(4, 9.9), 8.0);
    for v in [0.0, 1.0, 2.5, 3.0, 3.9, 5.0, 9.0, 10.0, 100.0] {
        for i in 0..s.len() {
            assert!(s.admits(i, s.snap(i, v)), "knob {i} value {v}");
        }
    }
}

#[test]
fn unit_coordinates_round_trip() {
    let s = space(vec![
        Knob::real("lin", -1.0, 3.0, 0.0),
        Knob::real("log", 0.01, 100.0, 1.0).log(),
        Knob::unbounded("g", 0.0),
    ]);
    assert_eq!(s.to_unit(0, 1.0), 0.5);
    assert!((s.to_unit(1, 1.0) - 0.5).abs() < 1e-12);
    assert_eq!(s.to_unit(2, 7.0), 7.0);
    for u in [0.0, 0.1, 0.5, 0.9, 1.0] {
        for i in 0..3 {
            assert!((s.to_unit(i, s.from_unit(i, u)) - u).abs() < 1e-12);
        }
    }
}

#[test]
fn typed_values_encode_and_name() {
    let s = space(vec![
        Knob::int("batch", 1, 512, 64),
        Knob::real("linger_ms", 0.5, 50.0, 5.0).log(),
        Knob::choice("codec", ["none", "lz4", "zstd"], "lz4"),
    ]);
    assert_eq!(s.value(0, 48.0), Value::Int(48));
    assert_eq!(s.value(1, 2.5), Value::Real(2.5));
    assert_eq!(s.value(2, 2.0), Value::Choice("zstd"));
    assert_eq!(s.encode(0, Value::Int(48)), Ok(48.0));
    assert_eq!(s.encode(0, Value::Real(48.5)), Err(ValueProblem::OffGrid));
    assert_eq!(s.encode(2, Value::Choice("zstd")), Ok(2.0));
    assert_eq!(
        s.encode(1, Value::Choice("zstd")),
        Err(ValueProblem::OutOfBounds)
    );
    assert_eq!(
        s.named(&[48.0, 2.5, 2.0]).to_string(),
        "batch=48 linger_ms=2.5 codec=zstd"
    );
    assert!(matches!(
        s.real("batch"),
        Err(KnobLookupError::WrongKind { .. })
    ));
    assert!(matches!(
        s.choice("nope"),
        Err(KnobLookupError::Missing { .. })
    ));
    let codec = s.choice("codec").unwrap();
    let snap = crate::ConfigSnapshot {
        generation: 0,
        params: crate::ParamVec::from_slice(&[48.0, 2.5, 2.0]),
    };
    assert_eq!(
        (snap.get(s.int("batch").unwrap()), snap.get(codec)),
        (48, 2)
    );
    assert_eq!(s.option(codec, snap.get(codec)), Some("zstd"));
}

#[test]
fn guardrail_bounds_round_trip() {
    let g = Guardrails::default().with_bounds(vec![(1.0, 2.0), (3.0, 5.0)]);
    let s = ParamSpace::from_guardrails(&g, &[1.5, 4.0]).unwrap();
    assert_eq!(s.guardrail_bounds(), g.bounds);
    assert_eq!(
        ParamSpace::from_guardrails(&g, &[1.0, 3.0, 0.0]),
        Err(ConfigError::BoundsLength {
            expected: 3,
            got: 2
        })
    );
}
