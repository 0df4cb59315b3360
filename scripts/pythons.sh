#!/usr/bin/env bash
# The managed-host code (plugins/module_utils/portmap/ and the modules' entry points) under
# every CPython the modules claim: `ansible-test units --venv --python X` on
# tests/unit/plugins/, each Python in a virtualenv of its own. A Python missing here is named
# and not run; with CI set, that fails the stage.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
PYTHONS=${PYTHONS:-3.8 3.9 3.10 3.11 3.12 3.13}
source "$REPO/scripts/lib-ansible-test.sh"

DEST=$(collection_tree "$REPO" units) || exit 1
offline_get_pip "$REPO" "$VENV" || exit 1

status=0
results=()
for version in $PYTHONS; do
    if ! python=$(find_python "$version"); then
        results+=("$version|not run: python$version not found")
        [ -n "${CI:-}" ] && status=1
        continue
    fi
    echo "== units on Python $version ($python)"
    start=$SECONDS
    (cd "$DEST" && PATH="$VENV/bin:$(dirname "$python"):$PATH" \
        ansible-test units --venv --python "$version" --color no tests/unit/plugins/)
    rc=$?
    if [ $rc -eq 0 ]; then
        results+=("$version|passed ($((SECONDS - start)) s)")
    else
        results+=("$version|FAILED (exit $rc, $((SECONDS - start)) s)")
        status=1
    fi
done

echo
echo "managed-host units (ansible-test units, tests/unit/plugins/):"
for row in "${results[@]}"; do
    printf '  Python %-5s %s\n' "${row%%|*}" "${row#*|}"
done
exit $status
