#!/usr/bin/env python3
"""A replica of a service tuned by a hotpath fleet: it reads its knobs and
reports what it measured, asking any instance of the fleet.

    python3 scripts/fleet-replica.py --name r1 --token-file token \
        --instance http://127.0.0.1:7071 --instance http://127.0.0.1:7072 \
        --instance http://127.0.0.1:7073 [--seconds 60] [--log r1.jsonl] [--stop-file F]

Every --interval-ms (default 20) it GETs /v1/config from one instance
(round robin), "serves requests" under those knobs (a synthetic latency
that is lowest at batch_size 96 and flush_interval_ms 4, plus noise), and
POSTs the digest, tagged with its name and the generation it measured
under, to the next instance: a standby forwards it to the leader. It keeps
the highest generation it has seen and counts any response that would take
it backwards (there should be none) and any request that failed. With
--log it writes one JSON line per read ({"t", "instance", "generation"})
and ends with a summary line. Standard library only.
"""

import argparse
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request


def objective(values, rng):
    """The synthetic latency of a replica running `values` (lower is better)."""
    batch = float(values.get("batch_size", 64))
    flush = float(values.get("flush_interval_ms", 8))
    base = 1.0 + ((batch - 96.0) / 64.0) ** 2 + ((flush - 4.0) / 8.0) ** 2
    return base * math.exp(rng.gauss(0.0, 0.05))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--instance", action="append", required=True, help="an instance's base URL (repeatable)")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log")
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    args = parser.parse_args()
    token = open(args.token_file).readline().strip()
    rng = random.Random(args.seed)
    log = open(args.log, "w", buffering=1) if args.log else None
    highest = -1
    counts = {"reads": 0, "read_errors": 0, "backwards": 0, "reports": 0, "report_errors": 0}
    deadline = time.monotonic() + args.seconds
    turn = 0
    values = {}
    while time.monotonic() < deadline:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        turn += 1
        base = args.instance[turn % len(args.instance)]
        try:
            with urllib.request.urlopen(base + "/v1/config", timeout=2) as response:
                config = json.load(response)
            counts["reads"] += 1
            generation = config["generation"]
            if generation < highest:
                counts["backwards"] += 1
            else:
                highest = generation
                values = config["values"]
            if log:
                log.write(json.dumps({"t": time.time(), "instance": base, "generation": generation}) + "\n")
        except (OSError, ValueError, KeyError):
            counts["read_errors"] += 1
        digest = {"objective": objective(values, rng), "samples": 50, "instance": args.name}
        if highest >= 0:
            digest["generation"] = highest
        target = args.instance[(turn + 1) % len(args.instance)]
        request = urllib.request.Request(
            target + "/v1/telemetry",
            data=json.dumps(digest).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + token},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
            counts["reports"] += 1
        except (OSError, ValueError):
            # 503 during an election, a killed instance: counted, retried next turn.
            counts["report_errors"] += 1
        time.sleep(args.interval_ms / 1000.0)
    summary = dict(counts, name=args.name, highest=highest)
    if log:
        log.write(json.dumps({"summary": summary}) + "\n")
    print(json.dumps(summary))
    return 1 if counts["backwards"] else 0


if __name__ == "__main__":
    sys.exit(main())
