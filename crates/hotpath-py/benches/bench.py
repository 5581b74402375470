"""Bounded benchmarks of the Python binding (a few seconds in all):

1. ``reader.get()`` on an unchanged configuration against a plain ``dict``
   lookup, in the same run (target: at most 5x);
2. the binding's overhead: the per-step time of the digest loop driven
   from Python (``advance_clock``, ``reader.get()``, the objective,
   ``engine.step``) against the same loop run natively inside the extension
   (``hotpath._bench_native_steps``), on the same engine settings and seed
   (target: at most 5x).

    python crates/hotpath-py/benches/bench.py            # about 5 s (2 cores)
    python crates/hotpath-py/benches/bench.py --check    # exit 1 past a target

Each figure is the best of ``--repeat`` runs (the least disturbed by the
other work on the machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from typing import Callable, Dict

import hotpath

KNOBS = [hotpath.Real("x", 0.0, 10.0, 5.0)]
TARGET = 5.0


def best_ns(run: Callable[[int], float], number: int, repeat: int) -> float:
    """Nanoseconds per operation: the best of ``repeat`` runs of ``number``,
    after one run not counted (warming caches and the allocator)."""
    run(number)
    return min(run(number) for _ in range(repeat)) / number * 1e9


def reads(number: int, repeat: int) -> Dict[str, float]:
    engine = hotpath.Engine(KNOBS + [hotpath.Int("batch_size", 1, 512, 64)], manual_clock=True)
    reader = engine.reader()
    reader.get()
    plain = {"x": 5.0, "batch_size": 64}
    scope = {"reader": reader, "plain": plain}
    timer = lambda stmt: (lambda n: timeit.timeit(stmt, globals=scope, number=n))  # noqa: E731
    out = {
        "dict_lookup_ns": best_ns(timer('plain["batch_size"]'), number, repeat),
        "reader_get_ns": best_ns(timer("reader.get()"), number, repeat),
        "reader_get_item_ns": best_ns(timer('reader.get()["batch_size"]'), number, repeat),
    }
    engine.close()
    out["get_vs_dict"] = out["reader_get_ns"] / out["dict_lookup_ns"]
    out["get_item_vs_dict"] = out["reader_get_item_ns"] / out["dict_lookup_ns"]
    return out


def python_steps(n: int) -> float:
    """Seconds for ``n`` steps of the loop driven from Python."""
    engine = hotpath.Engine(KNOBS, seed=0, manual_clock=True)
    reader = engine.reader()
    advance, get, step = engine.advance_clock, reader.get, engine.step
    start = timeit.default_timer()
    for _ in range(n):
        advance(100_000)
        snap = get()
        step(1.0 + (snap["x"] - 3.0) ** 2 / 100.0, 50, generation=snap.generation)
    elapsed = timeit.default_timer() - start
    engine.close()
    return elapsed


def steps(number: int, repeat: int) -> Dict[str, float]:
    out = {
        "python_step_ns": best_ns(python_steps, number, repeat),
        "native_step_ns": best_ns(lambda n: hotpath._bench_native_steps(KNOBS, n), number, repeat),
    }
    out["python_vs_native"] = out["python_step_ns"] / out["native_step_ns"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=500_000, help="reads per run")
    parser.add_argument("--steps", type=int, default=50_000, help="steps per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio is past 5x")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    figures = {**reads(args.reads, args.repeat), **steps(args.steps, args.repeat)}
    figures["python"] = platform.python_version()
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"hotpath {hotpath.__version__}, CPython {figures['python']}, best of {args.repeat}")
        print(f"  dict lookup                  {figures['dict_lookup_ns']:8.1f} ns")
        print(f"  reader.get() (unchanged)     {figures['reader_get_ns']:8.1f} ns   "
              f"{figures['get_vs_dict']:.2f}x the dict lookup")
        print(f"  reader.get()['batch_size']   {figures['reader_get_item_ns']:8.1f} ns   "
              f"{figures['get_item_vs_dict']:.2f}x")
        print(f"  step loop, native            {figures['native_step_ns']:8.1f} ns")
        print(f"  step loop, from Python       {figures['python_step_ns']:8.1f} ns   "
              f"{figures['python_vs_native']:.2f}x native")
    over = [k for k in ("get_vs_dict", "python_vs_native") if figures[k] > TARGET]
    if args.check and over:
        print(f"past the {TARGET}x target: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
