#!/usr/bin/env bash
# `make matrix`: every ansible-core minor the collection claims, from requires_ansible's to
# the newest, each in a virtualenv of its own (scripts/matrix/ansible-core-X.Y.txt: exact
# pins and the Python it runs on), kept in $PORTMAP_CACHE/venv-matrix/ (default ~/.cache/portmap-natpmp)
# and rebuilt when its pins change.
# For each: ansible-test sanity (scripts/sanity.sh, offline) and the playbook tests that
# need no network namespace, with that version's ansible-playbook. A version whose Python
# is missing is named and not run; with CI set, that fails the stage. Sanity and the playbook
# tests of one version run side by side (two cores).
#   MATRIX_MAIN_IN_STAGES=1 (`make test`): the version and Python of .venv are not run again, the
#   sanity and integration stages ran them; MATRIX_SANITY: ansible-test sanity arguments for every version but the newest, which
#   runs them all (default below); MATRIX_VERSIONS: the minors to run, separated by blanks or commas (default: all pinned).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
source "$REPO/scripts/lib-ansible-test.sh"
MATRIX_SANITY=${MATRIX_SANITY:-}
PLAYBOOK_TESTS=(tests/integration/test_playbooks.py tests/integration/test_role_argspec.py tests/integration/test_role_units.py)

pinned=$(for pins in scripts/matrix/ansible-core-*.txt; do pins=${pins##*-}; echo "${pins%.txt}"; done | sort -V)
newest=$(tail -n 1 <<<"$pinned")
# The pins must cover every minor from requires_ansible's to the newest pinned.
oldest=$(sed -n 's/^requires_ansible: *">=\([0-9]*\.[0-9]*\).*/\1/p' meta/runtime.yml)
expected=$(for ((minor = ${oldest#*.}; minor <= ${newest#*.}; minor++)); do echo "${oldest%.*}.$minor"; done)
if [ -z "$oldest" ] || [ "$pinned" != "$expected" ]; then
    echo "matrix: meta/runtime.yml requires_ansible names ${oldest:-nothing}; scripts/matrix/ pins" \
        "$(tr '\n' ' ' <<<"$pinned")rather than $(tr '\n' ' ' <<<"$expected")" >&2
    exit 1
fi

MATRIX_VERSIONS=${MATRIX_VERSIONS:-$pinned}
status=0
rows=()
for minor in ${MATRIX_VERSIONS//,/ }; do
    pins=scripts/matrix/ansible-core-$minor.txt
    version=$(sed -n 's/^ansible-core==//p' "$pins")
    python_version=$(sed -n 's/^# python: //p' "$pins")
    if ! python=$(find_python "$python_version"); then
        rows+=("$version|$python_version|not run: python$python_version not found|-")
        [ -n "${CI:-}" ] && status=1
        continue
    fi
    if [ -n "${MATRIX_MAIN_IN_STAGES:-}" ] && grep -qx "ansible-core==$version" requirements-test.txt \
            && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$python_version" ]; then
        rows+=("$version|$python_version|sanity all: stage sanity|playbooks: stage integration (.venv)")
        continue
    fi
    venv=$PORTMAP_CACHE/venv-matrix/ansible-core-$minor
    stamp=$venv/.installed-$(sha256sum "$pins" | cut -c1-16)
    if [ ! -e "$stamp" ]; then
        echo "== matrix: ansible-core $version on Python $python_version: building $venv"
        rm -rf "$venv"
        if ! "$python" -m venv "$venv" || ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$pins"; then
            rows+=("$version|$python_version|FAILED: virtualenv|-")
            status=1
            continue
        fi
        touch "$stamp"
    fi

    if [ "$minor" = "$newest" ] || [ -z "$MATRIX_SANITY" ]; then
        sanity_args=() sanity_name="all"
    else
        read -ra sanity_args <<<"$MATRIX_SANITY"
        sanity_name=${MATRIX_SANITY//--test /}
    fi
    echo "== matrix: ansible-core $version on Python $python_version: sanity ($sanity_name) and playbook tests"
    log=$venv/sanity.log
    start=$SECONDS
    (VENV=$venv SANITY_PYTHON=$python_version scripts/sanity.sh "${sanity_args[@]}" > "$log" 2>&1
     rc=$?; echo $((SECONDS - start)) > "$log.seconds"; exit $rc) &
    sanity_pid=$!
    out=$(PORTMAP_ANSIBLE_BIN=$venv/bin "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${PLAYBOOK_TESTS[@]}" 2>&1)
    rc=$?
    summary="$(tail -n 1 <<<"$out" | tr -d '=' | xargs) ($((SECONDS - start)) s)"
    if [ $rc -eq 0 ]; then
        playbooks="playbooks: $summary"
    else
        echo "$out"
        playbooks="playbooks: FAILED: $summary"
        status=1
    fi
    if wait "$sanity_pid"; then
        sanity="sanity $sanity_name: passed ($(cat "$log.seconds") s)"
    else
        grep -v '^WARNING: Location' "$log"
        sanity="sanity $sanity_name: FAILED ($(cat "$log.seconds") s)"
        status=1
    fi
    rows+=("$version|$python_version|$sanity|$playbooks")
done

echo
echo "matrix (ansible-core x controller Python):"
printf '  %-14s %-7s %s\n' "ansible-core" "Python" "what ran"
for row in "${rows[@]}"; do
    IFS='|' read -r version python_version sanity playbooks <<<"$row"
    printf '  %-14s %-7s %s; %s\n' "$version" "$python_version" "$sanity" "$playbooks"
done
exit $status
