"""The client against a real ``hotpath serve``: started from the built
``hotpath`` binary (``$HOTPATH_BIN``, else the workspace's target/), and
skipped with the reason when that binary has no ``serve`` subcommand."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import textwrap
import time
from typing import Iterator, Tuple

import pytest

import hotpath
from conftest import serve_binary

CONFIG = textwrap.dedent(
    """
    seed = 9

    [[param]]
    name = "batch_size"
    min = 1
    max = 512
    initial = 64

    [guardrails]
    preset = "aggressive"

    [spsa]
    eval_window_digests = 1
    eval_window_us = 200000
    settle_time_us = 0
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, str]]:
    """A running ``hotpath serve`` on a free loopback port: (url, token)."""
    binary = serve_binary()
    root = tmp_path_factory.mktemp("serve")
    config = root / "tuning.toml"
    config.write_text(CONFIG)
    data = root / "data"
    process = subprocess.Popen(
        [str(binary), "serve", "--config", str(config), "--data", str(data),
         "--listen", "127.0.0.1:0", "--window-ms", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"listening on (http://\S+)", line)
            url = found.group(1) if found else None
        if url is None:
            _, err = process.communicate(timeout=5)
            pytest.fail(f"hotpath serve did not start: {err}")
        token = (data / "token").read_text().splitlines()[0].strip()
        yield url, token
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_reads(served: Tuple[str, str]) -> None:
    url, _ = served
    client = hotpath.Client(url)
    config = client.config()
    assert set(config) == {"batch_size"}
    status = client.status()
    assert status["generation"] == config.generation
    assert {"safe_mode", "engine", "counts"} <= set(status)
    page = client.audit(limit=5)
    assert {"events", "next_after", "truncated"} <= set(page)
    assert client.healthy()


def test_telemetry_tunes_and_watch_sees_it(served: Tuple[str, str]) -> None:
    url, token = served
    client = hotpath.Client(url, token=token, batch_size=1, flush_interval=0.05)
    watch = client.watch(read_timeout=10)
    start = next(watch)
    deadline = time.monotonic() + 30
    seen = start
    while seen.generation == start.generation and time.monotonic() < deadline:
        live = client.config()
        objective = 1.0 + ((live["batch_size"] - 300) / 100.0) ** 2
        client.send(objective, 50, generation=live.generation)
        time.sleep(0.01)
        if client.config().generation != start.generation:
            seen = next(watch)
    watch.close()
    client.close()
    assert seen.generation > start.generation, "the tuner moved and the watch saw it"
    assert client.stats["sent"] > 0 and client.stats["dropped"] == 0


def test_operator_calls(served: Tuple[str, str]) -> None:
    url, token = served
    client = hotpath.Client(url, token=token)
    reply = client.freeze()
    assert reply["action"] == "freeze" and reply["safe_mode"]["active"]
    assert "Manual" in client.resume()["cleared"]
    assert client.set_baseline()["action"] == "baseline"
    assert client.rollback()["action"] == "rollback"


def test_errors(served: Tuple[str, str]) -> None:
    url, token = served
    with pytest.raises(hotpath.ClientError) as caught:
        hotpath.Client(url, token="not-the-token-at-all").freeze()
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    client = hotpath.Client(url, token=token, flush_interval=60)
    client.send(1.0, 5, generation=client.config().generation, instance="x" * 10_000)
    with pytest.raises(hotpath.ClientError) as caught:
        client.flush()
    assert (caught.value.status, caught.value.code) == (400, "bad_telemetry")
    with pytest.raises(hotpath.DigestError, match="^objective value is not finite: NaN$"):
        client.send(math.nan, 10)
    with pytest.raises(hotpath.ClientError) as caught:
        client.audit(limit=100_000)
    assert caught.value.status == 400


def test_watch_resumes_from_an_event_id(served: Tuple[str, str]) -> None:
    url, _ = served
    client = hotpath.Client(url)
    current = client.config().generation
    with client.watch(last_event_id=current - 1 if current else None, read_timeout=10) as watch:
        assert next(watch).generation == current

