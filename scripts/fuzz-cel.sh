#!/usr/bin/env bash
# Fuzzes the CEL parser, planner and evaluator with libFuzzer + AddressSanitizer.
#
#   scripts/fuzz-cel.sh [RUNS] [-- extra libFuzzer flags]
#
# Builds a throwaway package under .build/fuzz-cel that compiles Sources/FisoJSON,
# Sources/FisoCEL and Fuzz/CEL (the LLVMFuzzerTestOneInput entry point) with
# -sanitize=fuzzer,address, seeds a corpus from Fuzz/CEL/seeds and the conformance expressions
# (when ../shared/cel-conformance exists), then runs RUNS inputs (default 1,000,000).
# Needs only the Swift toolchain (its clang runtime ships libFuzzer and ASan).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-1000000}"
shift || true
[[ "${1:-}" == "--" ]] && shift
WORK="$ROOT/.build/fuzz-cel"
PACKAGE="$WORK/package"
CORPUS="$WORK/corpus"

mkdir -p "$PACKAGE/Sources" "$CORPUS"
ln -sfn "$ROOT/Sources/FisoJSON" "$PACKAGE/Sources/FisoJSON"
ln -sfn "$ROOT/Sources/FisoCEL" "$PACKAGE/Sources/FisoCEL"
ln -sfn "$ROOT/Fuzz/CEL" "$PACKAGE/Sources/CELFuzz"
cat > "$PACKAGE/Package.swift" <<'SWIFT'
// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "fuzz-cel",
    dependencies: [.package(url: "https://github.com/apple/swift-collections", from: "1.6.0")],
    targets: [
        .target(name: "FisoJSON", dependencies: [.product(name: "OrderedCollections", package: "swift-collections")]),
        .target(name: "FisoCEL", dependencies: ["FisoJSON"]),
        .executableTarget(name: "CELFuzz", dependencies: ["FisoCEL", "FisoJSON"], exclude: ["seeds"]),
    ]
)
SWIFT

echo "Building the fuzzer (release, -sanitize=fuzzer,address)..."
swift build --package-path "$PACKAGE" -c release \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | tail -3
FUZZER="$(swift build --package-path "$PACKAGE" -c release --show-bin-path)/CELFuzz"

# Seed corpus: hand-written expressions (copied into the writable corpus) and, when available,
# every conformance expression, extracted to a temporary directory that is removed afterwards
# (the conformance data is read in place, never copied into the project).
cp -f "$ROOT/Fuzz/CEL/seeds/"* "$CORPUS/" 2>/dev/null || true
SEEDS="$(mktemp -d)"
trap 'rm -rf "$SEEDS"' EXIT
CASES="${CEL_CONFORMANCE_DIR:-$ROOT/../shared/cel-conformance}"
if [[ -d "$CASES" ]] && command -v python3 >/dev/null; then
    python3 - "$CASES" "$SEEDS" <<'PY'
import hashlib, json, pathlib, sys
source, corpus = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for file in sorted(source.glob("*.jsonl")):
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            expr = json.loads(line).get("expr", "").encode("utf-8")
            (corpus / ("conf-" + hashlib.sha1(expr).hexdigest())).write_bytes(expr)
PY
fi

echo "Running $RUNS inputs..."
START=$(date +%s)
set +e
"$FUZZER" "$CORPUS" "$SEEDS" -runs="$RUNS" -max_len=4096 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$WORK/" "$@" 2>&1 | tee "$WORK/fuzz.log" | grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|SUMMARY|stat::"
STATUS=${PIPESTATUS[0]}
set -e
END=$(date +%s)
echo "libFuzzer exit status: $STATUS; wall time: $((END - START)) s; log: $WORK/fuzz.log"
exit "$STATUS"
