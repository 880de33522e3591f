#!/usr/bin/env bash
# The test command: installs what is missing, lints, then runs unit and integration tests
# (the integration tests start their own Kafka broker on a free 127.0.0.1 port).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check streams tests bench deploy
.venv/bin/ruff format --check streams tests bench deploy
.venv/bin/mypy --strict streams/domain
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
# The suite above runs the compiled core; its own unit tests run once more on the plain Python source.
ACW_CORE=python .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/domain
# The integration tests once more with each worker's cores in a core process (ACW_WORKER_PROCESSES=2), unless
# the command was given tests of its own to run.
if [ $# -eq 0 ]; then
  ACW_TEST_WORKER_PROCESSES=2 .venv/bin/python -m pytest -q -p no:cacheprovider tests/integration
fi
