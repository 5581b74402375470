"""The child process of test_durable.py: opens an engine on a data
directory, steps it, prints what it saw as JSON, then closes or crashes."""

from __future__ import annotations

import json
import os
import sys

import hotpath
from conftest import bowl, knobs


def main() -> None:
    data_dir, steps, ending = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    engine = hotpath.Engine(knobs(), seed=3, data_dir=data_dir, manual_clock=True)
    reader = engine.reader()
    opened = engine.opened
    first_seq = engine.status()["audit"]["oldest_seq"]
    for _ in range(steps):
        engine.advance_clock(100_000)
        snap = reader.get()
        engine.step(bowl(snap), 50, generation=snap.generation)
    status = engine.status()
    events = engine.audit()
    report = {
        "opened": opened,
        "status": status,
        "first_held_seq": first_seq,
        "last_seq": events[-1]["seq"] if events else None,
        "values": reader.get().values,
    }
    if ending == "crash":
        engine.save_state()
        print(json.dumps(report), flush=True)
        os._exit(0)  # no close: the log's tail and the state as last saved
    engine.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
