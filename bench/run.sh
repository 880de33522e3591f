#!/usr/bin/env bash
# The benchmark command.
#   bench/run.sh [--runs 3]          replay and worker throughput with same-run baselines -> bench/results/latest.json
#   bench/run.sh peers [--runs 3]    our worker vs the bare-consumer ceiling, a Quix Streams peer and replay on
#                                    >= 1,000,000 simulated events, latency and peak RSS -> bench/results/peers.json
#   bench/run.sh memory              replay of a 20,000-agent day, RSS over time -> bench/results/memory.json
#   bench/run.sh soak [--minutes 10] one worker fed a simulated day in real time, RSS per minute -> bench/results/soak.json
#   bench/run.sh formats [--runs 3]  replay per input format (ours and each platform's) on the same simulated day
#                                    -> bench/results/formats.json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
case "${1:-}" in
  peers)
    shift
    .venv/bin/pip install -q -e '.[bench]'  # the peer's framework, only for this benchmark
    exec .venv/bin/python -m bench.peers "$@" ;;
  memory)
    shift
    exec .venv/bin/python -m bench.memory "$@" ;;
  soak)
    shift
    exec .venv/bin/python -m bench.soak "$@" ;;
  formats)
    shift
    exec .venv/bin/python -m bench.formats "$@" ;;
  *)
    exec .venv/bin/python -m bench.bench "$@" ;;
esac
