#!/usr/bin/env bash
# Proves the default `check` (the model checker's portfolio, no options)
# catches every planted bug on its own, without the tests or the fuzzer:
# for each patch in this directory, copies the sources to a temporary
# directory, plants the bug there, builds `check` and runs it, which must
# exit 1 with a counterexample. The shipped core is never touched.
#
# Usage: fuzz/planted/check.sh [PATCH...]
#   PATCH   file names in fuzz/planted/ without .patch; default every patch
# Environment: PLANTED_SOURCES=DIR plants into a copy of DIR instead of this
#   repository (e.g. an older checkout, to show what its `check` missed);
#   PLANTED_TIMEOUT (seconds per run, default 600);
#   PLANTED_DIFFERENTIAL=SECONDS also runs the same portfolio on the full
#   model (`check --no-reductions --time-limit SECONDS`, a limit per
#   configuration and pass) on the same build, and fails unless it gives
#   the same verdict: a bug the reductions hid, or one the full model
#   cannot find within the limit, shows as a disagreement.
# The build cache lives in target/planted-check, so each patch rebuilds only
# the core and the model (about a minute). Prints, per patch, the first
# broken invariant, its own words (for a transition rule, the rule), and
# how long the check ran.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
sources=${PLANTED_SOURCES:-$root}
limit=${PLANTED_TIMEOUT:-600}
target_dir=$root/target/planted-check

# shellcheck source=plant.sh
source "$here/plant.sh"

# `differential COPY NAME CAUGHT` runs the planted build in COPY on the full
# model and adds NAME to `missed` unless its verdict is CAUGHT (yes or no).
differential() {
    local copy=$1 name=$2 caught=$3 log=$work/$2.full.log start elapsed full=no
    start=$(date +%s.%N)
    run_logged "$copy" "$log" timeout "$limit" "$target_dir/release/check" \
        --no-reductions --time-limit "$PLANTED_DIFFERENTIAL"
    elapsed=$(awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.1f", end - start }')
    if [[ $status == 1 ]] && grep -q '^Counterexample to' "$log"; then
        full=yes
    fi
    if [[ $full == "$caught" ]]; then
        printf '%-46s   full model agrees (caught: %s, %s s): %s\n' "" "$full" "$elapsed" \
            "$(grep -m1 '^Counterexample to' "$log" | cut -c1-100)"
    else
        printf '%-46s   full model DISAGREES: caught %s with every reduction, %s without (%s s)\n' \
            "" "$caught" "$full" "$elapsed"
        note_missed "$name (full model)" "$log"
    fi
}
begin_planting "$here" "$@"
for name in "${names[@]}"; do
    copy=$work/$name
    plant "$sources" "$here/$name.patch" "$copy"
    (cd "$copy" && CARGO_TARGET_DIR=$target_dir cargo build -q --release --bin check)
    log=$work/$name.log
    start=$(date +%s.%N)
    run_logged "$copy" "$log" timeout "$limit" "$target_dir/release/check"
    elapsed=$(awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.1f", end - start }')
    if [[ $status == 1 ]] && grep -q '^Counterexample to' "$log"; then
        what=$(grep -m1 '^Counterexample to' "$log")
        where=$(grep -m1 -E '^FAILED' "$log" || true)
        printf '%-46s caught in %6s s: %s %s\n' "$name" "$elapsed" "$what" "${where#FAILED}"
        # The broken invariant's own words; for a transition rule, the rule
        # (between the input and the state after).
        invariant=$(sed -E 's/^Counterexample to "([^"]*)".*/\1/' <<<"$what")
        detail=$(grep -m1 -F ">>> VIOLATED $invariant: " "$log" | sed -E 's/^.*>>> VIOLATED [^:]*: //' || true)
        if [[ $invariant == "each step follows its rule" ]]; then
            detail=$(sed -E 's/ \(after: .*$//; s/^.*(\}|\)|Start): //' <<<"$detail")
        fi
        [[ -z $detail ]] || printf '%-46s   %s\n' "" "${detail:0:160}"
        caught=yes
    else
        printf '%-46s NOT caught (exit %s after %s s)\n' "$name" "$status" "$elapsed"
        note_missed "$name" "$log"
        caught=no
    fi
    [[ -z ${PLANTED_DIFFERENTIAL:-} ]] || differential "$copy" "$name" "$caught"
done
finish_planting "the default check" "the default check alone caught all ${#names[@]} planted bugs"
