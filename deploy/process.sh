# Shared by deploy/kafka/broker.sh and deploy/registry/registry.sh: a local server run as a pid file in $dir.
# Expects $dir and a log function from the sourcing script.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

is_running() {
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

# Stop the server of $dir/pid: SIGTERM, then SIGKILL after 30 s.
stop() {
  if ! is_running; then
    rm -f "$dir/pid"
    return 0
  fi
  local pid
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "pid $pid did not stop in 30s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$dir/pid"
  log "stopped"
}
