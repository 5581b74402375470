"""Bad digests raise DigestError with the library's message and change
nothing; the exception hierarchy."""

from __future__ import annotations

import math
import pickle

import pytest

import hotpath
from conftest import drive


def test_hierarchy() -> None:
    for cls in (
        hotpath.ConfigError, hotpath.DigestError, hotpath.Refused, hotpath.StateError,
        hotpath.AuditLogError, hotpath.ClosedError, hotpath.ClientError,
    ):
        assert issubclass(cls, hotpath.Error) and cls.__module__ == "hotpath"
    assert issubclass(hotpath.ConfigError, ValueError)
    assert issubclass(hotpath.DigestError, ValueError)
    assert issubclass(hotpath.ClosedError, RuntimeError)
    assert issubclass(hotpath.Error, Exception)


@pytest.mark.parametrize(
    "objective, samples, kwargs, message",
    [
        (math.nan, 10, {}, "objective value is not finite: NaN"),
        (math.inf, 10, {}, "objective value is not finite: inf"),
        (-math.inf, 10, {}, "objective value is not finite: -inf"),
        (1.0, 0, {}, "digest summarises zero samples"),
        (1.0, 10, {"margin": math.nan}, "constraint margin is not finite: NaN"),
        (1.0, -1, {}, "samples = -1 is invalid: expected an integer in [0, 18446744073709551615]"),
        (1.0, 2**64, {}, "samples = 18446744073709551616 is invalid: expected an integer in [0, 18446744073709551615]"),
        (1.0, 10, {"generation": -3}, "generation = -3 is invalid: expected an integer in [0, 18446744073709551615]"),
        (1.0, 10, {"window_us": -3}, "window_us = -3 is invalid: expected an integer in [0, 18446744073709551615]"),
        (1.0, 10, {"t_us": 1_000}, "digest timestamp 1000 µs is earlier than the previous digest's 2000000 µs"),
    ],
)
def test_bad_digests_change_nothing(engine: hotpath.Engine, objective, samples, kwargs, message) -> None:
    drive(engine, 20)
    before = (engine.status(), engine.audit())
    with pytest.raises(hotpath.DigestError) as caught:
        engine.step(objective, samples, **kwargs)
    assert str(caught.value) == message
    assert (engine.status(), engine.audit()) == before


def test_time_going_backwards_on_the_digests_own_clock(engine: hotpath.Engine) -> None:
    engine.step(1.0, 10, t_us=500)
    with pytest.raises(hotpath.DigestError, match="^digest timestamp 499 µs is earlier than the previous digest's 500 µs$"):
        engine.step(1.0, 10, t_us=499)
    engine.step(1.0, 10, t_us=500)


@pytest.mark.parametrize("objective, samples", [("1.0", 10), (1.0, 1.5), (None, 1), (1.0, "3")])
def test_wrong_types_are_type_errors(engine: hotpath.Engine, objective, samples) -> None:
    with pytest.raises(TypeError):
        engine.step(objective, samples)


def test_refused_carries_the_violation() -> None:
    engine = hotpath.Engine(
        [hotpath.Int("n", 0, 10, 5), hotpath.Real("ratio", 0.0, 1.0, 0.95)], manual_clock=True
    )
    engine.advance_clock(1_000_000)
    with pytest.raises(hotpath.Refused) as caught:
        engine.propose({"ratio": 1.02})
    e = caught.value
    assert e.kind == "OutOfBounds"
    assert e.fields == {"index": 1, "knob": "ratio", "value": 1.02, "min": 0.0, "max": 1.0}
    assert str(e) == "refused: ratio would become 1.02, outside its bounds [0, 1]"
    assert e.violation.as_dict() == {"kind": "OutOfBounds", "message": str(e)[len("refused: "):], "fields": e.fields}
    assert repr(e.violation).startswith("Violation(OutOfBounds: ")
    copy = pickle.loads(pickle.dumps(e))
    assert isinstance(copy, hotpath.Refused) and str(copy) == str(e)


def test_client_errors_pickle() -> None:
    e = hotpath.ClientError("nope", 401, "unauthorized")
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.message, copy.status, copy.code) == ("nope", 401, "unauthorized")
