#!/usr/bin/env bash
# Starts a memory-only tansu broker (a Kafka-protocol broker) on a free 127.0.0.1 port, waits
# until it accepts connections, prints and exports its address, and stops it at the end.
#
#   scripts/kafka/test-broker.sh                # runs until Ctrl-C / SIGTERM
#   scripts/kafka/test-broker.sh CMD [ARGS...]  # runs CMD with FISO_KAFKA_BROKERS set, then stops
#
# Also exports the setup.sh environment (FISO_TANSU_BIN, LD_LIBRARY_PATH with the wheel's
# librdkafka) to CMD. Options via environment: FISO_KAFKA_BROKER_PORT (fixed port),
# FISO_KAFKA_TOPICS ("name:partitions name2:partitions" to create after start),
# FISO_KAFKA_BROKER_LOG (broker log file; default a temporary file).
set -euo pipefail
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$("$script_dir/setup.sh")"

port="${FISO_KAFKA_BROKER_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')}"
address="127.0.0.1:$port"
log_file="${FISO_KAFKA_BROKER_LOG:-$(mktemp -t fiso-tansu.XXXXXX.log)}"

"$FISO_TANSU_BIN" broker \
    --listener-url "tcp://$address" \
    --advertised-listener-url "tcp://$address" \
    --storage-engine "memory://tansu/" >"$log_file" 2>&1 &
broker_pid=$!

stop_broker() {
    if kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        echo "test-broker: stopped tansu on $address" >&2
    fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ready=0
for _ in $(seq 1 200); do
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        echo "test-broker: tansu exited during start-up; its log ($log_file):" >&2
        cat "$log_file" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ready=1; break; fi
    sleep 0.05
done
if [ "$ready" != 1 ]; then
    echo "test-broker: tansu did not accept connections on $address within 10 s; log: $log_file" >&2
    exit 1
fi

for spec in ${FISO_KAFKA_TOPICS:-}; do
    name="${spec%%:*}"
    partitions="${spec#*:}"
    [ "$partitions" = "$spec" ] && partitions=1
    "$FISO_TANSU_BIN" topic create --broker "tcp://$address" --partitions "$partitions" "$name" >&2
done

export FISO_KAFKA_BROKERS="$address"
echo "test-broker: tansu (pid $broker_pid) listening on $address; log: $log_file" >&2
echo "FISO_KAFKA_BROKERS=$address"

if [ "$#" -gt 0 ]; then
    set +e
    "$@"
    status=$?
    set -e
    exit "$status"
fi
wait "$broker_pid"
