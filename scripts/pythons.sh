#!/usr/bin/env bash
# The managed-host code (plugins/module_utils/portmap/ and the modules' entry points) under
# every CPython the modules claim: `ansible-test units --venv --python X` on
# tests/unit/plugins/, each Python in a virtualenv of its own. A Python missing here is named
# and not run; with CI set, that fails the stage. Two Pythons run at a time (PYTHONS_LANES), each
# lane in a collection tree of its own, so ansible-test's outputs never meet.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
PYTHONS=${PYTHONS:-3.8 3.9 3.10 3.11 3.12 3.13}
source "$REPO/scripts/lib-ansible-test.sh"

offline_get_pip "$REPO" "$VENV" || exit 1
LANES=${PYTHONS_LANES:-2}  # two cores: two Pythons at a time, each lane in a collection tree of its own
RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT

lane() {  # lane N VERSION...: the units on each VERSION in turn, in tree units-N; a result file per version
    local n=$1 dest version python start rc
    shift
    dest=$(collection_tree "$REPO" "units-$n") || return 1
    for version in "$@"; do
        if ! python=$(find_python "$version"); then
            echo "not run: python$version not found" > "$RESULTS/$version"
            continue
        fi
        echo "== units on Python $version ($python)"
        start=$SECONDS
        (cd "$dest" && PATH="$VENV/bin:$(dirname "$python"):$PATH" \
            ansible-test units --venv --python "$version" --color no tests/unit/plugins/) > "$RESULTS/$version.log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            echo "passed ($((SECONDS - start)) s)" > "$RESULTS/$version"
        else
            cat "$RESULTS/$version.log"
            echo "FAILED (exit $rc, $((SECONDS - start)) s)" > "$RESULTS/$version"
        fi
        tail -n 1 "$RESULTS/$version.log"
    done
}

read -ra versions <<<"$PYTHONS"
pids=()
for ((n = 0; n < LANES; n++)); do
    mine=()
    for ((i = n; i < ${#versions[@]}; i += LANES)); do
        mine+=("${versions[$i]}")
    done
    [ ${#mine[@]} -gt 0 ] && { lane "$n" "${mine[@]}" & pids+=($!); }
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done

echo
echo "managed-host units (ansible-test units, tests/unit/plugins/):"
for version in "${versions[@]}"; do
    row=$(cat "$RESULTS/$version" 2>/dev/null || echo "FAILED: no result")
    printf '  Python %-5s %s\n' "$version" "$row"
    case $row in
        passed*) ;;
        "not run"*) [ -n "${CI:-}" ] && status=1 ;;
        *) status=1 ;;
    esac
done
exit $status
