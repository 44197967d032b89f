#!/usr/bin/env bash
# Builds fiso-flow (release) and runs the quick-start flow in examples/quickstart:
# HTTP on :8081/ingest → CEL transform → WASM enrich module → one CloudEvent per line on stdout.
# Metrics, /healthz and /readyz on :9090. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh build
swift build -c release --product fiso-flow
exec .build/release/fiso-flow run --config examples/quickstart "$@"
