"""A real Python workload tuned live by hotpath (about a minute):

    python crates/hotpath-py/examples/pipeline.py [--tune-seconds 40] [--seed 1]

A producer thread generates JSON records at a steady rate; a batcher
groups them and hands each batch to a thread pool, whose workers compress
it (``none``, ``zlib`` or ``lzma`` from the standard library), hash it
(SHA-256) and send it over a shared link: a per-send overhead plus the
bytes at a fixed bandwidth, one send at a time (a stand-in for a network
connection; the compression and hashing are real CPU work). The latency of
a record is the time from its creation to the end of its batch's send.

Three knobs are tuned live, read by the batcher through a lock-free
``hotpath.Reader`` for every batch:

* ``batch_size`` (int): records per batch, at most;
* ``flush_interval_ms`` (real, log scale): how long a partial batch may wait;
* ``codec`` (choice): ``none`` sends many bytes, ``lzma`` spends much CPU,
  ``zlib`` is in between.

The control loop measures the mean latency per record of the batches made
under the live configuration and feeds it to ``engine.step`` with that
generation; every change goes through the executor's guardrails. The run
measures the latency at the initial settings, tunes, then measures it at
the tuned settings (the engine's centre), and prints both.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import lzma
import queue
import random
import threading
import time
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import hotpath

RATE = 2500  # records per second
SEND_OVERHEAD_S = 0.0015  # per send, on the link
BANDWIDTH = 1_500_000  # bytes per second, on the link
INITIAL = {"batch_size": 128, "flush_interval_ms": 100.0, "codec": "lzma"}

CODECS: Dict[str, Callable[[bytes], bytes]] = {
    "none": lambda data: data,
    "zlib": lambda data: zlib.compress(data, 6),
    "lzma": lambda data: lzma.compress(data, preset=6),
}


def make_records(seed: int, count: int = 4096) -> List[bytes]:
    """Generated JSON records (~300 bytes, compressible as logs are)."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "cache", "miss", "hit", "user", "order",
             "shipped", "pending", "region", "eu-west", "us-east", "latency", "retry"]
    records = []
    for i in range(count):
        record = {
            "id": i,
            "user": f"u{rng.randrange(50_000):05d}",
            "event": rng.choice(words),
            "tags": rng.sample(words, 4),
            "amount": round(rng.uniform(0, 500), 2),
            "message": " ".join(rng.choice(words) for _ in range(18)),
        }
        records.append(json.dumps(record).encode())
    return records


class Stats:
    """Latencies of finished records, by the generation they were batched
    under."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_generation: Dict[int, Tuple[float, int]] = {}

    def add(self, generation: int, latency_sum: float, count: int) -> None:
        with self.lock:
            total, n = self.by_generation.get(generation, (0.0, 0))
            self.by_generation[generation] = (total + latency_sum, n + count)

    def take(self, generation: int) -> Tuple[float, int]:
        """The latency sum and count for ``generation`` since the last take
        (other generations' are dropped: measured under another config)."""
        with self.lock:
            taken = self.by_generation.pop(generation, (0.0, 0))
            self.by_generation.clear()
            return taken


class Pipeline:
    """Producer, batcher and workers, reading their knobs from ``knobs()``."""

    def __init__(self, knobs: Callable[[], Tuple[int, Dict[str, object]]], seed: int) -> None:
        self.knobs = knobs
        self.records = make_records(seed)
        self.inbox: "queue.Queue[Tuple[float, bytes]]" = queue.Queue()
        self.stats = Stats()
        self.link = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.produce, daemon=True),
                        threading.Thread(target=self.batch, daemon=True)]

    def start(self) -> "Pipeline":
        for t in self.threads:
            t.start()
        return self

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.pool.shutdown(wait=True)

    def produce(self) -> None:
        period = 1.0 / RATE
        due = time.perf_counter()
        i = 0
        while not self.stop.is_set():
            now = time.perf_counter()
            while due <= now:
                self.inbox.put((due, self.records[i % len(self.records)]))
                i += 1
                due += period
            time.sleep(max(0.0, due - time.perf_counter()))

    def batch(self) -> None:
        while not self.stop.is_set():
            generation, values = self.knobs()
            size = int(values["batch_size"])  # type: ignore[arg-type]
            linger = float(values["flush_interval_ms"]) / 1000.0  # type: ignore[arg-type]
            codec = str(values["codec"])
            try:
                first = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.perf_counter() + linger
            while len(batch) < size:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    batch.append(self.inbox.get(timeout=left))
                except queue.Empty:
                    break
            self.pool.submit(self.send, generation, codec, batch)

    def send(self, generation: int, codec: str, batch: List[Tuple[float, bytes]]) -> None:
        payload = CODECS[codec](b"\n".join(record for _, record in batch))
        digest = hashlib.sha256(payload).hexdigest()
        with self.link:
            time.sleep(SEND_OVERHEAD_S + len(payload) / BANDWIDTH)
        done = time.perf_counter()
        assert len(digest) == 64
        self.stats.add(generation, sum(done - created for created, _ in batch), len(batch))


def measure(values: Dict[str, object], seconds: float, seed: int) -> float:
    """Mean latency per record (ms) at fixed ``values``, after a warm-up."""
    pipeline = Pipeline(lambda: (0, values), seed).start()
    time.sleep(1.0)
    pipeline.stats.take(0)
    time.sleep(seconds)
    total, count = pipeline.stats.take(0)
    pipeline.close()
    return 1000.0 * total / max(count, 1)


def tune(seconds: float, seed: int) -> Dict[str, object]:
    """Runs the pipeline under the engine for ``seconds``; the centre."""
    engine = hotpath.Engine(
        [
            hotpath.Int("batch_size", 8, 256, INITIAL["batch_size"], log=True),  # type: ignore[arg-type]
            hotpath.Real("flush_interval_ms", 1.0, 200.0, INITIAL["flush_interval_ms"], log=True),  # type: ignore[arg-type]
            hotpath.Choice("codec", list(CODECS), str(INITIAL["codec"])),
        ],
        guardrails=hotpath.Guardrails.aggressive(),
        seed=seed,
        eval_window_digests=3,
        eval_window_us=3_000_000,
        settle_time_us=300_000,
    )
    reader = engine.reader()

    def knobs() -> Tuple[int, Dict[str, object]]:
        snap = reader.get()
        return snap.generation, snap.values

    pipeline = Pipeline(knobs, seed).start()
    started = time.monotonic()
    shown = 0.0
    applied = refused = 0
    latency: Optional[float] = None
    while time.monotonic() - started < seconds:
        time.sleep(0.25)
        snap = reader.get()
        total, count = pipeline.stats.take(snap.generation)
        if count < 50:
            continue
        latency = 1000.0 * total / count
        decision = engine.step(latency, count, generation=snap.generation)
        applied += decision.applied
        refused += decision.violation is not None
        elapsed = time.monotonic() - started
        if elapsed - shown >= 2.0:
            shown = elapsed
            v = snap.values
            print(f"  t={elapsed:5.1f}s gen={snap.generation:3d} batch={v['batch_size']:3d} "
                  f"flush={v['flush_interval_ms']:6.1f}ms codec={v['codec']:<4} "
                  f"latency={latency:7.2f}ms  applied={applied} refused={refused}", flush=True)
    pipeline.close()
    status = engine.status()
    engine.close()
    print(f"  {status['counts']['applied']} changes applied, {status['counts']['refused']} refused, "
          f"stage {status['engine']['stage']}, iteration {status['engine']['iteration']}")
    return status["centre"]["values"]


def shown(values: Dict[str, object]) -> str:
    """``values`` for people: reals to one decimal."""
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="hotpath tuning a Python pipeline live")
    parser.add_argument("--tune-seconds", type=float, default=40.0)
    parser.add_argument("--measure-seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"pipeline: {RATE} records/s, link {BANDWIDTH // 1000} kB/s + "
          f"{SEND_OVERHEAD_S * 1000:.1f} ms per send, 2 workers")
    print(f"measuring the initial settings ({shown(INITIAL)}) ...", flush=True)
    before = measure(INITIAL, args.measure_seconds, args.seed)
    print(f"  {before:.2f} ms per record")
    print(f"tuning live for {args.tune_seconds:.0f} s ...", flush=True)
    tuned = tune(args.tune_seconds, args.seed)
    print(f"measuring the tuned settings ({shown(tuned)}) ...", flush=True)
    after = measure(tuned, args.measure_seconds, args.seed)
    print(f"  {after:.2f} ms per record")
    print(f"before: {before:6.2f} ms per record at {shown(INITIAL)}")
    print(f"after:  {after:6.2f} ms per record at {shown(tuned)} ({before / after:.1f}x lower)")


if __name__ == "__main__":
    main()
