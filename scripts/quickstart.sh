#!/usr/bin/env bash
# Builds fiso-flow (release) and runs the quick-start flow in examples/quickstart:
# HTTP on :8081/ingest → CEL transform → WASM enrich module → one CloudEvent per line on stdout.
# Metrics, /healthz and /readyz on :9090. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh build
swift build -c release --product fiso-flow
# Use the Python wasmtime package's library when there is one (a development convenience that
# production does not have); without a library the module runs on WasmKit.
export FISO_WASMTIME_SEARCH_PYTHON="${FISO_WASMTIME_SEARCH_PYTHON:-1}"
exec .build/release/fiso-flow run --config examples/quickstart "$@"
