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

status=0
summary=()
for scenario in "${scenarios[@]}"; do
    start=$(date +%s)
    log=$(mktemp)
    molecule test -s "$scenario" > "$log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    grep -E '(Executed: |: ok=[0-9]+ +changed=)' "$log" | sed 's/^ *│ *//'
    if [ $rc -eq 0 ]; then
        summary+=("$(printf '  %-16s OK      %4ss' "$scenario" "$elapsed")")
    else
        cat "$log"
        summary+=("$(printf '  %-16s FAILED  %4ss' "$scenario" "$elapsed")")
        status=1
    fi
    if [ -n "${MOLECULE_LOG_DIR:-}" ]; then  # keep every scenario's whole output
        mkdir -p "$MOLECULE_LOG_DIR" && cp "$log" "$MOLECULE_LOG_DIR/$scenario.log"
    fi
    rm -f "$log"
done
echo "molecule scenarios:"
printf '%s\n' "${summary[@]}"
exit $status
