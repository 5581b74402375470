"""A client of ``hotpath serve``, the governed tuner as an HTTP service.

Standard library only (``http.client``). The API it speaks:

* ``GET /v1/config``: ``{"generation": N, "values": {name: value}}``;
* ``GET /v1/config/watch``: Server-Sent Events, one ``config`` event per
  generation (``id`` = the generation), resumable with ``Last-Event-ID``;
* ``POST /v1/telemetry``: digests as JSON lines, ``202`` with counts;
* ``GET /v1/status``, ``GET /v1/audit?after=SEQ&limit=N``;
* ``POST /v1/freeze``, ``/v1/resume``, ``/v1/rollback``, ``/v1/baseline``.

Writes (telemetry and the operator calls) need the server's bearer token.

Thread safety: a :class:`Client` may be shared between threads (each
request opens its own connection; the telemetry buffer is locked). A
:class:`ConfigWatch` belongs to the thread iterating it, though any thread
may ``close()`` it.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._errors import ClientError, DigestError

__all__ = ["Client", "RemoteConfig", "ConfigWatch"]


class RemoteConfig:
    """One published configuration: its ``generation`` and ``values``
    (``{name: typed value}``). ``config["batch_size"]``, ``in``, ``len``,
    iteration, ``get``, ``keys`` and ``items`` read its values."""

    __slots__ = ("generation", "values")

    def __init__(self, generation: int, values: Dict[str, Any]) -> None:
        self.generation = generation
        self.values = values

    @classmethod
    def from_json(cls, document: Any) -> "RemoteConfig":
        """The configuration of a ``{"generation", "values"}`` document."""
        if not isinstance(document, dict) or not isinstance(document.get("values"), dict):
            raise ClientError(f"not a configuration: {document!r}", code="bad_response")
        generation = document.get("generation")
        if not isinstance(generation, int):
            raise ClientError(f"not a configuration: {document!r}", code="bad_response")
        return cls(generation, dict(document["values"]))

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The value of knob ``name``, or ``default``."""
        return self.values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def keys(self) -> List[str]:
        """The knobs' names (so ``dict(config)`` is ``config.values``)."""
        return list(self.values)

    def items(self) -> List[Tuple[str, Any]]:
        """``(name, value)`` pairs."""
        return list(self.values.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RemoteConfig):
            return NotImplemented
        return (self.generation, self.values) == (other.generation, other.values)

    def __hash__(self) -> int:
        return hash(self.generation)

    def __repr__(self) -> str:
        return f"RemoteConfig(generation={self.generation}, values={self.values!r})"


class _Response:
    """A response read whole: status, headers and the body."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Dict[str, Any]:
        """The body, a JSON object."""
        try:
            document = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ClientError(f"the server sent no JSON: {e}", self.status, "bad_response") from None
        if not isinstance(document, dict):
            raise ClientError(f"expected a JSON object, got {document!r}", self.status, "bad_response")
        return document


def _api_error(status: int, body: bytes) -> ClientError:
    """The error of a response: ``{"error": {"code", "message"}}`` if the
    server said so, the status otherwise."""
    try:
        error = json.loads(body.decode("utf-8"))["error"]
        return ClientError(str(error["message"]), status, str(error["code"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:200]
        return ClientError(f"HTTP {status}: {text}", status, "http")


_U64_MAX = 2**64 - 1


def _rust_float(value: float) -> str:
    """``value`` as the Rust core prints an ``f64`` (``NaN``, ``inf``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _checked_digest(
    objective: float,
    samples: int,
    fields: "Dict[str, Optional[int]]",
    margin: Optional[float],
) -> None:
    """Refuses, as the engine would, a digest the server would refuse: the
    whole batch it is posted in would be refused with it."""
    for name, value in (("objective", objective), ("margin", margin)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    for name, number in [("samples", samples), *fields.items()]:
        if number is None and name != "samples":
            continue
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"{name} must be an int, not {type(number).__name__}")
        if not 0 <= number <= _U64_MAX:
            raise DigestError(f"{name} = {number} is invalid: expected an integer in [0, {_U64_MAX}]")
    if not math.isfinite(objective):
        raise DigestError(f"objective value is not finite: {_rust_float(objective)}")
    if samples == 0:
        raise DigestError("digest summarises zero samples")
    if margin is not None and not math.isfinite(margin):
        raise DigestError(f"constraint margin is not finite: {_rust_float(margin)}")


class Client:
    """A client of ``hotpath serve`` at ``url`` (``http://host:port``).

    ``token`` is the server's bearer token (needed for telemetry and the
    operator calls). Telemetry given to :meth:`send` is buffered and posted
    as one request of JSON lines when ``batch_size`` digests are waiting,
    when the oldest has waited ``flush_interval`` seconds (a background
    thread checks), on :meth:`flush` and on :meth:`close`; a client used as
    a context manager closes on exit.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:7070",
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        instance: Optional[str] = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ClientError(f"expected an http://host:port URL, got {url!r}", code="bad_url")
        if batch_size < 1:
            raise ClientError(f"batch_size must be at least 1, got {batch_size}", code="bad_option")
        if not flush_interval > 0:
            raise ClientError(
                f"flush_interval must be positive, got {flush_interval}", code="bad_option"
            )
        self.url = url.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._prefix = parsed.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.instance = instance
        self._lock = threading.Lock()
        self._buffer: List[Dict[str, Any]] = []
        self._oldest = 0.0
        self._error: Optional[ClientError] = None
        self._stats = {"sent": 0, "batches": 0, "accepted": 0, "stale": 0, "dropped": 0}
        self._closed = threading.Event()
        self._flusher: Optional[threading.Thread] = None

    # -- HTTP ------------------------------------------------------------

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, auth: bool, content_type: Optional[str] = None) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if auth:
            if not self.token:
                raise ClientError("this call needs the server's token", None, "no_token")
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        *,
        auth: bool = False,
        content_type: Optional[str] = None,
    ) -> _Response:
        headers = self._headers(auth, content_type)
        connection = self._connection(self.timeout)
        try:
            connection.request(method, self._prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise ClientError(f"{method} {self.url}{path}: {e}", None, "connection") from None
        finally:
            connection.close()
        if response.status >= 400:
            raise _api_error(response.status, data)
        return _Response(response.status, data)

    def _get(self, path: str) -> Dict[str, Any]:
        return self._request("GET", path).json()

    def _post(self, path: str) -> Dict[str, Any]:
        return self._request("POST", path, b"", auth=True).json()

    # -- reads -----------------------------------------------------------

    def config(self) -> RemoteConfig:
        """The live configuration (``GET /v1/config``)."""
        return RemoteConfig.from_json(self._get("/v1/config"))

    def status(self) -> Dict[str, Any]:
        """The tuner's status (``GET /v1/status``): generation and values,
        safe mode, baseline, engine stage, counts, the audit log."""
        return self._get("/v1/status")

    def audit(self, after: Optional[int] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """A page of recent audit events (``GET /v1/audit``): ``events``
        (oldest first), ``next_after`` (pass it as ``after`` to read on),
        ``oldest_seq`` and ``truncated``."""
        query = {k: v for k, v in (("after", after), ("limit", limit)) if v is not None}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self._get(f"/v1/audit{suffix}")

    def healthy(self) -> bool:
        """``True`` if the server answers ``/healthz``."""
        try:
            self._request("GET", "/healthz")
            return True
        except ClientError:
            return False

    def watch(
        self,
        last_event_id: Optional[int] = None,
        *,
        reconnect: bool = True,
        retry: float = 1.0,
        max_retries: Optional[int] = None,
        read_timeout: float = 60.0,
    ) -> "ConfigWatch":
        """An iterator over the published configurations
        (``GET /v1/config/watch``): the current one first (unless
        ``last_event_id`` is at least its generation), then one per new
        generation. A dropped stream is reopened with ``Last-Event-ID`` after
        ``retry`` seconds (or the server's ``retry:``), at most
        ``max_retries`` times in a row (``None``: for ever), unless
        ``reconnect`` is false; a stream silent for ``read_timeout`` seconds
        (the server sends keep-alives) counts as dropped."""
        return ConfigWatch(self, last_event_id, reconnect, retry, max_retries, read_timeout)

    # -- telemetry -------------------------------------------------------

    def send(
        self,
        objective: float,
        samples: int,
        *,
        generation: Optional[int] = None,
        margin: Optional[float] = None,
        window_us: Optional[int] = None,
        t_us: Optional[int] = None,
        instance: Optional[str] = None,
    ) -> None:
        """Buffers one digest (the objective over ``samples`` samples,
        measured under ``generation``); posts the buffer when it holds
        ``batch_size`` digests. A digest the server would refuse raises
        :class:`hotpath.DigestError` here (with the engine's message) and is
        not buffered; the error of an earlier background flush, if one
        failed, is raised too."""
        ints = {"generation": generation, "window_us": window_us, "t_us": t_us}
        _checked_digest(objective, samples, ints, margin)
        digest: Dict[str, Any] = {"objective": objective, "samples": samples}
        for key, value in (
            ("t_us", t_us),
            ("generation", generation),
            ("margin", margin),
            ("window_us", window_us),
            ("instance", instance if instance is not None else self.instance),
        ):
            if value is not None:
                digest[key] = value
        with self._lock:
            self._raise_pending()
            if self._closed.is_set():
                raise ClientError("the client is closed", None, "closed")
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(digest)
            full = len(self._buffer) >= self.batch_size
            self._start_flusher()
        if full:
            self.flush()

    def flush(self) -> Optional[Dict[str, Any]]:
        """Posts the buffered digests now; the server's counts
        (``accepted``, ``stale``, ``generation``), or ``None`` if nothing
        was waiting. A failed post drops its digests (counted in
        :attr:`stats`) and raises :class:`ClientError`."""
        with self._lock:
            self._raise_pending()
            batch, self._buffer = self._buffer, []
        return self._post_batch(batch)

    def _post_batch(self, batch: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if not batch:
            return None
        body = "".join(json.dumps(d) + "\n" for d in batch).encode("utf-8")
        try:
            counts = self._request(
                "POST", "/v1/telemetry", body, auth=True, content_type="application/x-ndjson"
            ).json()
        except ClientError:
            with self._lock:
                self._stats["dropped"] += len(batch)
            raise
        with self._lock:
            self._stats["sent"] += len(batch)
            self._stats["batches"] += 1
            self._stats["accepted"] += int(counts.get("accepted", 0))
            self._stats["stale"] += int(counts.get("stale", 0))
        return counts

    def _raise_pending(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_when_due, name="hotpath-client-flush", daemon=True
            )
            self._flusher.start()

    def _flush_when_due(self) -> None:
        tick = min(self.flush_interval / 4, 0.25)
        while not self._closed.wait(tick):
            with self._lock:
                due = bool(self._buffer) and time.monotonic() - self._oldest >= self.flush_interval
                batch = self._buffer if due else []
                if due:
                    self._buffer = []
            if batch:
                try:
                    self._post_batch(batch)
                except ClientError as e:
                    with self._lock:
                        self._error = e

    @property
    def stats(self) -> Dict[str, int]:
        """Telemetry counters: digests ``sent``, ``batches`` posted, digests
        ``accepted`` and ``stale`` by the server, digests ``dropped`` by
        failed posts, and ``buffered`` now."""
        with self._lock:
            return dict(self._stats, buffered=len(self._buffer))

    def close(self) -> None:
        """Flushes the buffered digests and stops the background flusher."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._raise_pending()
        self._post_batch(batch)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- operator calls --------------------------------------------------

    def freeze(self) -> Dict[str, Any]:
        """The manual kill switch (``POST /v1/freeze``): the reply
        (``action``, ``changed``, ``generation``, ``safe_mode``)."""
        return self._post("/v1/freeze")

    def resume(self) -> Dict[str, Any]:
        """Clears the manual latches (``POST /v1/resume``); the reply has
        ``cleared``."""
        return self._post("/v1/resume")

    def rollback(self) -> Dict[str, Any]:
        """Restores the baseline (``POST /v1/rollback``); the reply has
        ``previous_generation`` and ``circuit_breaker_tripped``."""
        return self._post("/v1/rollback")

    def set_baseline(self) -> Dict[str, Any]:
        """Records the centre as the baseline (``POST /v1/baseline``); the
        reply has ``baseline_generation``."""
        return self._post("/v1/baseline")

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class ConfigWatch(Iterator[RemoteConfig]):
    """The iterator :meth:`Client.watch` returns. ``close()`` (from any
    thread) ends it; so does leaving a ``with`` block."""

    def __init__(
        self,
        client: Client,
        last_event_id: Optional[int],
        reconnect: bool,
        retry: float,
        max_retries: Optional[int],
        read_timeout: float,
    ) -> None:
        self._client = client
        self.last_event_id = last_event_id
        self._reconnect = reconnect
        self._retry = retry
        self._max_retries = max_retries
        self._read_timeout = read_timeout
        self._closed = threading.Event()
        self._connection: Optional[http.client.HTTPConnection] = None
        self._socket: Optional[socket.socket] = None
        self._response: Optional[http.client.HTTPResponse] = None
        self.reconnects = 0
        """Streams reopened so far."""

    def __iter__(self) -> "ConfigWatch":
        return self

    def __next__(self) -> RemoteConfig:
        failures = 0
        while not self._closed.is_set():
            try:
                if self._response is None:
                    self._open()
                event = self._next_event()
                if event is not None:
                    return event
                raise ClientError("the watch stream ended", None, "stream_ended")
            except ClientError as e:
                self._drop()
                if self._closed.is_set():
                    break
                fatal = e.status is not None and e.status < 500
                if not self._reconnect or fatal:
                    raise
                failures += 1
                if self._max_retries is not None and failures > self._max_retries:
                    raise
                self.reconnects += 1
                self._closed.wait(self._retry)
        raise StopIteration

    def _open(self) -> None:
        client = self._client
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        connection = client._connection(self._read_timeout)
        self._connection = connection
        try:
            connection.connect()
            # Kept apart: the connection lets go of its socket once the
            # response says `Connection: close`, and close() must reach it.
            self._socket = connection.sock
            if self._closed.is_set():
                raise ClientError("the watch is closed", None, "closed")
            connection.request("GET", client._prefix + "/v1/config/watch", headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise ClientError(f"watch {client.url}: {e}", None, "connection") from None
        if response.status != 200:
            raise _api_error(response.status, response.read())
        self._response = response

    def _next_event(self) -> Optional[RemoteConfig]:
        """Reads lines until a ``config`` event is complete; ``None`` at
        the end of the stream."""
        response = self._response
        if response is None:
            return None
        event, event_id = "", None
        data: List[str] = []
        while True:
            try:
                raw = response.readline()
            except (OSError, socket.timeout, http.client.HTTPException, ValueError) as e:
                raise ClientError(f"watch stream: {e}", None, "connection") from None
            if not raw:
                return None
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if event_id is not None:
                    self.last_event_id = event_id
                if data and event in ("", "config"):
                    try:
                        return RemoteConfig.from_json(json.loads("\n".join(data)))
                    except ValueError as e:
                        raise ClientError(f"bad event data: {e}", None, "bad_response") from None
                event, event_id, data = "", None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id" and value.isdigit():
                event_id = int(value)
            elif name == "retry" and value.isdigit():
                self._retry = int(value) / 1000.0

    def _drop(self) -> None:
        connection, self._connection, self._response = self._connection, None, None
        self._socket = None
        if connection is not None:
            try:
                connection.close()
            except OSError:
                pass

    def close(self) -> None:
        """Ends the iteration (from any thread) and closes the stream."""
        self._closed.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._drop()

    def __enter__(self) -> "ConfigWatch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
