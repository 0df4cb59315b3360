#!/usr/bin/env bash
# `make test`: every stage in order, each timed; stops at the first failure and prints the
# table of stage timings either way.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

STAGES=(
    "deps:make -s deps"
    "venv:make -s venv"
    "py38:make -s py38"
    "unit:make -s unit"
    "pythons:make -s pythons"
    "integration:make -s integration"
    "molecule:make -s molecule"
    "changelog:make -s changelog"
    "docs:make -s docs"
    "lint:make -s lint"
    "sanity:make -s sanity"
    "matrix:env MATRIX_MAIN_IN_STAGES=1 make -s matrix"
)

seconds_since() {  # tenths of seconds since a `date +%s%N` stamp, as N.N
    local tenths=$(( ($(date +%s%N) - $1) / 100000000 ))
    echo "$((tenths / 10)).$((tenths % 10))"
}

names=()
times=()
results=()
status=0
total_start=$(date +%s%N)
for stage in "${STAGES[@]}"; do
    name=${stage%%:*}
    command=${stage#*:}
    echo "== stage $name: $command"
    start=$(date +%s%N)
    $command
    rc=$?
    elapsed=$(seconds_since "$start")
    names+=("$name")
    times+=("$elapsed")
    if [ $rc -eq 0 ]; then
        results+=("OK")
        echo "== stage $name: OK in ${elapsed}s"
    else
        results+=("FAILED (exit $rc)")
        echo "== stage $name: FAILED (exit $rc) in ${elapsed}s"
        status=1
        break
    fi
done
total=$(seconds_since "$total_start")

echo
echo "stage timings:"
for i in "${!names[@]}"; do
    printf '  %-12s %8ss  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
done
printf '  %-12s %8ss\n' "total" "$total"
if [ $status -ne 0 ]; then
    echo "make test: FAILED"
fi
exit $status
