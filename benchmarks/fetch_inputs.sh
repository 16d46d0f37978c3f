#!/usr/bin/env bash
# Fetch the real Debian user-space programs the regression tests compare reports on (busybox-static and the Go 1.19
# toolchain's gofmt), without installing them: `apt-get download` into a cache, then extract only the binaries.
#
#   benchmarks/fetch_inputs.sh [CACHE_DIR]     (default: $SYSSCAN_INPUT_CACHE, else ~/.cache/sysscan-inputs)
# Prints shell assignments on stdout (SYSSCAN_BUSYBOX=…, SYSSCAN_GOFMT=…) for `eval` in .ci/run.
set -euo pipefail
cache="${1:-${SYSSCAN_INPUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sysscan-inputs}}"
log() { echo "fetch_inputs: $*" >&2; }
mkdir -p "$cache"
cd "$cache"

# fetch PACKAGE PATH_IN_DEB: the file at PATH_IN_DEB of the candidate version, extracted under $cache/PACKAGE-VERSION
fetch() {
    local pkg="$1" member="$2" ver dir
    ver="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ ( -z "$ver" || "$ver" == "(none)" ) && "$(id -u)" == 0 ]]; then
        log "no candidate for $pkg: apt-get update"
        apt-get update -q >&2 || true
        ver="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    fi
    [[ -n "$ver" && "$ver" != "(none)" ]] || { log "no candidate for $pkg"; return 1; }
    dir="$cache/$pkg-${ver//:/_}"
    if [[ ! -s "$dir/$member" ]]; then
        log "downloading $pkg $ver ..."
        mkdir -p "$dir"
        (cd "$dir" && apt-get download "$pkg=$ver" >&2)
        dpkg-deb --fsys-tarfile "$dir"/*.deb | tar -x -C "$dir" "./$member"
        rm -f "$dir"/*.deb
    fi
    echo "$dir/$member"
}

echo "SYSSCAN_BUSYBOX=$(fetch busybox-static bin/busybox)"
echo "SYSSCAN_GOFMT=$(fetch golang-1.19-go usr/lib/go-1.19/bin/gofmt)"
