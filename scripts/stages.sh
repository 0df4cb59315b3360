#!/usr/bin/env bash
# `make test`: every stage, each timed; stops at the first failure and prints the table of stage
# timings either way.
# A line of STAGES is one stage, or a stage and, after " | ", a side track: stages that run one
# after another alongside it (the machine has two cores; a side track holds stages that are light
# on the CPU, or that fill the other core while the first stage mostly waits). The first stage's
# output streams; a side stage's output is printed when it ends (whole), after it the line's next
# stages wait until the whole line is over. Each stage's time in the table is its own wall time
# (from its start to its end, so stages of one line overlap), the total the wall time of the run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# The matrix is split: its two newest ansible-core minors fill the CPU the integration tests leave idle while they
# wait on timers and leases (after the other side stages), the older ones run beside molecule.
MINORS=$(for pins in scripts/matrix/ansible-core-*.txt; do pins=${pins##*-}; echo "${pins%.txt}"; done | sort -V)
NEWEST=$(tail -n 2 <<<"$MINORS" | paste -sd, -)
OLDER=$(head -n -2 <<<"$MINORS" | paste -sd, -)
STAGES=(
    "deps:make -s deps"
    "venv:make -s venv"
    "integration:make -s integration | py38:make -s py38 | unit:make -s unit | changelog:make -s changelog | docs:make -s docs | lint:make -s lint | sanity:make -s sanity | pythons:make -s pythons | matrix-newest:env MATRIX_MAIN_IN_STAGES=1 MATRIX_VERSIONS=$NEWEST make -s matrix"
    "molecule:make -s molecule | matrix:env MATRIX_MAIN_IN_STAGES=1 MATRIX_VERSIONS=$OLDER make -s matrix"
)

seconds_since() {  # tenths of seconds since a `date +%s%N` stamp, as N.N
    local tenths=$(( ($(date +%s%N) - $1) / 100000000 ))
    echo "$((tenths / 10)).$((tenths % 10))"
}

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

names=()
times=()
results=()
status=0

record() {  # record NAME RC ELAPSED [NOTE]
    local result
    names+=("$1")
    times+=("$3")
    if [ "$2" -eq 0 ]; then result="OK"; else result="FAILED (exit $2)"; status=1; fi
    results+=("$result${4:+ $4}")
    echo "== stage $1: $result in ${3}s${4:+ $4}"
}

# side_track FIRST STAGE...: each STAGE (name:command) in turn, output to $LOGS/NAME.log, rc and time
# to $LOGS/NAME.result; stops at the first that fails.
side_track() {
    local first=$1 stage name command start rc
    shift
    for stage in "$@"; do
        name=${stage%%:*}
        command=${stage#*:}
        start=$(date +%s%N)
        echo "== stage $name: $command (alongside $first)" > "$LOGS/$name.log"
        $command >> "$LOGS/$name.log" 2>&1
        rc=$?
        echo "$rc $(seconds_since "$start")" > "$LOGS/$name.result"
        if [ $rc -ne 0 ]; then  # said at once; the whole output follows when the line is over
            echo "== stage $name: FAILED (exit $rc) alongside $first; its output follows when $first ends"
            return $rc
        fi
    done
}

total_start=$(date +%s%N)
for line in "${STAGES[@]}"; do
    IFS='|' read -ra parts <<<"$line"
    for i in "${!parts[@]}"; do  # trim the blanks around each part
        parts[i]=$(sed 's/^ *//; s/ *$//' <<<"${parts[$i]}")
    done
    name=${parts[0]%%:*}
    command=${parts[0]#*:}
    side=("${parts[@]:1}")
    side_pid=
    if [ ${#side[@]} -gt 0 ]; then
        side_track "$name" "${side[@]}" &
        side_pid=$!
    fi
    echo "== stage $name: $command"
    start=$(date +%s%N)
    $command
    rc=$?
    record "$name" $rc "$(seconds_since "$start")"
    if [ -n "$side_pid" ]; then
        wait "$side_pid"
        for stage in "${side[@]}"; do
            side_name=${stage%%:*}
            [ -e "$LOGS/$side_name.log" ] || continue  # not reached: an earlier side stage failed
            cat "$LOGS/$side_name.log"
            read -r side_rc side_elapsed < "$LOGS/$side_name.result" 2>/dev/null || { side_rc=1; side_elapsed="?"; }
            record "$side_name" "$side_rc" "$side_elapsed" "(alongside $name)"
        done
    fi
    [ $status -eq 0 ] || break
done
total=$(seconds_since "$total_start")

echo
echo "stage timings (a stage marked \"alongside\" ran at the same time as the one named):"
for i in "${!names[@]}"; do
    printf '  %-12s %8ss  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
done
printf '  %-12s %8ss  (wall time)\n' "total" "$total"
if [ $status -ne 0 ]; then
    for i in "${!names[@]}"; do
        [[ "${results[$i]}" == OK* ]] || echo "failed: stage ${names[$i]}: ${results[$i]}"
    done
    echo "make test: FAILED"
fi
exit $status
