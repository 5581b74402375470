"""Sharing the engine and its readers between threads."""

from __future__ import annotations

import threading
from typing import List

import hotpath
from conftest import bowl, knobs


def valid(values: dict) -> bool:
    return (
        isinstance(values["batch_size"], int)
        and 1 <= values["batch_size"] <= 512
        and 0.1 <= values["linger_ms"] <= 100.0
        and values["codec"] in ("none", "zlib", "lzma")
    )


def test_readers_in_threads_see_consistent_rising_generations() -> None:
    engine = hotpath.Engine(knobs(), seed=2, manual_clock=True)
    stop = threading.Event()
    shared = engine.reader()
    problems: List[str] = []
    reads = [0] * 6

    def read(index: int) -> None:
        reader = shared if index % 2 else engine.reader()
        last = -1
        while not stop.is_set():
            snap = reader.get()
            if snap.generation < last:
                problems.append(f"generation went back: {last} -> {snap.generation}")
            if not valid(snap.values):
                problems.append(f"invalid snapshot {snap!r}")
            last = snap.generation
            reads[index] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    reader = engine.reader()
    for _ in range(400):
        engine.advance_clock(100_000)
        snap = reader.get()
        engine.step(bowl(snap), 50, generation=snap.generation)
    stop.set()
    for t in threads:
        t.join()
    assert not problems, problems[:5]
    assert engine.generation > 10 and all(n > 0 for n in reads)


def test_steps_and_operator_calls_from_many_threads() -> None:
    engine = hotpath.Engine(knobs(), seed=2)
    errors: List[BaseException] = []
    per_thread = 200

    def work(index: int) -> None:
        reader = engine.reader()
        try:
            for i in range(per_thread):
                snap = reader.get()
                engine.step(bowl(snap), 10, generation=snap.generation)
                if index == 0 and i % 50 == 0:
                    engine.status()
                    engine.audit(limit=5)
                if index == 1 and i == 100:
                    engine.freeze()
                    engine.resume()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert engine.status()["counts"]["engine"]["digests"] == 4 * per_thread
    engine.close()


def test_native_work_releases_the_gil() -> None:
    """While the extension works (here its native step loop, which runs
    the same code with the GIL released as ``Engine.step``), other Python
    threads run: a counter thread keeps counting through the call."""
    done = threading.Event()
    counted = [0]

    def native() -> None:
        hotpath._bench_native_steps([hotpath.Real("x", 0.0, 10.0, 5.0)], 300_000)
        done.set()

    worker = threading.Thread(target=native)
    worker.start()
    while not done.is_set():
        counted[0] += 1
    worker.join()
    assert counted[0] > 10_000, counted[0]
