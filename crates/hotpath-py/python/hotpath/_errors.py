"""The exceptions hotpath raises: one hierarchy under :class:`Error`.

The Rust core's errors arrive as these classes with the Rust error's
message (its ``Display``) as their text; the HTTP client raises
:class:`ClientError`.
"""

from __future__ import annotations

from typing import Any, Optional


class Error(Exception):
    """The base of every error hotpath raises."""


class ConfigError(Error, ValueError):
    """A knob, a policy, an engine setting or a tuning config is invalid."""


class DigestError(Error, ValueError):
    """The engine refused a digest (NaN or infinite objective, zero
    samples, a time earlier than the previous digest's, …). Nothing
    changed."""


class Refused(Error):
    """The executor refused a request (a rollback without a baseline, a
    baseline while frozen, …).

    ``violation`` is the :class:`hotpath.Violation`: its ``kind``
    (``NoBaseline``, ``InSafeMode``, …), ``message`` and ``fields``.
    """

    def __init__(self, message: str, violation: Any = None) -> None:
        super().__init__(message)
        self.violation = violation

    @property
    def kind(self) -> Optional[str]:
        """The violation's kind, as in the audit log."""
        return None if self.violation is None else self.violation.kind

    @property
    def fields(self) -> "dict[str, Any]":
        """The violation's data (``index``, ``knob``, ``retry_at_us``, …)."""
        return {} if self.violation is None else self.violation.fields

    def __reduce__(self) -> Any:
        return (type(self), (str(self), None))


class StateError(Error):
    """The state file or the data directory cannot be used: corrupt, of
    another format, missing when required, not fitting the knobs, or a
    directory that cannot be made."""


class AuditLogError(Error):
    """The durable audit log cannot be opened, written or closed (held by
    another process, damaged before its end, stalled)."""


class ClosedError(Error, RuntimeError):
    """The engine was closed."""


class ClientError(Error):
    """A request to ``hotpath serve`` failed.

    ``status`` is the HTTP status (``None`` if the server could not be
    reached), ``code`` the API's error code (``unauthorized``,
    ``bad_telemetry``, …, or ``connection``) and ``message`` its message.
    """

    def __init__(self, message: str, status: Optional[int] = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.status, self.code))


for _class in (
    Error,
    ConfigError,
    DigestError,
    Refused,
    StateError,
    AuditLogError,
    ClosedError,
    ClientError,
):
    _class.__module__ = "hotpath"

__all__ = [
    "Error",
    "ConfigError",
    "DigestError",
    "Refused",
    "StateError",
    "AuditLogError",
    "ClosedError",
    "ClientError",
]
