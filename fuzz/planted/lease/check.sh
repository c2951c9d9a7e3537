#!/usr/bin/env bash
# Proves the leader lease's seeded runs catch planted lease bugs, which the
# untimed model checker cannot see (it has no clock, so no lease): for each
# patch in this directory, copies the sources to a temporary directory,
# plants the bug there, and runs in the copy the lease-runs test `cargo test`
# runs (sim/src/lease_runs.rs, its 1,000 seeds), which must fail. The
# shipped sources are never touched, and no switch for the bug exists in
# them.
#
# Usage: fuzz/planted/lease/check.sh [PATCH...]
#   PATCH   file names in this directory without .patch; default every patch
# The build cache lives in target/planted-lease (a debug build of the core
# and the simulator, as `cargo test`: about a minute the first time, half a
# minute a patch after). Prints, per patch, the seed that caught it and what
# failed there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
target_dir=$root/target/planted-lease
test=lease_runs::tests::every_leadership_leases_and_no_two_ever_hold_at_once_under_drift_delays_and_faults

# shellcheck source=../plant.sh
source "$here/../plant.sh"
begin_planting "$here" "$@"
for name in "${names[@]}"; do
    copy=$work/$name
    plant "$root" "$here/$name.patch" "$copy"
    log=$work/$name.log
    run_logged "$copy" "$log" env CARGO_TARGET_DIR="$target_dir" \
        cargo test -q -p raft-election-sim --lib -- --exact "$test"
    # The test panics with "seed N: what failed".
    caught=$(grep -m1 -oE 'seed [0-9]+: .*' "$log" | cut -c1-220 || true)
    if [[ $status != 0 && -n $caught ]]; then
        printf '%-40s caught at %s\n' "$name" "$caught"
    else
        printf '%-40s NOT caught (exit %s)\n' "$name" "$status"
        note_missed "$name" "$log"
    fi
done
finish_planting "the lease runs" "the lease runs of cargo test caught all ${#names[@]} planted lease bugs"
