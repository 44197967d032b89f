#!/usr/bin/env bash
# Builds the release fiso-flow the container image ships and lays out the image's own files
# (everything the Dockerfile adds on top of its base image) under a folder, by default
# .build-image/rootfs. The Dockerfile's build stage runs this very script, so the folder is what
# the image contains; no Docker engine is needed to look at it or to run it.
#
#   scripts/image-layout.sh                     release build (--static-swift-stdlib), then lay out
#   scripts/image-layout.sh --binary PATH       lay out an existing fiso-flow instead of building
#   scripts/image-layout.sh --out DIR           lay out under DIR instead of .build-image/rootfs
#   scripts/image-layout.sh --check             then start the laid-out binary the way the image
#                                               runs it and wait for /readyz (see check_layout)
#   scripts/image-layout.sh --no-strip          keep the binary's symbol table (221 MB instead of
#                                               99 MB for the release build; crash backtraces keep names)
#
# The layout:
#   usr/local/bin/fiso-flow                     the runtime (ENTRYPOINT)
#   etc/fiso/flows/quickstart.yaml              the example flow (FISO_CONFIG_DIR's default)
#   etc/fiso/modules/enrich.wasm                the guide's example module (enrich-c build)
#   etc/fiso/kafka/                             empty: mount kafka.yaml here (FISO_KAFKA_CONFIG)
#   usr/share/fiso-flow/modules/…               every example module: enrich-c (+ .gz), enrich-zig, enrich-go
#   usr/share/fiso-flow/flows/quickstart.yaml   a copy of the example flow (the /etc one is hidden by a mount)
#   usr/share/fiso-flow/runtime-libraries.txt   the shared libraries the binary needs (ldd), for the runtime stage
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

binary=""
out=".build-image/rootfs"
check=false
strip_binary=true
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --check) check=true; shift ;;
        --no-strip) strip_binary=false; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "image-layout: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf 'image-layout: %s\n' "$*" >&2; }

if [[ -z "$binary" ]]; then
    scripts/setup.sh build
    log "building the release binary (swift build -c release --static-swift-stdlib --product fiso-flow)"
    swift build -c release --static-swift-stdlib --product fiso-flow
    binary="$(swift build -c release --static-swift-stdlib --show-bin-path)/fiso-flow"
fi
[[ -x "$binary" ]] || { log "no executable at $binary"; exit 1; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out" in
    / | "$repo" | "$HOME") log "refusing to lay out into $out"; exit 2 ;;
esac
rm -rf "$out"
install -d -m 755 "$out/usr/local/bin" "$out/etc/fiso/flows" "$out/etc/fiso/modules" "$out/etc/fiso/kafka" \
    "$out/usr/share/fiso-flow/flows" "$out/usr/share/fiso-flow/modules"
install -m 755 "$binary" "$out/usr/local/bin/fiso-flow"
if $strip_binary && command -v strip >/dev/null; then strip "$out/usr/local/bin/fiso-flow"; fi
# The example flow names its module relative to the repository; in the image it is the guide's
# mounted path.
sed -E 's#(module: *)[^ ]*enrich-c/enrich\.wasm#\1/etc/fiso/modules/enrich.wasm#' examples/quickstart/quickstart.yaml \
    >"$out/etc/fiso/flows/quickstart.yaml"
chmod 644 "$out/etc/fiso/flows/quickstart.yaml"
install -m 644 "$out/etc/fiso/flows/quickstart.yaml" "$out/usr/share/fiso-flow/flows/quickstart.yaml"
install -m 644 examples/modules/enrich-c/enrich.wasm "$out/etc/fiso/modules/enrich.wasm"
for module in enrich-c/enrich.wasm enrich-c/enrich.wasm.gz enrich-zig/enrich.wasm enrich-go/enrich.wasm; do
    install -D -m 644 "examples/modules/$module" "$out/usr/share/fiso-flow/modules/$module"
done

# The shared libraries the runtime stage must provide. With --static-swift-stdlib none of them
# is Swift's; librdkafka and zlib come from Debian (librdkafka1, zlib1g), the rest from libc6,
# libstdc++6 and libgcc-s1, which every Debian image has.
ldd "$out/usr/local/bin/fiso-flow" | awk '/=>/ {print $1} !/=>/ && /^\t\// {print $1}' | sort -u \
    >"$out/usr/share/fiso-flow/runtime-libraries.txt"
if grep -E '^lib(swift|Foundation|_Foundation|dispatch|BlocksRuntime)' "$out/usr/share/fiso-flow/runtime-libraries.txt" >/dev/null; then
    log "warning: $binary links the Swift runtime dynamically (not a --static-swift-stdlib build); the image's runtime stage would not have it"
fi
log "laid out under $out ($(du -sh "$out" | cut -f1))"

# Starts the laid-out binary as the image and deploy/ run it: ENTRYPOINT fiso-flow run,
# FISO_CONFIG_DIR and FISO_METRICS_ADDR set (mapped into the folder), as user 65532, in / with no
# HOME, and — where this shell may create a mount namespace (root) — with every filesystem
# read-only and a fresh tmpfs on /tmp, like readOnlyRootFilesystem with an emptyDir at /tmp.
# Waits for /readyz, sends one event to the example flow, and stops it with SIGTERM. The example
# flow's :8081 is moved to a free loopback port.
check_layout() {
    local work http_port metrics_port pid status sandbox
    work="$(dirname "$out")/check"
    rm -rf "$work"
    mkdir -p "$work/flows"
    read -r http_port metrics_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in sockets])')
    sed -e "s/\":8081\"/\"127.0.0.1:$http_port\"/" -e "s#/etc/fiso/modules/#$out/etc/fiso/modules/#" \
        "$out/etc/fiso/flows/quickstart.yaml" >"$work/flows/quickstart.yaml"
    chmod -R a+rX "$work" "$out"
    : >"$work/stdout"
    : >"$work/stderr"
    local run=(env -i PATH=/usr/bin:/bin FISO_CONFIG_DIR="$work/flows" FISO_METRICS_ADDR="127.0.0.1:$metrics_port"
        FISO_KAFKA_CONFIG="$out/etc/fiso/kafka/kafka.yaml" LOG_FORMAT=json)
    sandbox="none"
    if [[ "$(id -u)" -eq 0 ]]; then
        run+=(setpriv --reuid=65532 --regid=65532 --clear-groups)
        sandbox="user 65532"
        if [[ "$out" == /tmp/* ]]; then
            log "note: $out is under /tmp, so /tmp stays as it is (no read-only sandbox)"
        elif unshare --mount --propagation private true 2>/dev/null; then
            sandbox="user 65532, read-only filesystems, tmpfs /tmp"
            # Inside the namespace: every mount read-only, then a writable tmpfs on /tmp.
            local prepare='for m in $(awk "{print \$2}" /proc/self/mounts | grep -Ev "^/(proc|sys|dev)(/|$)"); do
                mount -o remount,bind,ro "$m" 2>/dev/null || true; done
                mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
                if touch /.fiso-write-probe 2>/dev/null; then echo "the sandbox is not read-only" >&2; exit 97; fi
                exec "$@"'
            run=(unshare --mount --propagation private sh -c "$prepare" sh "${run[@]}")
        fi
    fi
    log "starting the laid-out binary ($sandbox)"
    (cd / && exec "${run[@]}" "$out/usr/local/bin/fiso-flow" run >"$work/stdout" 2>"$work/stderr") &
    pid=$!
    status=1
    for _ in $(seq 1 300); do
        if python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$metrics_port/readyz', timeout=2).status == 200 else 1)" 2>/dev/null; then
            status=0
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if [[ $status -eq 0 ]]; then
        log "ready: $(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$metrics_port/readyz').read().decode())")"
        local answer
        answer="$(python3 -c "
import urllib.request
request = urllib.request.Request('http://127.0.0.1:$http_port/ingest', data=b'{\"order_id\":\"123\",\"amount\":99.99,\"customer\":\"ada\"}', method='POST')
response = urllib.request.urlopen(request, timeout=10)
print(response.status, response.read().decode())")" || status=1
        log "POST /ingest: $answer"
        [[ "$answer" == 202* ]] || status=1
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    if [[ $status -ne 0 ]]; then
        log "check FAILED; the binary's log:"
        cat "$work/stderr" >&2
        return 1
    fi
    grep -q '"X-WASM-Processed"\|processed_by' "$work/stdout" || { log "check FAILED: the module did not run: $(cat "$work/stdout")"; return 1; }
    log "event delivered by the example flow: $(head -c 400 "$work/stdout")"
    log "check passed: the laid-out binary serves /readyz with the example flow"
}

if $check; then check_layout; fi
