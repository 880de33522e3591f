#!/usr/bin/env bash
# The run command: a local Kafka broker, the topics, the worker, generated call traffic, and a live
# view of the ACW intervals as the worker publishes them. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
run="$PWD/.cache/demo"
rm -rf "$run/worker"
mkdir -p "$run"
export ACW_BOOTSTRAP_SERVERS
ACW_BOOTSTRAP_SERVERS=$(deploy/kafka/broker.sh start --dir "$run/kafka" --port "${ACW_DEMO_KAFKA_PORT:-0}")
export ACW_DATA_DIR="$run/worker" ACW_METRICS_PORT="${ACW_METRICS_PORT:-9108}"
worker_pid=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  deploy/kafka/broker.sh stop --dir "$run/kafka"
}
trap cleanup EXIT INT TERM
acw=.venv/bin/acw
$acw topics create
$acw worker > "$run/worker.log" 2>&1 &
worker_pid=$!
start_ms=$(( ($(date +%s) - 4 * 3600) * 1000 ))
$acw generate --agents "${ACW_DEMO_AGENTS:-200}" --contacts 15 --start-ms "$start_ms" --out "$run/traffic.jsonl"
$acw produce "$run/traffic.jsonl"
echo "worker log: $run/worker.log   metrics: http://${ACW_METRICS_HOST:-127.0.0.1}:$ACW_METRICS_PORT/metrics"
echo "intervals as the worker publishes them (Ctrl-C to stop):"
$acw watch
