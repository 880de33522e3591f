#!/usr/bin/env bash
# The run command: a local Kafka broker, the topics, the worker, a simulated contact center sending
# call events, and a live terminal view (agents in ACW now, team averages against the benchmark,
# latest alerts, events/s). Metrics are served meanwhile. Ctrl-C ends the view, writes `acw report` of the
# run into .cache/demo/report/ and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
run="$PWD/.cache/demo"
rm -rf "$run/worker"
mkdir -p "$run"
export ACW_BOOTSTRAP_SERVERS
ACW_BOOTSTRAP_SERVERS=$(deploy/kafka/broker.sh start --dir "$run/kafka" --port "${ACW_DEMO_KAFKA_PORT:-0}")
# A real Schema Registry beside the broker: every output is Confluent-framed Avro any Kafka tool can read.
export ACW_SCHEMA_REGISTRY_URL
ACW_SCHEMA_REGISTRY_URL=$(deploy/registry/registry.sh start --dir "$run/registry" --port "${ACW_DEMO_REGISTRY_PORT:-0}")
export ACW_DATA_DIR="$run/worker" ACW_METRICS_PORT="${ACW_METRICS_PORT:-9108}"
export ACW_APP_ID="acw-demo-$(date +%s)" ACW_INPUT_TOPIC="call-events-$(date +%s)"  # a fresh run each time
# ACW_DEMO_FORMAT: the simulated contact center's records as a platform sends them (connect-agent-events,
# connect-contact-events, genesys, twilio-taskrouter), or avro (our own contract, the default).
export ACW_INPUT_FORMAT="${ACW_DEMO_FORMAT:-${ACW_INPUT_FORMAT:-avro}}"
agents="${ACW_DEMO_AGENTS:-300}"
worker_pid="" sim_pid=""
cleanup() {
  trap - EXIT INT TERM
  for pid in $sim_pid $worker_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $sim_pid $worker_pid; do wait "$pid" 2>/dev/null || true; done
  deploy/kafka/broker.sh stop --dir "$run/kafka"
  deploy/registry/registry.sh stop --dir "$run/registry"
}
trap cleanup EXIT INT TERM
acw=.venv/bin/acw
# Teams for platforms whose records carry none (Genesys, Connect contact events): the agent directory.
$acw simulate --agents "$agents" --duration 1m --out /dev/null --directory "$run/agents.csv" > /dev/null
export ACW_AGENT_DIRECTORY="$run/agents.csv"
$acw topics create > /dev/null
$acw worker > "$run/worker.log" 2>&1 &
worker_pid=$!
# ${ACW_DEMO_AGENTS:-300} agents; event time runs ${ACW_DEMO_SPEED:-20}x faster than the clock.
$acw simulate --agents "$agents" --duration 8h --speed "${ACW_DEMO_SPEED:-20}" \
  --preset "${ACW_BENCHMARK:-general}" --topic "$ACW_INPUT_TOPIC" --format "$ACW_INPUT_FORMAT" \
  --duplicates 0.01 --reorder-ms 2000 \
  > "$run/simulator.log" 2>&1 &
sim_pid=$!
echo "worker log: $run/worker.log   metrics: http://${ACW_METRICS_HOST:-127.0.0.1}:$ACW_METRICS_PORT/metrics"
echo "registry: $ACW_SCHEMA_REGISTRY_URL   another terminal: ACW_BOOTSTRAP_SERVERS=$ACW_BOOTSTRAP_SERVERS" \
  "ACW_SCHEMA_REGISTRY_URL=$ACW_SCHEMA_REGISTRY_URL .venv/bin/acw consume acw.intervals --json"
trap 'true' INT  # Ctrl-C ends the view; the report of the run and the clean-up follow
$acw top || true
trap cleanup INT TERM
echo "writing a report of this run's intervals (Ctrl-C skips it)..."
if $acw report --from-topics --out "$run/report"; then
  echo "report: $run/report/index.html"
fi
