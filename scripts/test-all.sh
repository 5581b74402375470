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

# The fleet tests (crates/hotpath-cli/tests/fleet) start their own etcd:
# Debian's etcd-server, installed once when missing.
if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
    echo "== apt-get install etcd-server (for the fleet tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi

echo "== cargo test --workspace"
cargo test --workspace

# Schema-driven fuzzing of `hotpath serve` against its OpenAPI file:
# schemathesis (PyPI, in a venv under target/) sends generated requests,
# valid and not, to a real server on a free loopback port, for a bounded
# time, and fails on any 5xx, a status, content type, header or body the
# file does not describe, or a write accepted without the token. The
# event streams are left out (they never end; the end-to-end tests and
# the browser test cover them).
echo "== schemathesis (hotpath serve vs crates/hotpath-server/openapi.yaml)"
if [ ! -x target/venv/bin/st ]; then
    python3 -m venv target/venv
    target/venv/bin/pip install --quiet 'schemathesis>=4,<5'
fi
cargo build --quiet -p hotpath-cli --bin hotpath
st_dir=$(mktemp -d)
target/debug/hotpath serve --config crates/hotpath-cli/examples/tuning.toml \
    --data "$st_dir/data" --listen 127.0.0.1:0 >"$st_dir/out" 2>"$st_dir/err" &
st_pid=$!
trap 'kill "$st_pid" 2>/dev/null || true; rm -rf "$st_dir"' EXIT
for _ in $(seq 100); do
    grep -q 'listening on' "$st_dir/out" 2>/dev/null && break
    sleep 0.1
done
st_addr=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$st_dir/out")
[ -n "$st_addr" ] || { cat "$st_dir/err"; exit 1; }
timeout 300 target/venv/bin/st run crates/hotpath-server/openapi.yaml \
    --url "$st_addr" \
    --header "Authorization: Bearer $(cat "$st_dir/data/token")" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth \
    --exclude-path /v1/config/watch --exclude-path /v1/events \
    --max-examples 40 --max-time 60 --request-timeout 10 --workers 1 \
    --seed 1
kill -TERM "$st_pid"
wait "$st_pid"
trap - EXIT
rm -rf "$st_dir"

# The Python package (crates/hotpath-py, outside the workspace: PyO3 is
# built only here). In the venv under target/ (made if missing), maturin
# and pytest from PyPI, then the package built from the repo and
# installed, then its tests. The client's tests against a real `hotpath
# serve` use target/debug/hotpath, built above. mypy checks the stubs
# against the extension as built (stubtest) and the package's Python
# (strict); the benchmark script runs once, briefly, so it keeps working.
echo "== python (crates/hotpath-py)"
[ -x target/venv/bin/python ] || python3 -m venv target/venv
target/venv/bin/python -m pip install --quiet 'maturin>=1.7,<2' 'pytest>=7' 'mypy>=1.10'
PATH="$PWD/target/venv/bin:$PATH" target/venv/bin/python -m pip install --quiet \
    --no-build-isolation --no-deps --force-reinstall ./crates/hotpath-py
HOTPATH_BIN="$PWD/target/debug/hotpath" target/venv/bin/python -m pytest -q -rs \
    -p no:cacheprovider crates/hotpath-py/tests
MYPY_CACHE_DIR=/dev/null target/venv/bin/python -m mypy.stubtest hotpath
MYPY_CACHE_DIR=/dev/null target/venv/bin/python -m mypy --strict -p hotpath
target/venv/bin/python crates/hotpath-py/benches/bench.py --reads 20000 --steps 2000 --repeat 3

# The live status page in a real headless Chromium: Debian's `chromium`
# (installed here when missing; never a browser download), driven by
# playwright-core (npm, pinned by the lock file, under node_modules/)
# against a real `hotpath serve`, `hotpath demo` and the `embedded`
# example. Skipped, saying so, only where chromium cannot be installed.
echo "== browser (the status page in headless Chromium)"
browser_dir=crates/hotpath-server/tests/browser
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >target/apt-chromium.log 2>&1 || echo "apt-get could not install chromium (target/apt-chromium.log)"
fi
if command -v chromium >/dev/null 2>&1; then
    if [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
        (cd "$browser_dir" && npm ci --no-audit --no-fund --silent)
    fi
    cargo build --quiet -p hotpath-server --example embedded
    CHROMIUM="$(command -v chromium)" timeout 300 \
        node --test --test-concurrency=1 "$browser_dir/page.test.mjs"
else
    echo "SKIPPED: chromium is not installed and cannot be (no apt-get, or it failed): the status page was not tested in a browser"
fi

# Loom model check of the lock-free parts (AtomicConfig publication, the
# audit ring), in its own target dir: the cfg flag changes every crate's
# build. Bounded to 3 preemptions per execution, as loom recommends for CI;
# the unbounded run (LOOM_MAX_PREEMPTIONS unset) takes a few minutes and is
# documented in the README.
echo "== loom (bounded)"
LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p hotpath --lib loom
