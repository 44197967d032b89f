#!/usr/bin/env bash
# Confirms the committed modules behave as README.md says under the reference runtime, Wasmtime
# (PyPI `wasmtime`, driven by ../../benchmarks/wasm/wasmtime_reference.py): the guide's local
# test, the three enrich builds (and the C and Go reactors) agreeing byte for byte on every line
# of enrich-cases.jsonl, and each fault module failing the way it should.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
PYTHON="${PYTHON:-python3}"
REFERENCE="$HERE/../../benchmarks/wasm/wasmtime_reference.py"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
failures=0

run() {  # run NAME MODULE [reference options...] < input ; sets STATUS, OUT, ERR
    local name="$1" module="$2"
    shift 2
    "$PYTHON" "$REFERENCE" run "$module" "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err"
    STATUS=$?
    OUT="$(cat "$SCRATCH/$name.out")"
    ERR="$(cat "$SCRATCH/$name.err")"
}

expect() {  # expect DESCRIPTION CONDITION...
    local description="$1"
    shift
    if "$@"; then
        printf 'ok    %s\n' "$description"
    else
        printf 'FAIL  %s (status=%s stdout=%.120s stderr=%.200s)\n' "$description" "$STATUS" "$OUT" "$ERR"
        failures=$((failures + 1))
    fi
}

GUIDE_INPUT='{"payload":{"order_id":"123","amount":99.99},"headers":{},"direction":"inbound"}'
GUIDE_OUTPUT='{"payload":{"amount":99.99,"order_id":"123","processed_by":"wasm-module","timestamp":"2024-01-15T10:00:00Z"},"headers":{"X-WASM-Processed":"true"}}'
printf '%s\n' "$GUIDE_OUTPUT" >"$SCRATCH/guide.expected"

for module in enrich-go/enrich.wasm enrich-c/enrich.wasm enrich-zig/enrich.wasm enrich-c/enrich.wasm.gz; do
    run guide "$module" <<<"$GUIDE_INPUT"
    expect "$module: the guide's local test, byte for byte" cmp -s "$SCRATCH/guide.out" "$SCRATCH/guide.expected"
done
for module in enrich-reactor-c/enrich.wasm enrich-reactor-go/enrich.wasm; do
    run guide "$module" --reactor <<<"$GUIDE_INPUT"
    expect "$module (reactor): the guide's local test, byte for byte" cmp -s "$SCRATCH/guide.out" "$SCRATCH/guide.expected"
done

line_number=0
while IFS= read -r line; do
    line_number=$((line_number + 1))
    printf '%s' "$line" >"$SCRATCH/case.json"
    for module in enrich-go enrich-c enrich-zig; do
        "$PYTHON" "$REFERENCE" run "$module/enrich.wasm" --input "$SCRATCH/case.json" >"$SCRATCH/$module.case" 2>/dev/null
        echo "status=$?" >>"$SCRATCH/$module.case"
    done
    for module in enrich-reactor-c enrich-reactor-go; do
        "$PYTHON" "$REFERENCE" run "$module/enrich.wasm" --reactor --input "$SCRATCH/case.json" \
            >"$SCRATCH/$module.case" 2>/dev/null
        echo "status=$?" >>"$SCRATCH/$module.case"
    done
    STATUS="" OUT="$(cat "$SCRATCH/enrich-c.case")" ERR="$(cat "$SCRATCH/enrich-go.case")"
    expect "enrich-cases.jsonl line $line_number: Go, C and Zig agree" \
        eval 'cmp -s "$SCRATCH/enrich-go.case" "$SCRATCH/enrich-c.case" && cmp -s "$SCRATCH/enrich-go.case" "$SCRATCH/enrich-zig.case"'
    OUT="$(cat "$SCRATCH/enrich-reactor-c.case")" ERR="$(cat "$SCRATCH/enrich-reactor-go.case")"
    expect "enrich-cases.jsonl line $line_number: the C and Go reactors agree with their commands" \
        eval 'cmp -s "$SCRATCH/enrich-c.case" "$SCRATCH/enrich-reactor-c.case" && cmp -s "$SCRATCH/enrich-go.case" "$SCRATCH/enrich-reactor-go.case"'
done <enrich-cases.jsonl

run exit1 faults/exit-1.wasm <<<"$GUIDE_INPUT"
expect "exit-1 exits 1" test "$STATUS" -eq 1
run loop faults/infinite-loop.wasm --timeout-ms 200 </dev/null
expect "infinite-loop is interrupted" test "$STATUS" -eq 124
run busy faults/busy-compute.wasm --timeout-ms 200 </dev/null
expect "busy-compute is interrupted" test "$STATUS" -eq 124
run bomb faults/memory-bomb.wasm --memory-limit $((16 << 20)) --timeout-ms 10000 </dev/null
expect "memory-bomb traps at the limit" eval '[[ $STATUS -eq 134 && $ERR == *"malloc failed after"* ]]'
run trap faults/trap.wasm --timeout-ms 10000 </dev/null
expect "trap divides by zero" eval '[[ $STATUS -eq 134 && $ERR == *"divide by zero"* ]]'
run invalid faults/invalid-json.wasm </dev/null
expect "invalid-json prints non-JSON and exits 0" eval '[[ $STATUS -eq 0 && $OUT == "this is not JSON" ]]'
run nothing faults/no-output.wasm <<<"$GUIDE_INPUT"
expect "no-output prints nothing and exits 0" eval '[[ $STATUS -eq 0 && -z $OUT ]]'
run missing faults/missing-payload.wasm </dev/null
expect "missing-payload prints an object without payload" eval '[[ $STATUS -eq 0 && $OUT == "{\"headers\":{\"X-Seen\":\"true\"}}" ]]'
run open faults/open-file.wasm </dev/null
expect "open-file cannot open host files" eval '[[ $STATUS -eq 1 && $ERR == *"cannot open /etc/hostname"* ]]'
run huge faults/huge-output.wasm </dev/null
expect "huge-output writes more than 8 MiB" test "$(wc -c <"$SCRATCH/huge.out")" -gt $((8 << 20))
run stderr faults/stderr-fail.wasm </dev/null
expect "stderr-fail explains on stderr and exits 3" eval '[[ $STATUS -eq 3 && $ERR == *"upstream lookup refused"* ]]'
run probe probes/probe.wasm --env GREETING=hello <<<"$GUIDE_INPUT"
expect "probe sees argv[0], env, clocks, random and no preopens" eval '[[ $STATUS -eq 0 && $OUT == *"\"argv\":[\"probe.wasm\"],\"env\":[\"GREETING=hello\"]"* && $OUT == *"\"monotonic_ok\":true,\"random_ok\":true,\"preopens\":0"* ]]'
run echo probes/echo.wasm <<<"$GUIDE_INPUT"
expect "echo copies stdin" eval '[[ $STATUS -eq 0 && $OUT == "$GUIDE_INPUT" ]]'
run sleep faults/sleep.wasm <<<"$GUIDE_INPUT"
expect "sleep sleeps, then answers" eval '[[ $STATUS -eq 0 && $OUT == *"\"slept_ms\":100"* ]]'
run rsleep faults/reactor-faults.wasm --reactor <<<'{"payload":"#sleep"}'
expect "reactor-faults sleeps on #sleep, then answers" eval '[[ $STATUS -eq 0 && $OUT == *"\"calls\":1,"* ]]'
run spin probes/spin.wasm <<<'{"payload":{"spin_ms":30}}'
expect "spin spins" eval '[[ $STATUS -eq 0 && $OUT == *"\"module\":\"spin\""* ]]'
run rcount faults/reactor-faults.wasm --reactor <<<'{"payload":{}}'
expect "reactor-faults counts its calls" eval '[[ $STATUS -eq 0 && $OUT == *"\"calls\":1,"* ]]'
run rtrap faults/reactor-faults.wasm --reactor <<<'{"payload":"#trap"}'
expect "reactor-faults traps on #trap" test "$STATUS" -eq 134
run rrefuse faults/reactor-faults.wasm --reactor <<<'{"payload":"#refuse"}'
expect "reactor-faults refuses #refuse with status 4" eval '[[ $STATUS -eq 4 && $ERR == *"refusing this event"* ]]'

if ((failures)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all checks passed" >&2
