#!/usr/bin/env bash
# Proves trace validation catches planted driver bugs: for each patch in
# this directory (bugs of the runtime's driver, which the model checker
# never runs), copies the sources to a temporary directory, plants the bug
# there, and runs both trace validations in the copy: the in-process
# runtime's (model/tests/it/trace_validation.rs, its correct-driver test) and
# the TCP node processes' logs (cli/tests/it/node_trace_validation.rs). Each
# must fail. The shipped driver is never touched, and no switch for the bug
# exists in it.
#
# Usage: fuzz/planted/driver/check.sh [PATCH...]
#   PATCH   file names in this directory without .patch; default every patch
# The build cache lives in target/planted-driver: the first run builds the
# model's and the cli's tests (several minutes), later ones the runtime and
# up. Prints, per patch and test, the first refused event.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
target_dir=$root/target/planted-driver

tests=(
    "raft-election-model trace_validation every_step_of_a_thousand_seeded_runs"
    "raft-election-cli node_trace_validation every_logged_step"
)
# shellcheck source=../plant.sh
source "$here/../plant.sh"
begin_planting "$here" "$@"
for name in "${names[@]}"; do
    copy=$work/$name
    plant "$root" "$here/$name.patch" "$copy"
    for test in "${tests[@]}"; do
        read -r package file filter <<<"$test"
        log=$work/$name-$file.log
        run_logged "$copy" "$log" env RAFT_ELECTION_TRACE_SEEDS=50 CARGO_TARGET_DIR="$target_dir" \
            cargo test -q -p "$package" --test it -- "$file::$filter"
        # The reason after the refused event (whose Debug is long).
        refused=$(grep -m1 -oE 'event [0-9]+ \(.*' "$log" | sed -E 's/^.*\): //' | cut -c1-140 || true)
        if [[ $status != 0 && -n $refused ]]; then
            printf '%-22s %-24s caught: %s\n' "$name" "$file" "$refused"
        else
            printf '%-22s %-24s NOT caught (exit %s)\n' "$name" "$file" "$status"
            note_missed "$name/$file" "$log"
        fi
    done
done
finish_planting "trace validation" "trace validation caught all ${#names[@]} planted driver bugs, in-process and in the node logs"
