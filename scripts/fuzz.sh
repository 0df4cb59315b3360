#!/usr/bin/env bash
# The long fuzzing run (not part of `make test`): FUZZ_EXAMPLES random examples per test
# (default 30000 per test: four NAT-PMP/PCP tests, four STUN tests and seven UPnP IGD ones, 450,000 cases),
# each test's count printed at the end; and the fleet's state machine (tests/unit/test_fuzz_fleet.py: three hosts
# against the simulated gateway under PCP and NAT-PMP (each also keeping mappings by external port, as miniupnpd
# does) and UPnP IGD) with FUZZ_FLEET_EXAMPLES random sequences of up
# to 30 steps per gateway (default 300).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
export FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-30000}"
export FUZZ_FLEET_EXAMPLES="${FUZZ_FLEET_EXAMPLES:-300}"
SECONDS=0
.venv/bin/python -m pytest tests/unit/test_fuzz.py tests/unit/test_fuzz_stun.py tests/unit/test_fuzz_upnp.py \
    tests/unit/test_fuzz_fleet.py -q -s -p no:cacheprovider
echo "fuzz: $FUZZ_EXAMPLES examples per test, $FUZZ_FLEET_EXAMPLES sequences per protocol for the fleet, ${SECONDS} s"
