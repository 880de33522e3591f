#!/usr/bin/env bash
# Local Confluent-compatible Schema Registry (Apicurio Registry 2.4.2.Final, in-memory storage) on 127.0.0.1.
#
#   deploy/registry/registry.sh build                    build the runnable jar from Maven Central (cached)
#   deploy/registry/registry.sh start [--dir D] [--port P] [--compatibility C]
#                                                        start, wait until it answers, set global compatibility
#   deploy/registry/registry.sh stop  [--dir D]          stop (SIGTERM, then SIGKILL after 30 s)
#   deploy/registry/registry.sh status [--dir D]         print the URL if running
#
# --port 0 picks a free port. start prints the Confluent API's URL (http://127.0.0.1:PORT/apis/ccompat/v7)
# on stdout and writes it to D/url. Logs and pid live in D (default .cache/registry/run). The global
# compatibility defaults to BACKWARD, the project's policy (README, Schema evolution); Apicurio's own is NONE.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="${ACW_CACHE_DIR:-$root/.cache}"
build_dir="$cache/registry/build"
dir="$cache/registry/run"
port=8081
compatibility=BACKWARD
timeout_s="${ACW_REGISTRY_START_TIMEOUT:-120}"
app_jar_path="io/apicurio/apicurio-registry-app/2.4.2.Final/apicurio-registry-app-2.4.2.Final.jar"

# shellcheck source=../process.sh
source "$here/../process.sh"

log() { echo "registry: $*" >&2; }


runner() { ls "$build_dir"/target/*-runner.jar 2>/dev/null | head -n 1; }

build() {
  local stamp
  stamp=$(cat "$here/pom.xml" "$here/settings.xml" | sha1sum | cut -c1-12)
  if [ -f "$build_dir/.complete-$stamp" ] && [ -n "$(runner)" ]; then
    return 0
  fi
  command -v mvn >/dev/null || { log "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  log "building Apicurio Registry from Maven Central into $build_dir (first time: ~200 MB, under a minute)"
  rm -rf "$build_dir"
  mkdir -p "$build_dir/src/main/resources"
  cp "$here/pom.xml" "$build_dir/pom.xml"
  local mvn=(mvn -q -B -s "$here/settings.xml" -Dmaven.repo.local="$cache/m2" -f "$build_dir/pom.xml")
  # The app jar's own configuration must sit in the wrapper's resources, where Quarkus' build reads it.
  "${mvn[@]}" dependency:resolve >&2
  local app_jar="$cache/m2/$app_jar_path"
  (cd "$build_dir/src/main/resources" && unzip -q -o "$app_jar" application.properties META-INF/web.xml)
  cat >> "$build_dir/src/main/resources/application.properties" <<'PROPS'

# Without these the app jar's beans are not indexed: CDI fails on an unsatisfied TenantContext.
quarkus.index-dependency.registry-app.group-id=io.apicurio
quarkus.index-dependency.registry-app.artifact-id=apicurio-registry-app
PROPS
  "${mvn[@]}" package -DskipTests >&2
  [ -n "$(runner)" ] || { log "build produced no runner jar in $build_dir/target"; exit 1; }
  touch "$build_dir/.complete-$stamp"
}


answers() {
  curl -fsS -o /dev/null "http://127.0.0.1:$1/apis/ccompat/v7/subjects" 2>/dev/null
}

start() {
  build
  command -v java >/dev/null || { log "java not found: install a JDK 17 (apt-get install openjdk-17-jre-headless)"; exit 1; }
  mkdir -p "$dir"
  if is_running; then
    log "already running (pid $(cat "$dir/pid"))"
    cat "$dir/url"
    return 0
  fi
  [ "$port" = "0" ] && port=$(free_port)
  nohup java -Xms64m -Xmx512m -XX:+UseSerialGC \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.log.level=WARN -Dquarkus.log.category.\"io.apicurio\".level=WARN \
    -jar "$(runner)" > "$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  local deadline=$((SECONDS + timeout_s))
  until answers "$port"; do
    if ! is_running; then
      log "registry exited during start; last lines of $dir/registry.log:"
      tail -n 30 "$dir/registry.log" >&2 || true
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "registry did not answer within ${timeout_s}s"
      stop
      exit 1
    fi
    sleep 0.2
  done
  local url="http://127.0.0.1:$port/apis/ccompat/v7"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d "{\"compatibility\": \"$compatibility\"}" "$url/config" > /dev/null
  echo "$url" > "$dir/url"
  log "started pid $(cat "$dir/pid") at $url (in-memory storage, global compatibility $compatibility)"
  echo "$url"
}


status() {
  if is_running; then cat "$dir/url"; else log "not running"; exit 1; fi
}

cmd="${1:-}"
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --compatibility) compatibility="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
  esac
done
case "$cmd" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h|--help|"") sed -n '2,12p' "$0"; [ -n "$cmd" ] && exit 0 || exit 2 ;;
  *) log "unknown command $cmd"; exit 2 ;;
esac
