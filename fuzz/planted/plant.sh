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
