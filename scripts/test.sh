#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (idempotently),
# builds, and runs every test target.
#
#   scripts/test.sh                         the full run: every test target, one after another
#   scripts/test.sh --fast                  the unit targets only: no Kafka broker, Temporal server or fiso-flow process
#   scripts/test.sh --filter WasmFlowTests  other arguments go to one `swift test` run instead
#
# The targets run one after another rather than all in one process: several suites load the CPU on
# purpose (runaway WASM modules, 10,000-event streams, Kafka brokers), and on a 2-core machine
# running them together turns their generous time limits into flaky ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fast=false
if [ "${1:-}" = "--fast" ]; then
    fast=true
    shift
fi
scripts/setup.sh test
# The Kafka test broker (tansu) and the librdkafka build it needs at run time.
if ! $fast; then eval "$(scripts/kafka/setup.sh)"; fi
# The Wasmtime engine's tests must run here (setup installs the library), not skip. The library
# comes from the Python wasmtime package, which fiso-flow searches only when asked to (production
# loads FISO_WASMTIME_LIB or /usr/local/lib/libwasmtime.so only).
export FISO_REQUIRE_WASMTIME=1
export FISO_WASMTIME_SEARCH_PYTHON=1
swift build --build-tests

if (($# > 0)); then
    exec swift test --skip-build "$@"
fi

# Unit targets need no broker, Temporal server or running fiso-flow process; the last three do.
targets=(FisoConcurrencyTests FisoQuantitiesTests FisoJSONTests FisoCELTests FisoWasmTests FisoWasmToolingTests
    FisoGRPCTests FisoFlowTests)
if ! $fast; then targets+=(FisoKafkaTests FisoTemporalTests FisoFlowIntegrationTests); fi
failed=()
for target in "${targets[@]}"; do
    echo "==> $target"
    start=$SECONDS
    if swift test --skip-build --filter "^$target\."; then
        echo "==> $target passed in $((SECONDS - start)) s"
    else
        echo "==> $target FAILED after $((SECONDS - start)) s"
        failed+=("$target")
    fi
done
if ((${#failed[@]} > 0)); then
    echo "failed test targets: ${failed[*]}"
    exit 1
fi
echo "all test targets passed"
