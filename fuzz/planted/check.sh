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
#   PLANTED_TIMEOUT (seconds per run, default 600).
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
    else
        printf '%-46s NOT caught (exit %s after %s s)\n' "$name" "$status" "$elapsed"
        note_missed "$name" "$log"
    fi
done
finish_planting "the default check" "the default check alone caught all ${#names[@]} planted bugs"
