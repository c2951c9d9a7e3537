# Sourced by the planted-bug scripts: `plant SOURCES PATCH COPY` copies the
# sources in SOURCES (no build output, no git metadata, no local corpora) to
# the new directory COPY and applies PATCH there. The sources are never
# touched. `patch_names DIR [NAME...]` prints the NAMEs given, one a line,
# or, given none, the name (without .patch) of every patch in DIR.
patch_names() {
    local dir=$1 patch
    shift
    if [[ $# -gt 0 ]]; then
        printf '%s\n' "$@"
        return
    fi
    for patch in "$dir"/*.patch; do
        basename "$patch" .patch
    done
}

plant() {
    local sources=$1 patch_file=$2 copy=$3
    [[ -f $patch_file ]] || { echo "no such patch: $patch_file" >&2; exit 2; }
    mkdir -p "$copy"
    tar -C "$sources" --exclude=./target --exclude=./fuzz/target --exclude=./fuzz/artifacts \
        --exclude=./fuzz/corpus --exclude=./.git -cf - . | tar -C "$copy" -xf -
    patch --quiet -d "$copy" -p1 <"$patch_file"
}

# The loop every check script runs. `begin_planting DIR [NAME...]` sets
# `names` (as patch_names), a `work` directory removed on exit, and an
# empty `missed`.
begin_planting() {
    local dir=$1
    shift
    mapfile -t names < <(patch_names "$dir" "$@")
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    missed=()
}

# `run_logged DIR LOG COMMAND...` runs COMMAND in DIR with its output in
# LOG and sets `status` to its exit status: a failure is what the scripts
# want to see, so it must not stop them under `set -e`.
run_logged() {
    local dir=$1 log=$2
    shift 2
    status=0
    (cd "$dir" && "$@") >"$log" 2>&1 || status=$?
}

# `note_missed LABEL LOG` adds LABEL to `missed` and shows LOG's last lines.
note_missed() {
    tail -5 "$2" | sed 's/^/    /'
    missed+=("$1")
}

# `finish_planting WHO SUMMARY` exits 1 if WHO missed any patch, naming
# them, and prints SUMMARY otherwise.
finish_planting() {
    if [[ ${#missed[@]} -gt 0 ]]; then
        echo "$1 missed: ${missed[*]}" >&2
        exit 1
    fi
    echo "$2"
}
