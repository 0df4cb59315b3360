#!/usr/bin/env bash
# The benchmarks (not part of `make test`): peers installed into .venv-bench, then one run that
# prints the tables and writes docs/performance.md. `scripts/bench.sh --quick` for a short run.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
if [ ! -x .venv-bench/bin/python ]; then
    /usr/bin/python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install --disable-pip-version-check -q -r benchmarks/requirements.txt
exec .venv/bin/python -m benchmarks.run "$@"
