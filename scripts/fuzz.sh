#!/usr/bin/env bash
# The long fuzzing run (not part of `make test`): FUZZ_EXAMPLES random examples per test
# (default 30000 per test: four NAT-PMP/PCP tests, four STUN tests and seven UPnP IGD ones, 450,000 cases),
# each test's count printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
export FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-30000}"
SECONDS=0
.venv/bin/python -m pytest tests/unit/test_fuzz.py tests/unit/test_fuzz_stun.py tests/unit/test_fuzz_upnp.py -q -s -p no:cacheprovider
echo "fuzz: $FUZZ_EXAMPLES examples per test, ${SECONDS} s"
