"""Knobs, guardrails and rollback policies: what they hold, and every bad
definition refused with the library's message."""

from __future__ import annotations

import math

import pytest

import hotpath


def test_real_holds_its_definition() -> None:
    k = hotpath.Real("linger_ms", 0.1, 100.0, 5.0, log=True)
    assert (k.name, k.min, k.max, k.initial, k.log) == ("linger_ms", 0.1, 100.0, 5.0, True)
    assert repr(k) == "Real('linger_ms', 0.1, 100.0, 5.0, log=True)"
    assert hotpath.Real("r", 0, 1, 0).log is False


def test_unbounded_real() -> None:
    k = hotpath.Real("gain", -math.inf, math.inf, 0.0)
    assert (k.min, k.max) == (-math.inf, math.inf)


def test_int_holds_its_definition() -> None:
    k = hotpath.Int("batch", 8, 512, 64, step=8)
    assert (k.name, k.min, k.max, k.initial, k.step, k.log) == ("batch", 8, 512, 64, 8, False)
    assert repr(k) == "Int('batch', 8, 512, 64, step=8)"
    assert repr(hotpath.Int("n", 1, 9, 3, log=True)) == "Int('n', 1, 9, 3, log=True)"
    assert isinstance(k.initial, int)


def test_choice_holds_its_definition() -> None:
    k = hotpath.Choice("codec", ["none", "zlib", "lzma"], "lzma")
    assert (k.name, k.options, k.initial) == ("codec", ["none", "zlib", "lzma"], "lzma")
    assert repr(k) == "Choice('codec', ['none', 'zlib', 'lzma'], 'lzma')"
    assert hotpath.Choice("c", ("a", "b"), "a").options == ["a", "b"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: hotpath.Real("", 0, 1, 0.5), "knob ``: its name is empty"),
        (lambda: hotpath.Real("r", 1, 0, 0.5), "knob `r`: bounds (1, 0) are not finite with min < max"),
        (lambda: hotpath.Real("r", math.nan, 1, 0.5), "knob `r`: bounds (NaN, 1) are not finite with min < max"),
        (lambda: hotpath.Real("r", 0, math.inf, 0.5), "knob `r`: bounds (0, inf) are not finite with min < max"),
        (lambda: hotpath.Real("r", 0, 1, 2), "knob `r`: initial value is outside the bounds or not finite (or not an option)"),
        (lambda: hotpath.Real("r", 0, 1, math.nan), "knob `r`: initial value is outside the bounds or not finite (or not an option)"),
        (lambda: hotpath.Real("r", 0, 10, 1, log=True), "knob `r`: a log scale needs min > 0, got min = 0"),
        (lambda: hotpath.Int("n", 5, 5, 5), "knob `n`: bounds (5, 5) are not finite with min < max"),
        (lambda: hotpath.Int("n", 0, 2**53 + 1, 1), "knob `n`: integer bounds must lie within ±2^53"),
        (lambda: hotpath.Int("n", 0, 2**70, 1), "knob `n`: integer bounds must lie within ±2^53"),
        (lambda: hotpath.Int("n", -(2**70), 0, 0), "knob `n`: integer bounds must lie within ±2^53"),
        (lambda: hotpath.Int("n", 0, 10, 2**70), "knob `n`: initial value is outside the bounds or not finite (or not an option)"),
        (lambda: hotpath.Int("n", 0, 10, 11), "knob `n`: initial value is outside the bounds or not finite (or not an option)"),
        (lambda: hotpath.Int("n", 0, 10, 3, step=2), "knob `n`: initial value is not on the knob's grid (an integer of its step, an option's index)"),
        (lambda: hotpath.Int("n", 0, 10, 4, step=0), "knob `n`: step = 0 must be at least 1 and at most max - min"),
        (lambda: hotpath.Int("n", 0, 10, 0, step=11), "knob `n`: step = 11 must be at least 1 and at most max - min"),
        (lambda: hotpath.Int("n", 0, 10, 0, step=2**70), "knob `n`: step must be at least 1 and at most max - min"),
        (lambda: hotpath.Int("n", 0, 10, 1, log=True), "knob `n`: a log scale needs min > 0, got min = 0"),
        (lambda: hotpath.Choice("c", ["a"], "a"), "knob `c`: a choice needs 2 to 256 options, got 1"),
        (lambda: hotpath.Choice("c", [str(i) for i in range(257)], "0"), "knob `c`: a choice needs 2 to 256 options, got 257"),
        (lambda: hotpath.Choice("c", ["a", ""], "a"), "knob `c`: options[1] is empty"),
        (lambda: hotpath.Choice("c", ["a", "b", "a"], "a"), "knob `c`: options[2] repeats options[0]"),
        (lambda: hotpath.Choice("c", ["a", "b"], "z"), "knob `c`: initial value is outside the bounds or not finite (or not an option)"),
    ],
)
def test_bad_knobs_are_config_errors(make, message) -> None:
    with pytest.raises(hotpath.ConfigError) as caught:
        make()
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "make",
    [
        lambda: hotpath.Real("r", "0", 1, 0.5),
        lambda: hotpath.Real(3, 0, 1, 0.5),
        lambda: hotpath.Int("n", 0.5, 10, 1),
        lambda: hotpath.Int("n", 0, 10, "1"),
        lambda: hotpath.Choice("c", "ab", "a"),
        lambda: hotpath.Choice("c", [1, 2], "a"),
    ],
)
def test_wrong_types_are_type_errors(make) -> None:
    with pytest.raises(TypeError):
        make()


PRESETS = {
    "conservative": dict(
        max_delta_per_step=0.05, max_updates_per_second=2.0, min_interval_us=500_000,
        direction_flip_limit=2, cooldown_after_flip_us=60_000_000,
        max_cumulative_delta_per_minute=0.25, regression_count_limit=4, violation_limit=5,
    ),
    "balanced": dict(
        max_delta_per_step=0.10, max_updates_per_second=10.0, min_interval_us=100_000,
        direction_flip_limit=3, cooldown_after_flip_us=30_000_000,
        max_cumulative_delta_per_minute=0.50, regression_count_limit=6, violation_limit=10,
    ),
    "aggressive": dict(
        max_delta_per_step=0.20, max_updates_per_second=20.0, min_interval_us=50_000,
        direction_flip_limit=5, cooldown_after_flip_us=10_000_000,
        max_cumulative_delta_per_minute=1.00, regression_count_limit=10, violation_limit=20,
    ),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_guardrail_presets_are_the_librarys(name) -> None:
    g = getattr(hotpath.Guardrails, name)()
    assert g.as_dict() == PRESETS[name]
    for field, value in PRESETS[name].items():
        assert getattr(g, field) == value


def test_guardrails_take_every_field_as_an_override() -> None:
    overrides = dict(
        max_delta_per_step=0.3, max_updates_per_second=5.0, min_interval_us=1,
        direction_flip_limit=0, cooldown_after_flip_us=2, max_cumulative_delta_per_minute=3.0,
        regression_count_limit=1, violation_limit=1,
    )
    g = hotpath.Guardrails.conservative(**overrides)
    assert g.as_dict() == overrides
    assert hotpath.Guardrails() == hotpath.Guardrails.balanced()
    assert hotpath.Guardrails(max_delta_per_step=0.2) == hotpath.Guardrails.balanced().replace(
        max_delta_per_step=0.2
    )
    assert g != hotpath.Guardrails.balanced()
    assert repr(hotpath.Guardrails.balanced()).startswith("Guardrails(max_delta_per_step=0.1, ")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(max_delta_per_step=0), "max_delta_per_step = 0 is invalid: expected a fraction of the range in (0, 1]"),
        (dict(max_delta_per_step=1.5), "max_delta_per_step = 1.5 is invalid: expected a fraction of the range in (0, 1]"),
        (dict(max_delta_per_step=math.nan), "max_delta_per_step = NaN is invalid: expected a fraction of the range in (0, 1]"),
        (dict(max_updates_per_second=0.5), "max_updates_per_second = 0.5 is invalid: expected a rate in [1, 1000] per second"),
        (dict(max_cumulative_delta_per_minute=math.inf), "max_cumulative_delta_per_minute = inf is invalid: expected a finite fraction of the range > 0"),
        (dict(direction_flip_limit=1001), "direction_flip_limit = 1001 is invalid: expected at most 1000 per minute"),
        (dict(regression_count_limit=0), "regression_count_limit = 0 is invalid: expected at least 1"),
        (dict(violation_limit=0), "violation_limit = 0 is invalid: expected at least 1"),
        (dict(min_interval_us=-1), "min_interval_us = -1 is invalid: expected an integer in [0, 18446744073709551615]"),
        (dict(cooldown_after_flip_us=2**64), "cooldown_after_flip_us = 18446744073709551616 is invalid: expected an integer in [0, 18446744073709551615]"),
        (dict(direction_flip_limit=2**32), "direction_flip_limit = 4294967296 is invalid: expected an integer in [0, 4294967295]"),
    ],
)
def test_bad_guardrails_are_config_errors(overrides, message) -> None:
    with pytest.raises(hotpath.ConfigError) as caught:
        hotpath.Guardrails.balanced(**overrides)
    assert str(caught.value) == message


def test_guardrails_refuse_unknown_keywords_and_types() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bounds'"):
        hotpath.Guardrails.balanced(bounds=[(0, 1)])
    with pytest.raises(TypeError):
        hotpath.Guardrails.balanced(min_interval_us=1.5)
    with pytest.raises(TypeError):
        hotpath.Guardrails.aggressive(max_delta_per_step="0.1")


ROLLBACK = {
    "conservative": (2, 2, 30_000_000),
    "balanced": (3, 4, 5_000_000),
    "aggressive": (5, 10, 1_000_000),
}


@pytest.mark.parametrize("name", sorted(ROLLBACK))
def test_rollback_presets_are_the_librarys(name) -> None:
    p = getattr(hotpath.RollbackPolicy, name)()
    regressions, per_hour, stable = ROLLBACK[name]
    assert p.as_dict() == dict(
        max_consecutive_regressions=regressions, max_rollbacks_per_hour=per_hour,
        min_stable_time_us=stable, regression_sigmas=2.0, regression_tolerance=0.01,
    )
    assert (p.max_consecutive_regressions, p.max_rollbacks_per_hour, p.min_stable_time_us) == ROLLBACK[name]
    assert (p.regression_sigmas, p.regression_tolerance) == (2.0, 0.01)


def test_rollback_policy_overrides() -> None:
    p = hotpath.RollbackPolicy.aggressive(max_consecutive_regressions=7, regression_sigmas=3.0)
    assert (p.max_consecutive_regressions, p.regression_sigmas) == (7, 3.0)
    assert p.replace(min_stable_time_us=1).min_stable_time_us == 1
    assert hotpath.RollbackPolicy() == hotpath.RollbackPolicy.balanced()
    assert repr(p).startswith("RollbackPolicy(max_consecutive_regressions=7, ")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(max_consecutive_regressions=0), "max_consecutive_regressions = 0 is invalid: expected at least 1"),
        (dict(max_rollbacks_per_hour=5000), "max_rollbacks_per_hour = 5000 is invalid: expected at most 1000"),
        (dict(regression_sigmas=math.nan), "regression_sigmas = NaN is invalid: expected a finite number ≥ 0"),
        (dict(regression_tolerance=-0.1), "regression_tolerance = -0.1 is invalid: expected a finite number ≥ 0"),
        (dict(min_stable_time_us=-5), "min_stable_time_us = -5 is invalid: expected an integer in [0, 18446744073709551615]"),
    ],
)
def test_bad_rollback_policies_are_config_errors(overrides, message) -> None:
    with pytest.raises(hotpath.ConfigError) as caught:
        hotpath.RollbackPolicy.balanced(**overrides)
    assert str(caught.value) == message


def test_rollback_policy_refuses_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max'"):
        hotpath.RollbackPolicy(max=1)
