#!/usr/bin/env bash
# Runs a command with the Kafka test environment (see setup.sh), for example:
#
#   scripts/kafka/run.sh swift test --filter FisoKafkaTests
#
# The Kafka tests start and stop their own tansu broker on a free port; set
# FISO_KAFKA_TEST_BROKERS=host:port to run them against an existing broker instead.
set -euo pipefail
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$("$script_dir/setup.sh")"
if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
exec "$@"
