#!/usr/bin/env bash
# Runs every benchmark of `fiso-bench` (http, cel, wasm, grpc, kafka, temporal) and writes a Markdown
# report with PNG charts (ratios to each baseline, latency percentiles, throughput per contender):
#
#   scripts/bench-report.sh                 release build of fiso-bench, full runs (tens of minutes)
#   scripts/bench-report.sh --quick         short runs (a smoke test of the report, not numbers to quote)
#   scripts/bench-report.sh --binary PATH   use an existing fiso-bench instead of building it
#   scripts/bench-report.sh --only http,cel run a subset
#   scripts/bench-report.sh --out DIR       write into DIR (default bench-results/<UTC time>/)
#
# Output: DIR/report.md, DIR/*.png, DIR/raw/<benchmark>.txt (each benchmark's own output), DIR/meta.txt.
# A benchmark that fails is reported as failed with its output; the others still run.
# Installs what it needs (idempotently): the build and test packages (scripts/setup.sh test), the
# Kafka test broker (scripts/kafka/setup.sh), nginx and wrk (the HTTP baseline and its load, Debian's
# nginx-light and wrk; benchmarks only, the tests do not need them) and matplotlib (pip).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary=""
out=""
quick=false
only="http,cel,wasm,grpc,kafka,temporal"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --quick) quick=true; shift ;;
        --only) only="$2"; shift 2 ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bench-report: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
log() { printf 'bench-report: %s\n' "$*" >&2; }

scripts/setup.sh test
eval "$(scripts/kafka/setup.sh)"
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]} with apt"
    as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq >&2
    # Debian starts the nginx service on install where it can; the benchmark runs its own.
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
fi
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib with pip"
    python3 -m pip install -q matplotlib >&2
fi
if [[ -z "$binary" ]]; then
    log "building fiso-bench (release)"
    swift build -c release --product fiso-bench
    binary="$(swift build -c release --show-bin-path)/fiso-bench"
fi
[[ -x "$binary" ]] || { log "no executable at $binary"; exit 1; }

out="${out:-bench-results/$(date -u +%Y-%m-%dT%H-%M-%SZ)}"
mkdir -p "$out/raw"
{
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine:  $(uname -srm), $(nproc) processors, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "swift:    $(swift --version 2>/dev/null | head -1)"
    echo "binary:   $binary"
    echo "mode:     $($quick && echo 'quick (short runs: a smoke test, not figures to quote)' || echo 'full')"
} >"$out/meta.txt"

arguments_for() {  # the options of one benchmark in quick mode (defaults otherwise)
    if ! $quick; then return; fi
    case "$1" in
        http) echo "--duration 1 --warmup 0.5 --rounds 1" ;;
        cel) echo "--iterations 2000 --rounds 1" ;;
        wasm) echo "--calls 20 --modules c,zig --warmup 1 --rounds 1" ;;
        grpc) echo "--events 2000 --rounds 1" ;;
        kafka) echo "--events 3000 --rounds 1" ;;
        temporal) echo "--duration 1 --warmup 0.5 --rounds 1" ;;
    esac
}

failed=0
IFS=',' read -r -a benchmarks <<<"$only"
for benchmark in "${benchmarks[@]}"; do
    # shellcheck disable=SC2046  # the options are words
    log "running fiso-bench $benchmark $(arguments_for "$benchmark")"
    started=$(date +%s)
    status=0
    "$binary" "$benchmark" $(arguments_for "$benchmark") >"$out/raw/$benchmark.txt" 2>&1 || status=$?
    echo "exit_status=$status seconds=$(($(date +%s) - started))" >>"$out/raw/$benchmark.txt"
    if [[ $status -ne 0 ]]; then
        log "fiso-bench $benchmark failed (status $status); see $out/raw/$benchmark.txt"
        failed=$((failed + 1))
    fi
done

python3 scripts/bench_report.py "$out"
log "report: $out/report.md ($failed of ${#benchmarks[@]} benchmarks failed)"
