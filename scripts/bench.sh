#!/usr/bin/env bash
# The benchmarks (not part of `make test`): peers installed into .venv-bench and .venv-bench-upnp,
# then one run that prints the tables and writes docs/performance.md. `scripts/bench.sh --quick`
# for a short run; `scripts/bench.sh compare --old REV [--new REV] [--rounds N]` compares two
# revisions of the client instead (benchmarks/compare.py, `make bench-compare`).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
if [ ! -x .venv-bench/bin/python ]; then
    /usr/bin/python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install --disable-pip-version-check -q -r benchmarks/requirements.txt
# The UPnP IGD peer (the PyPI miniupnpc binding) in a virtualenv of its own: benchmarks/upnp_bench.py.
if [ ! -x .venv-bench-upnp/bin/python ]; then
    /usr/bin/python3 -m venv .venv-bench-upnp
fi
.venv-bench-upnp/bin/pip install --disable-pip-version-check -q -r benchmarks/requirements-upnp.txt
if [ "${1:-}" = compare ]; then
    shift
    exec .venv/bin/python -m benchmarks.compare "$@"
fi
exec .venv/bin/python -m benchmarks.run "$@"
