"""Type stubs of the extension module ``hotpath._hotpath`` (the Rust core).

Everything here is re-exported by ``hotpath``; import it from there.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Iterator, Literal, Mapping, Optional, Sequence, TypedDict, Union, final

from typing_extensions import Unpack

__all__ = [
    "Choice",
    "Decision",
    "Engine",
    "Guardrails",
    "Int",
    "Reader",
    "Real",
    "RollbackPolicy",
    "Snapshot",
    "Violation",
    "__version__",
    "_bench_native_steps",
]

__version__: str

_KnobValue = Union[int, float, str]
"""A knob's typed value: ``int`` (integer knob), ``float`` (real), ``str`` (choice)."""

@final
class Real:
    """A real knob in ``[min, max]``, starting at ``initial``; searched on a
    log scale with ``log=True`` (needs ``min > 0``). Raises
    :class:`hotpath.ConfigError` for an invalid definition."""

    def __new__(
        cls, name: str, min: float, max: float, initial: float, log: bool = False
    ) -> Real: ...
    @property
    def name(self) -> str:
        """The knob's name."""
    @property
    def min(self) -> float:
        """Lower bound."""
    @property
    def max(self) -> float:
        """Upper bound."""
    @property
    def initial(self) -> float:
        """The value it starts at."""
    @property
    def log(self) -> bool:
        """``True`` if it is searched on a log scale."""

@final
class Int:
    """An integer knob ``min, min + step, …`` up to ``max``, starting at
    ``initial`` (on the grid); searched on a log scale with ``log=True``.
    Raises :class:`hotpath.ConfigError` for an invalid definition."""

    def __new__(
        cls,
        name: str,
        min: int,
        max: int,
        initial: int,
        log: bool = False,
        step: Optional[int] = None,
    ) -> Int: ...
    @property
    def name(self) -> str:
        """The knob's name."""
    @property
    def min(self) -> int:
        """Lower bound, the first value of its grid."""
    @property
    def max(self) -> int:
        """Upper bound."""
    @property
    def step(self) -> int:
        """The distance between two of its values."""
    @property
    def initial(self) -> int:
        """The value it starts at."""
    @property
    def log(self) -> bool:
        """``True`` if it is searched on a log scale."""

@final
class Choice:
    """One of ``options`` (2 to 256 distinct non-empty names), starting at
    ``initial``. Raises :class:`hotpath.ConfigError` for an invalid
    definition."""

    def __new__(cls, name: str, options: Sequence[str], initial: str) -> Choice: ...
    @property
    def name(self) -> str:
        """The knob's name."""
    @property
    def options(self) -> list[str]:
        """The options, in order."""
    @property
    def initial(self) -> str:
        """The option it starts at."""

class _GuardrailFields(TypedDict, total=False):
    """The keyword overrides of :class:`Guardrails` (every field but the
    bounds, which come from the knobs)."""

    max_delta_per_step: float
    max_updates_per_second: float
    min_interval_us: int
    direction_flip_limit: int
    cooldown_after_flip_us: int
    max_cumulative_delta_per_minute: float
    regression_count_limit: int
    violation_limit: int

class _RollbackFields(TypedDict, total=False):
    """The keyword overrides of :class:`RollbackPolicy`."""

    max_consecutive_regressions: int
    max_rollbacks_per_hour: int
    min_stable_time_us: int
    regression_sigmas: float
    regression_tolerance: float

@final
class Guardrails:
    """The guardrails: how far, how often and how erratically the executor
    lets the live configuration move. Movement limits are fractions of a
    knob's range. ``Guardrails(**overrides)`` is ``balanced(**overrides)``;
    an invalid value raises :class:`hotpath.ConfigError`, an unknown
    keyword ``TypeError``."""

    def __new__(
        cls,
        **overrides: Unpack[_GuardrailFields],
    ) -> Guardrails: ...
    @staticmethod
    def balanced(
        **overrides: Unpack[_GuardrailFields],
    ) -> Guardrails:
        """The balanced preset (the library's defaults) with overrides."""
    @staticmethod
    def conservative(
        **overrides: Unpack[_GuardrailFields],
    ) -> Guardrails:
        """Small steps, slow rate: the conservative preset with overrides."""
    @staticmethod
    def aggressive(
        **overrides: Unpack[_GuardrailFields],
    ) -> Guardrails:
        """Large steps, fast rate: the aggressive preset with overrides."""
    def replace(
        self,
        **overrides: Unpack[_GuardrailFields],
    ) -> Guardrails:
        """A copy with overrides."""
    @property
    def max_delta_per_step(self) -> float:
        """The most a live change may move a knob, as a fraction of its range."""
    @property
    def max_updates_per_second(self) -> float:
        """The most changes in any second."""
    @property
    def min_interval_us(self) -> int:
        """The least time between two changes (µs)."""
    @property
    def direction_flip_limit(self) -> int:
        """Reversals of a knob's committed direction allowed in any minute."""
    @property
    def cooldown_after_flip_us(self) -> int:
        """How long updates are refused after too many reversals (µs)."""
    @property
    def max_cumulative_delta_per_minute(self) -> float:
        """The movement budget per knob and minute, as a fraction of its range."""
    @property
    def regression_count_limit(self) -> int:
        """Consecutive regressed reports that latch safe mode."""
    @property
    def violation_limit(self) -> int:
        """Consecutive malformed or out-of-envelope proposals that latch safe mode."""
    def as_dict(self) -> dict[str, Union[int, float]]:
        """Every field, ``{name: value}``."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class RollbackPolicy:
    """When the executor returns to the baseline by itself.
    ``RollbackPolicy(**overrides)`` is ``balanced(**overrides)``; an invalid
    value raises :class:`hotpath.ConfigError`, an unknown keyword
    ``TypeError``."""

    def __new__(
        cls,
        **overrides: Unpack[_RollbackFields],
    ) -> RollbackPolicy: ...
    @staticmethod
    def balanced(
        **overrides: Unpack[_RollbackFields],
    ) -> RollbackPolicy:
        """The balanced preset (the library's defaults) with overrides."""
    @staticmethod
    def conservative(
        **overrides: Unpack[_RollbackFields],
    ) -> RollbackPolicy:
        """Quick to roll back: the conservative preset with overrides."""
    @staticmethod
    def aggressive(
        **overrides: Unpack[_RollbackFields],
    ) -> RollbackPolicy:
        """Tolerant of regressions: the aggressive preset with overrides."""
    def replace(
        self,
        **overrides: Unpack[_RollbackFields],
    ) -> RollbackPolicy:
        """A copy with overrides."""
    @property
    def max_consecutive_regressions(self) -> int:
        """Consecutive regressed reports that trigger a rollback."""
    @property
    def max_rollbacks_per_hour(self) -> int:
        """Rollbacks in any hour beyond which the circuit breaker latches safe mode."""
    @property
    def min_stable_time_us(self) -> int:
        """After a rollback, no update until this long has passed (µs)."""
    @property
    def regression_sigmas(self) -> float:
        """Baseline standard deviations an objective may exceed the baseline mean by."""
    @property
    def regression_tolerance(self) -> float:
        """The least allowance, as a fraction of the baseline mean's magnitude."""
    def as_dict(self) -> dict[str, Union[int, float]]:
        """Every field, ``{name: value}``."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Snapshot:
    """One generation of the live configuration with its typed values;
    immutable. ``snap["batch_size"]`` reads a value (``KeyError`` for an
    unknown name); ``in``, ``len``, iteration (the names), ``get``,
    ``keys`` and ``items`` work as on a ``dict``, and ``values`` is one."""

    @property
    def generation(self) -> int:
        """The generation: rises by one with every change of the live config."""
    @property
    def values(self) -> dict[str, _KnobValue]:
        """Every knob's typed value, ``{name: value}`` (a new ``dict`` each time)."""
    def __getitem__(self, key: str, /) -> _KnobValue: ...
    def get(self, name: str, default: Any = None) -> Any:
        """The value of knob ``name``, or ``default`` if there is none."""
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> list[str]:
        """The knobs' names, in order."""
    def items(self) -> list[tuple[str, _KnobValue]]:
        """``(name, value)`` pairs, in order."""

@final
class Reader:
    """A reader of the live configuration for the hot path: lock-free, never
    waits for the engine, safe to share between threads."""

    def get(self) -> Snapshot:
        """The live configuration: the same object as the last call while the
        generation is unchanged, a new one after a change."""
    @property
    def generation(self) -> int:
        """The live generation (one atomic load; no snapshot is built)."""

@final
class Violation:
    """Why the executor refused a proposal or a request."""

    @property
    def kind(self) -> str:
        """``DeltaTooLarge``, ``RateLimitExceeded``, ``InSafeMode``,
        ``NoBaseline``, … (as in the audit log)."""
    @property
    def message(self) -> str:
        """The library's message, its knob named (``batch_size would move by …``)."""
    @property
    def fields(self) -> dict[str, Any]:
        """The violation's data (``index``, ``limit``, ``retry_at_us``, …), with
        ``knob``, the knob's name, where it names an index."""
    def as_dict(self) -> dict[str, Any]:
        """``{"kind", "message", "fields"}``."""

@final
class Decision:
    """What one :meth:`Engine.step` did."""

    @property
    def kind(self) -> Literal["NoChange", "ApplyPlus", "ApplyMinus", "Update"]:
        """What the engine proposed: nothing, one of the two probes of an SPSA
        iteration, or the committed step."""
    @property
    def reason(self) -> Optional[str]:
        """Why nothing was proposed (``CollectingSamples``, ``Settling``,
        ``EvalTimeout``, ``SafeMode``, ``WaitingForExecutor``,
        ``ConstraintViolated``); ``None`` for a move."""
    @property
    def correlation_id(self) -> int:
        """The SPSA iteration of an update, the perturbation of a probe."""
    @property
    def delta(self) -> Optional[dict[str, Union[int, float]]]:
        """The proposed change per knob (``int`` for integer and choice knobs,
        ``float`` for reals), relative to the live values before the step."""
    @property
    def proposed(self) -> Optional[dict[str, _KnobValue]]:
        """The values proposed (the live values before the step plus the delta)."""
    @property
    def gradient(self) -> Optional[dict[str, float]]:
        """The gradient estimate of an update (unit coordinates)."""
    @property
    def applied(self) -> bool:
        """``True`` if the executor applied the move."""
    @property
    def violation(self) -> Optional[Violation]:
        """Why the executor refused the move, if it did."""
    @property
    def generation(self) -> int:
        """The live generation after the step."""
    def as_dict(self) -> dict[str, Any]:
        """Every field as plain Python values."""

_Knob = Union[Real, Int, Choice]
_Resume = Literal["fresh", "if_present", "require"]

@final
class Engine:
    """The governed engine: an online optimiser whose every change goes
    through the safety executor, with its audit trail.

    With ``data_dir`` the audit log (``data_dir/audit``) and the state
    (``data_dir/state.json``) are durable, and opening the same directory
    again resumes (``resume="if_present"``; ``"fresh"`` ignores the state,
    ``"require"`` makes its absence a :class:`hotpath.StateError`).
    ``manual_clock=True`` gives a clock that only :meth:`advance_clock`
    moves (deterministic tests, offline replays). :meth:`audit` holds the
    latest ``audit_history`` events (``None``: 4096; at most 2^20).

    Safe to share between threads: calls take a mutex, with the GIL
    released while the engine works; readers never take it.
    """

    def __new__(
        cls,
        knobs: Sequence[_Knob],
        guardrails: Optional[Guardrails] = None,
        rollback: Optional[RollbackPolicy] = None,
        seed: Optional[int] = None,
        data_dir: Optional[Union[str, os.PathLike[str]]] = None,
        *,
        manual_clock: bool = False,
        eval_window_digests: Optional[int] = None,
        eval_window_us: Optional[int] = None,
        settle_time_us: Optional[int] = None,
        calibration: bool = True,
        resume: _Resume = "if_present",
        audit_history: Optional[int] = None,
    ) -> Engine: ...
    @staticmethod
    def from_config(
        path: Union[str, os.PathLike[str]],
        data_dir: Optional[Union[str, os.PathLike[str]]] = None,
        *,
        overrides: Optional[Sequence[str]] = None,
        manual_clock: bool = False,
        resume: _Resume = "if_present",
        audit_history: Optional[int] = None,
    ) -> Engine:
        """An engine from a tuning config (the TOML the ``hotpath`` command
        reads), with ``overrides`` as ``KEY=VALUE`` strings (its ``--set``)."""
    def reader(self) -> Reader:
        """A reader of the live configuration for the hot path."""
    def snapshot(self) -> Snapshot:
        """The live configuration now, as a new snapshot."""
    @property
    def generation(self) -> int:
        """The live generation (lock-free)."""
    @property
    def knobs(self) -> list[_Knob]:
        """The knobs, in order."""
    @property
    def names(self) -> list[str]:
        """The knobs' names, in order."""
    @property
    def opened(self) -> dict[str, Any]:
        """What opening found: ``restored``, ``generation``, ``first_seq``,
        ``truncations``, ``truncated_bytes``."""
    @property
    def data_dir(self) -> Optional[pathlib.Path]:
        """The data directory, or ``None`` in memory."""
    @property
    def now_us(self) -> int:
        """The engine's clock, µs."""
    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` was called."""
    def advance_clock(self, us: int) -> None:
        """Moves the manual clock forward by ``us`` µs (``manual_clock=True``
        only; :class:`hotpath.ConfigError` otherwise)."""
    def step(
        self,
        objective: float,
        samples: int,
        *,
        generation: Optional[int] = None,
        margin: Optional[float] = None,
        window_us: Optional[int] = None,
        t_us: Optional[int] = None,
    ) -> Decision:
        """Feeds one digest: the ``objective`` (lower is better) over
        ``samples`` samples measured under ``generation``, with an optional
        constraint ``margin`` (negative: infeasible), the window's length
        (default: the time since the previous digest) and its time ``t_us``
        (default: now). The engine decides and, if it moves, applies through
        the executor. Raises :class:`hotpath.DigestError` for a bad digest
        (nothing changes). Releases the GIL while the engine works."""
    def propose(self, values: Mapping[str, _KnobValue]) -> dict[str, Any]:
        """An operator's move of some knobs to ``values`` through the
        executor, judged by the same guardrails as the engine's; the receipt.
        Raises :class:`hotpath.Refused` with the violation if it is refused,
        :class:`hotpath.ConfigError` for an unknown knob or option."""
    def freeze(self) -> None:
        """The manual kill switch: safe mode until :meth:`resume`."""
    def resume(self) -> list[str]:
        """Clears the manual latches; the reasons cleared."""
    def rollback(self) -> dict[str, Any]:
        """Restores the baseline; the receipt. Raises :class:`hotpath.Refused`."""
    def set_baseline(self) -> int:
        """Records the centre as the baseline; its generation. Raises
        :class:`hotpath.Refused`."""
    def save_state(self) -> Optional[pathlib.Path]:
        """Saves the state file now; its path, or ``None`` in memory."""
    def status(self) -> dict[str, Any]:
        """``generation`` and ``values``, ``centre``, ``baseline``,
        ``safe_mode`` (``active``, ``reasons``), ``engine`` (``stage``,
        ``iteration``, ``noise_sd``), ``counts``, ``audit``, ``clock_us``."""
    def audit(self, after: Optional[int] = None, limit: Optional[int] = None) -> list[dict[str, Any]]:
        """The audit events after seq ``after`` (all it holds without it),
        oldest first, at most ``limit``: ``seq``, ``timestamp_us``,
        ``generation``, ``type``, ``text``, ``details``."""
    def close(self, *, rollback_to_baseline: bool = False, save_state: bool = True) -> Optional[dict[str, Any]]:
        """Shuts down (the log flushed and closed, the final state saved);
        a summary, or ``None`` if already closed."""
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc: object) -> None: ...

def _bench_native_steps(knobs: Sequence[_Knob], n: int, seed: int = 0) -> float:
    """Runs the benchmark's digest loop ``n`` times natively; the seconds it took."""
