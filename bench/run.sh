#!/usr/bin/env bash
# The benchmark command: replay and worker throughput with same-run baselines -> bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m bench.bench "$@"
