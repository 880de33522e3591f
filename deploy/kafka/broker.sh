#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, no Docker.
#
#   deploy/kafka/broker.sh fetch                      download broker jars from Maven Central (cached)
#   deploy/kafka/broker.sh start [--dir D] [--port P] format storage, start, wait until it answers
#   deploy/kafka/broker.sh stop  [--dir D]            stop cleanly (SIGTERM, then SIGKILL after 30 s)
#   deploy/kafka/broker.sh resume [--dir D]           start again on the same data and ports (after stop)
#   deploy/kafka/broker.sh status [--dir D]           print the bootstrap address if running
#
# --port 0 picks a free port. start prints the bootstrap address (127.0.0.1:PORT) on stdout and
# writes it to D/bootstrap. Broker data, logs and pid live in D (default .cache/kafka/run).
# start --conf FILE appends FILE to server.properties (later keys win: listeners, TLS, SASL);
# start --listener SASL_SSL:PORT (repeatable) adds a client listener of that security protocol;
# start --scram 'SCRAM-SHA-512=[name=U,password=P]' (repeatable) stores SCRAM credentials at format.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="${ACW_CACHE_DIR:-$root/.cache}"
libs="$cache/kafka/libs"
dir="$cache/kafka/run"
port=9092
extra_conf=""
scram_args=()
listeners=""
advertised=""
protocols=""
timeout_s="${ACW_BROKER_START_TIMEOUT:-120}"

# shellcheck source=../process.sh
source "$here/../process.sh"

log() { echo "broker: $*" >&2; }


fetch() {
  if [ -f "$libs/.complete" ]; then
    return 0
  fi
  command -v mvn >/dev/null || { log "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  log "fetching Kafka broker jars from Maven Central into $libs"
  rm -rf "$libs"
  mvn -q -B -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}


port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  fetch
  command -v java >/dev/null || { log "java not found: install a JDK 17 (apt-get install openjdk-17-jre-headless)"; exit 1; }
  mkdir -p "$dir"
  if is_running; then
    log "already running (pid $(cat "$dir/pid"))"
    cat "$dir/bootstrap"
    return 0
  fi
  [ "$port" = "0" ] && port=$(free_port)
  local cport
  cport=$(free_port)
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,${listeners}CONTROLLER://127.0.0.1:$cport
advertised.listeners=${advertised}PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${protocols}PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=-1
EOF
  if [ -n "$extra_conf" ]; then cat "$extra_conf" >> "$dir/server.properties"; fi
  cat > "$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
EOF
  local cp="$libs/*"
  local jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
             "-Dlog4j.configuration=file:$dir/log4j.properties")
  local cluster_id
  cluster_id=$(java -cp "$cp" "${jvm[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  java -cp "$cp" "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$dir/server.properties" "${scram_args[@]}" > "$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
  echo "127.0.0.1:$port" > "$dir/bootstrap"
  launch
}

started_count() {
  local n
  n=$(grep -c "Kafka Server started" "$dir/server.log" 2>/dev/null) || true
  echo "${n:-0}"
}

# Run the broker configured in $dir and wait until it serves on $port.
launch() {
  local cp="$libs/*"
  local jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
             "-Dlog4j.configuration=file:$dir/log4j.properties")
  local started_before
  started_before=$(started_count)
  nohup java -cp "$cp" "${jvm[@]}" kafka.Kafka "$dir/server.properties" \
    > "$dir/stdout.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  local deadline=$((SECONDS + timeout_s))
  until port_open "$port" && [ "$(started_count)" -gt "$started_before" ]; do
    if ! is_running; then
      log "broker exited during start; last lines of $dir/server.log:"
      tail -n 30 "$dir/server.log" "$dir/stdout.log" >&2 || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "broker did not answer within ${timeout_s}s"
      stop
      exit 1
    fi
    sleep 0.2
  done
  log "started pid $(cat "$dir/pid") at 127.0.0.1:$port (data in $dir)"
  echo "127.0.0.1:$port"
}


resume() {
  fetch
  [ -f "$dir/server.properties" ] && [ -f "$dir/bootstrap" ] || { log "nothing to resume in $dir: use start"; exit 1; }
  if is_running; then
    log "already running (pid $(cat "$dir/pid"))"
    cat "$dir/bootstrap"
    return 0
  fi
  port=$(sed 's/.*://' "$dir/bootstrap")
  launch
}

status() {
  if is_running; then cat "$dir/bootstrap"; else log "not running"; exit 1; fi
}

cmd="${1:-}"
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --conf) extra_conf="$2"; shift 2 ;;
    --scram) scram_args+=(--add-scram "$2"); shift 2 ;;
    --listener)
      listeners+="${2%%:*}://127.0.0.1:${2##*:},"
      advertised+="${2%%:*}://127.0.0.1:${2##*:},"
      protocols+="${2%%:*}:${2%%:*},"
      shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
  esac
done
case "$cmd" in
  fetch) fetch ;;
  start) start ;;
  resume) resume ;;
  stop) stop ;;
  status) status ;;
  -h|--help|"") sed -n '2,14p' "$0"; [ -n "$cmd" ] && exit 0 || exit 2 ;;
  *) log "unknown command $cmd"; exit 2 ;;
esac
