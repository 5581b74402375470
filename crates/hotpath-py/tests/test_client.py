"""The HTTP client against the stand-in server (fake_serve.py): reads,
telemetry batching, the operator calls, errors, and the watch stream's
reconnection with Last-Event-ID."""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import Any, Iterator

import pytest

import hotpath
from fake_serve import TOKEN, FakeServe


@pytest.fixture
def fake() -> Iterator[FakeServe]:
    server = FakeServe()
    yield server
    server.close()


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_reads(fake: FakeServe) -> None:
    client = hotpath.Client(fake.url)
    config = client.config()
    assert (config.generation, config.values) == (0, {"batch_size": 64, "codec": "zlib"})
    assert config["codec"] == "zlib" and dict(config) == config.values and len(config) == 2
    assert config == hotpath.RemoteConfig(0, {"batch_size": 64, "codec": "zlib"})
    assert repr(config) == "RemoteConfig(generation=0, values={'batch_size': 64, 'codec': 'zlib'})"
    assert client.status()["generation"] == 0
    client.audit(after=5, limit=10)
    client.audit()
    assert fake.queries == ["after=5&limit=10", ""]
    assert client.healthy()
    assert repr(client) == f"Client({fake.url!r})"


def test_operator_calls(fake: FakeServe) -> None:
    client = hotpath.Client(fake.url, token=TOKEN)
    assert client.freeze()["action"] == "freeze"
    client.resume()
    client.rollback()
    client.set_baseline()
    assert fake.operator == ["freeze", "resume", "rollback", "baseline"]


def test_writes_need_the_token(fake: FakeServe) -> None:
    with pytest.raises(hotpath.ClientError) as caught:
        hotpath.Client(fake.url).freeze()
    assert (caught.value.status, caught.value.code) == (None, "no_token")
    with pytest.raises(hotpath.ClientError) as caught:
        hotpath.Client(fake.url, token="wrong").freeze()
    e = caught.value
    assert (e.status, e.code, e.message) == (403, "forbidden", "the bearer token is not the server's")
    assert fake.operator == []


def test_telemetry_is_batched_by_size(fake: FakeServe) -> None:
    client = hotpath.Client(fake.url, token=TOKEN, batch_size=3, flush_interval=60)
    client.send(1.5, 10)
    client.send(1.4, 12, generation=0, margin=0.5, window_us=100_000, t_us=7, instance="a")
    assert fake.telemetry == []
    client.send(1.3, 11, generation=5)
    assert fake.telemetry == [[
        {"objective": 1.5, "samples": 10},
        {"objective": 1.4, "samples": 12, "t_us": 7, "generation": 0, "margin": 0.5,
         "window_us": 100_000, "instance": "a"},
        {"objective": 1.3, "samples": 11, "generation": 5},
    ]]
    assert client.stats == {"sent": 3, "batches": 1, "accepted": 2, "stale": 1, "dropped": 0, "buffered": 0}
    client.close()


def test_telemetry_is_flushed_by_time(fake: FakeServe) -> None:
    client = hotpath.Client(fake.url, token=TOKEN, batch_size=100, flush_interval=0.1, instance="w1")
    client.send(2.0, 5)
    wait_for(lambda: fake.telemetry)
    assert fake.telemetry == [[{"objective": 2.0, "samples": 5, "instance": "w1"}]]
    client.close()


def test_flush_and_close(fake: FakeServe) -> None:
    with hotpath.Client(fake.url, token=TOKEN, flush_interval=60) as client:
        assert client.flush() is None
        client.send(1.0, 1)
        assert client.flush() == {"accepted": 1, "stale": 0, "generation": 0}
        client.send(1.0, 2)
    assert [len(batch) for batch in fake.telemetry] == [1, 1]
    with pytest.raises(hotpath.ClientError, match="closed"):
        client.send(1.0, 3)
    client.close()


def test_a_refused_batch_is_dropped_and_raised(fake: FakeServe) -> None:
    fake.max_digests = 2
    client = hotpath.Client(fake.url, token=TOKEN, batch_size=3, flush_interval=60)
    client.send(1.0, 1)
    client.send(1.0, 1)
    with pytest.raises(hotpath.ClientError) as caught:
        client.send(1.0, 1)
    assert (caught.value.status, caught.value.code) == (413, "too_large")
    assert client.stats["dropped"] == 3
    bad_token = hotpath.Client(fake.url, token="wrong", flush_interval=0.05)
    bad_token.send(1.0, 1)
    wait_for(lambda: bad_token.stats["dropped"] == 1)
    with pytest.raises(hotpath.ClientError) as caught:
        bad_token.send(1.0, 1)
    assert caught.value.status == 403, "the background flush's error surfaces"
    bad_token._closed.set()


def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = hotpath.Client(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(hotpath.ClientError) as caught:
        client.config()
    assert (caught.value.status, caught.value.code) == (None, "connection")
    assert not client.healthy()
    with pytest.raises(hotpath.ClientError) as caught:
        next(client.watch(retry=0.01, max_retries=2))
    assert caught.value.code == "connection"


@pytest.mark.parametrize(
    "kwargs",
    [dict(url="https://x"), dict(url="nonsense"), dict(batch_size=0), dict(flush_interval=0)],
)
def test_bad_options(kwargs: Any) -> None:
    with pytest.raises(hotpath.ClientError):
        hotpath.Client(**kwargs)


def test_unknown_routes_are_typed_errors(fake: FakeServe) -> None:
    client = hotpath.Client(fake.url)
    with pytest.raises(hotpath.ClientError) as caught:
        client._get("/v1/nope")
    assert (caught.value.status, caught.value.code) == (404, "not_found")


def test_watch_streams_configs_and_resumes_after_a_drop(fake: FakeServe) -> None:
    fake.drop_after = 2
    client = hotpath.Client(fake.url)
    watch = client.watch(retry=0.01)
    seen = [next(watch)]
    assert seen[0] == hotpath.RemoteConfig(0, {"batch_size": 64, "codec": "zlib"})
    for n in range(1, 6):
        fake.publish(batch_size=64 + n)
        seen.append(next(watch))
    assert [c.generation for c in seen] == [0, 1, 2, 3, 4, 5], "no repeats, no gaps"
    assert seen[-1]["batch_size"] == 69
    assert watch.last_event_id == 5
    assert watch.reconnects >= 2
    assert fake.watch_requests[0] is None
    assert fake.watch_requests[1] == "1", "reconnected with Last-Event-ID"
    watch.close()
    with pytest.raises(StopIteration):
        next(watch)


def test_watch_from_an_event_id(fake: FakeServe) -> None:
    fake.publish(codec="lzma")
    with hotpath.Client(fake.url).watch(last_event_id=1) as watch:
        timer = threading.Timer(0.1, lambda: fake.publish(codec="none"))
        timer.start()
        assert next(watch).generation == 2
        timer.join()


def test_watch_close_from_another_thread(fake: FakeServe) -> None:
    watch = hotpath.Client(fake.url).watch()
    next(watch)
    threading.Timer(0.1, watch.close).start()
    started = time.monotonic()
    assert list(watch) == []
    assert time.monotonic() - started < 5


def test_watch_without_reconnect_raises_when_the_stream_ends(fake: FakeServe) -> None:
    fake.drop_after = 1
    watch = hotpath.Client(fake.url).watch(reconnect=False)
    next(watch)
    with pytest.raises(hotpath.ClientError) as caught:
        next(watch)
    assert caught.value.code == "stream_ended"


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((math.nan, 1), {}, "objective value is not finite: NaN"),
        ((math.inf, 1), {}, "objective value is not finite: inf"),
        ((1.0, 0), {}, "digest summarises zero samples"),
        ((1.0, -1), {}, "samples = -1 is invalid: expected an integer in [0, 18446744073709551615]"),
        ((1.0, 1), {"margin": -math.inf}, "constraint margin is not finite: -inf"),
        ((1.0, 1), {"generation": -2}, "generation = -2 is invalid: expected an integer in [0, 18446744073709551615]"),
        ((1.0, 1), {"t_us": 2**64}, "t_us = 18446744073709551616 is invalid: expected an integer in [0, 18446744073709551615]"),
    ],
)
def test_digests_the_server_would_refuse_are_refused_at_once(fake: FakeServe, args: Any, kwargs: Any, message: str) -> None:
    client = hotpath.Client(fake.url, token=TOKEN, flush_interval=60)
    client.send(1.0, 1)
    with pytest.raises(hotpath.DigestError) as caught:
        client.send(*args, **kwargs)
    assert str(caught.value) == message
    assert client.flush() == {"accepted": 1, "stale": 0, "generation": 0}, "the good one still goes"


@pytest.mark.parametrize("args", [("1", 1), (1.0, 1.5), (True, 1), (1.0, None)])
def test_digests_of_the_wrong_types(fake: FakeServe, args: Any) -> None:
    with pytest.raises(TypeError):
        hotpath.Client(fake.url, token=TOKEN).send(*args)
