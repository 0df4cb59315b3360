#!/usr/bin/env bash
# Every molecule scenario (or those named), each timed. Scenario hosts are network
# namespaces with their own view of files (tests/harness/fleet.py); molecule's destroy
# removes them also after a failure, and a last sweep removes any a killed run left.
# MOLECULE_LOG_DIR=DIR keeps each scenario's whole output in DIR/SCENARIO.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 PY_COLORS=0
# molecule keeps a scenario's state in ~/.ansible/tmp/molecule.HASH.SCENARIO, HASH from the name of
# the checkout's folder: the sweep takes only this checkout's, never those of another checkout's
# run, which may be running at this moment.
own=$(python -c 'import os; from molecule.text import checksum; print(checksum(os.path.basename(os.getcwd()), 4))') || exit 1
# The collection under test is this checkout, through a temporary collections tree
# (the scenarios set prerun: false, so molecule installs nothing into ~/.ansible).
COLLECTIONS=$(mktemp -d)
mkdir -p "$COLLECTIONS/ansible_collections/portmap"
ln -s "$PWD" "$COLLECTIONS/ansible_collections/portmap/natpmp"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(default fleet gateway_reboot miniupnpd upnp watch_service)
fi

sweep() {
    for state in "$HOME"/.ansible/tmp/molecule."$own".*/fleet; do
        [ -f "$state/fleet.json" ] || continue
        echo "molecule: removing test hosts left in $state"
        python -m tests.harness.fleet destroy "$state" || true
    done
}
sweep  # hosts a killed earlier run left behind
trap 'sweep; rm -rf "$COLLECTIONS"' EXIT

# Scenarios run MOLECULE_JOBS at a time (default 2: their hosts, gateways and molecule states are
# each scenario's own), the longest first; each one's output is printed when it ends, whole after a failure.
JOBS=${MOLECULE_JOBS:-2}
LONGEST_FIRST=(fleet gateway_reboot default watch_service upnp miniupnpd)
ordered=()
for scenario in "${LONGEST_FIRST[@]}"; do
    [[ " ${scenarios[*]} " == *" $scenario "* ]] && ordered+=("$scenario")
done
for scenario in "${scenarios[@]}"; do
    [[ " ${ordered[*]} " == *" $scenario "* ]] || ordered+=("$scenario")
done
RESULTS=$(mktemp -d)
trap 'sweep; rm -rf "$COLLECTIONS" "$RESULTS"' EXIT

run_scenario() {  # run_scenario NAME: its output in $RESULTS/NAME.log, "rc seconds" in $RESULTS/NAME.rc
    local scenario=$1 start rc
    start=$(date +%s)
    molecule test -s "$scenario" > "$RESULTS/$scenario.log" 2>&1
    rc=$?
    echo "$rc $(( $(date +%s) - start ))" > "$RESULTS/$scenario.rc"
}

report() {  # report NAME: print a finished scenario's lines (its whole output if it failed)
    local scenario=$1 rc elapsed log=$RESULTS/$1.log
    read -r rc elapsed < "$RESULTS/$scenario.rc"
    echo "== molecule $scenario: exit $rc in ${elapsed}s"
    grep -E '(Executed: |: ok=[0-9]+ +changed=)' "$log" | sed 's/^ *│ *//'
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf '  %-16s OK      %4ss' "$scenario" "$elapsed")")
    else
        cat "$log"
        summary+=("$(printf '  %-16s FAILED  %4ss' "$scenario" "$elapsed")")
        status=1
    fi
    if [ -n "${MOLECULE_LOG_DIR:-}" ]; then  # keep every scenario's whole output
        mkdir -p "$MOLECULE_LOG_DIR" && cp "$log" "$MOLECULE_LOG_DIR/$scenario.log"
    fi
}

status=0
summary=()
declare -A running=()  # pid -> scenario
for scenario in "${ordered[@]}"; do
    while [ ${#running[@]} -ge "$JOBS" ]; do
        wait -n -p done_pid "${!running[@]}"
        report "${running[$done_pid]}"
        unset "running[$done_pid]"
    done
    run_scenario "$scenario" &
    running[$!]=$scenario
done
while [ ${#running[@]} -gt 0 ]; do
    wait -n -p done_pid "${!running[@]}"
    report "${running[$done_pid]}"
    unset "running[$done_pid]"
done
echo "molecule scenarios:"
printf '%s\n' "${summary[@]}"
exit $status
