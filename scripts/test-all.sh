#!/usr/bin/env bash
# Every test of the project, on a fresh machine: sets up what the tests
# need (nothing is downloaded by the tests themselves at run time), then
# runs them.
#
#   bash scripts/test-all.sh
#
# Each stage prints a line starting with "==" so a log shows where it is.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

# Loom model check of the lock-free parts (AtomicConfig publication, the
# audit ring), in its own target dir: the cfg flag changes every crate's
# build. Bounded to 3 preemptions per execution, as loom recommends for CI;
# the unbounded run (LOOM_MAX_PREEMPTIONS unset) takes a few minutes and is
# documented in the README.
echo "== loom (bounded)"
LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p hotpath --lib loom
