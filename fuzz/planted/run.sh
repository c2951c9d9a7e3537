#!/usr/bin/env bash
# Proves the `election` fuzz target bites: copies the repository to a
# temporary directory, plants a bug there with a patch from this directory,
# and fuzzes from an empty corpus until the first crash, printing how long
# the fuzzer took. The shipped core is never touched, and no switch for the
# bug exists in it.
#
# Usage: fuzz/planted/run.sh [PATCH] [TRIALS] [MAX_SECONDS]
#   PATCH        a file name in fuzz/planted/ without .patch;
#                default forget-vote-on-restart
#   TRIALS       independent fuzzing runs (libFuzzer seeds 1..TRIALS); default 3
#   MAX_SECONDS  give up on a trial after this long; default 300
# Environment: FUZZ_TOOLCHAIN, FUZZ_SANITIZER, FUZZ_TRACE_COMPARES and
# FUZZ_LIBFUZZER_DEFAULTS as for .ci/fuzz; the build cache lives in
# fuzz/target/planted so a second run starts in seconds. PLANTED_KEEP=1 minimizes the first crash and stores it as
# fuzz/regressions/election/planted-PATCH (after a change of the input format).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:-forget-vote-on-restart}
trials=${2:-3}
max_seconds=${3:-300}
patch_file=$here/$name.patch
[[ -f $patch_file ]] || { echo "no such patch: $patch_file" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sources only: no build output, no git metadata, no local corpora.
tar -C "$root" --exclude=./target --exclude=./fuzz/target --exclude=./fuzz/artifacts \
    --exclude=./fuzz/corpus --exclude=./.git -cf - . | tar -C "$work" -xf -
patch --quiet -d "$work" -p1 <"$patch_file"
echo "planted $name in a copy at $work:"
grep -n "PLANTED BUG" -A2 -r "$work/core/src" | sed "s|$work/||"

# shellcheck source=../../.ci/fuzz
source "$root/.ci/fuzz"
target_dir=$root/fuzz/target/planted
fuzz_setup "$target_dir"
libfuzzer_flags election
FUZZ_FLAGS+=(--target-dir "$target_dir")
cd "$work"
"${FUZZ_CMD[@]}" build "${FUZZ_FLAGS[@]}" election

# The kept regression input for this bug must still catch it: a cheap,
# deterministic check that needs no fuzzing.
regression=$root/fuzz/regressions/election/planted-$name
if [[ -f $regression && ${PLANTED_KEEP:-0} != 1 ]]; then
    if "${FUZZ_CMD[@]}" run "${FUZZ_FLAGS[@]}" election "$regression" >"$work/replay.log" 2>&1; then
        echo "regression input $(basename "$regression"): NOT caught" >&2
        exit 1
    fi
    echo "regression input $(basename "$regression"): caught"
    grep -m1 -A1 "panicked" "$work/replay.log" | sed 's/^/    /'
fi

# Crash inputs outlive the temporary copy (fuzz/artifacts is ignored by git).
artifacts=$root/fuzz/artifacts/planted
mkdir -p "$artifacts"
times=()
for seed in $(seq 1 "$trials"); do
    corpus=$work/corpus-$seed
    mkdir -p "$corpus"
    log=$work/trial-$seed.log
    start=$(date +%s.%N)
    set +e
    "${FUZZ_CMD[@]}" run "${FUZZ_FLAGS[@]}" election "$corpus" -- "${LIBFUZZER_FLAGS[@]}" \
        -seed="$seed" -max_total_time="$max_seconds" -artifact_prefix="$artifacts/$name-seed$seed-" >"$log" 2>&1
    status=$?
    set -e
    end=$(date +%s.%N)
    elapsed=$(awk -v start="$start" -v end="$end" 'BEGIN { print end - start }')
    if [[ $status == 0 ]]; then
        echo "trial $seed (seed $seed): NOT found within ${max_seconds}s"
        continue
    fi
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    printf 'trial %s (seed %s): found after %.1f s (about %s executions)\n' "$seed" "$seed" "$elapsed" "${runs:-?}"
    grep -m1 "panicked" -A1 "$log" | sed 's/^/    /'
    grep -m1 -o "Test unit written to .*" "$log" | sed 's/^/    /' || true
    times+=("$elapsed")
    if [[ ${PLANTED_KEEP:-0} == 1 && ${#times[@]} == 1 ]]; then
        crash=$(grep -m1 -o "Test unit written to .*" "$log" | sed 's/Test unit written to //')
        "${FUZZ_CMD[@]}" tmin "${FUZZ_FLAGS[@]}" election "$crash" -- -runs=20000 >"$work/tmin.log" 2>&1 || true
        minimized=$(grep -m1 -oE "failed to minimize beyond [^ ]+" "$work/tmin.log" | sed 's/failed to minimize beyond //')
        cp "${minimized:-$crash}" "$regression"
        echo "    kept as $regression"
    fi
done

if [[ ${#times[@]} -eq 0 ]]; then
    echo "the fuzzer did not find the planted bug in any trial" >&2
    exit 1
fi
printf '%s\n' "${times[@]}" | sort -n |
    awk '{t[NR]=$1} END {printf "found in %d of '"$trials"' trials; time to find: min %.1f s, median %.1f s, max %.1f s\n", NR, t[1], t[int((NR+1)/2)], t[NR]}'
