"""hotpath: governed real-time tuning.

An online optimiser (:class:`Engine`) proposes changes to a live
configuration of typed knobs (:class:`Real`, :class:`Int`,
:class:`Choice`); a safety executor, the configuration's only writer,
judges every change against :class:`Guardrails` and a
:class:`RollbackPolicy`, and records every decision in a hash-chained
audit log (durable in ``data_dir``). The service's hot path reads the
configuration lock-free through a :class:`Reader`.

>>> import hotpath
>>> engine = hotpath.Engine([hotpath.Int("batch_size", 1, 512, 64)], manual_clock=True)
>>> reader = engine.reader()
>>> reader.get()["batch_size"]
64
>>> engine.advance_clock(100_000)
>>> engine.step(3.2, 40, generation=reader.get().generation).kind
'NoChange'

Thread safety: an :class:`Engine` may be shared between threads (its
calls take a mutex, with the GIL released while the engine works); a
:class:`Reader` may be shared too, and never waits for the engine. A
:class:`Client` talks to ``hotpath serve`` over HTTP.
"""

from typing import Union

from ._errors import (
    AuditLogError,
    ClientError,
    ClosedError,
    ConfigError,
    DigestError,
    Error,
    Refused,
    StateError,
)
from ._hotpath import (
    Choice,
    Decision,
    Engine,
    Guardrails,
    Int,
    Reader,
    Real,
    RollbackPolicy,
    Snapshot,
    Violation,
    __version__,
    _bench_native_steps,
)
from .client import Client, ConfigWatch, RemoteConfig

Knob = Union[Real, Int, Choice]
"""Any of the three kinds of knob."""

KnobValue = Union[int, float, str]
"""A knob's typed value: ``int`` for an integer knob, ``float`` for a real,
``str`` for a choice."""

__all__ = [
    "AuditLogError",
    "Choice",
    "Client",
    "ClientError",
    "ClosedError",
    "ConfigError",
    "ConfigWatch",
    "Decision",
    "DigestError",
    "Engine",
    "Error",
    "Guardrails",
    "Int",
    "Knob",
    "KnobValue",
    "Reader",
    "Real",
    "Refused",
    "RemoteConfig",
    "RollbackPolicy",
    "Snapshot",
    "StateError",
    "Violation",
    "__version__",
    "_bench_native_steps",
]
