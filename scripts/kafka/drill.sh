#!/usr/bin/env bash
# Reliability drill for the Kafka source: 100,000 records, a Kafka -> HTTP flow, `kill -9` of the
# fiso-flow process twice while it delivers, a restart each time; prints lost and duplicates.
#
#   scripts/kafka/drill.sh                      # builds fiso-flow (release) and runs the drill
#   FISO_FLOW_BIN=/path/to/fiso-flow scripts/kafka/drill.sh --events 20000
#
# Extra arguments go to drill.py (--events, --partitions, --kills 0.25 0.6, --timeout). Everything
# runs on 127.0.0.1 on free ports (a memory-only tansu broker, the receiver, the metrics port) and is
# stopped at the end. Exit status 0 when no event was lost.
set -euo pipefail
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
eval "$("$script_dir/setup.sh")"

binary="${FISO_FLOW_BIN:-}"
if [ -z "$binary" ]; then
    echo "drill: building fiso-flow (release)" >&2
    (cd "$repo_dir" && swift build -c release --product fiso-flow >&2)
    binary="$(cd "$repo_dir" && swift build -c release --show-bin-path)/fiso-flow"
fi
exec python3 "$script_dir/drill.py" --fiso-flow "$binary" "$@"
