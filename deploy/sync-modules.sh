#!/usr/bin/env bash
# Copies the example module the base deployment ships (examples/modules/enrich-c/enrich.wasm)
# into deploy/base/modules/, where kustomize's configMapGenerator can read it (kustomize only
# reads files inside the kustomization's folder, and refuses symlinks that lead outside it).
# Run it after rebuilding the examples (examples/modules/build.sh); the deployment tests fail
# with a pointer here when the copy is stale.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source="$here/../examples/modules/enrich-c/enrich.wasm"
target="$here/base/modules/enrich.wasm"
if [[ ! -f "$source" ]]; then
    echo "sync-modules: $source is missing; build it with examples/modules/build.sh" >&2
    exit 1
fi
mkdir -p "$(dirname "$target")"
cp "$source" "$target"
chmod 644 "$target"
echo "sync-modules: $(wc -c <"$target") bytes -> ${target#"$here"/}" >&2
