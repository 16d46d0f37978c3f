#!/usr/bin/env bash
# Real 32-bit Debian programs for the i386 checks (issue 16): Debian's i386 busybox-static, coreutils and dash, and
# musl's i386 libc.a (the corpus's musl i386 program is linked against it), extracted under one root; plus the i386
# C library installed on the machine (multiarch), so that the dynamic i386 programs run under strace for ground truth.
#
#   benchmarks/fetch_i386.sh [CACHE_DIR]     (default: $SYSSCAN_INPUT_CACHE, else ~/.cache/sysscan-inputs)
# Prints SYSSCAN_I386_ROOT=… on stdout for `eval` in .ci/run. As root it adds the i386 architecture to dpkg
# (`dpkg --add-architecture i386`: no change to the system's sources) and installs libc6:i386 (and its debug file,
# libc6-dbg:i386); the programs checked need nothing else.
set -euo pipefail
cache="${1:-${SYSSCAN_INPUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sysscan-inputs}}"
log() { echo "fetch_i386: $*" >&2; }
PKGS=(busybox-static coreutils dash musl-dev)
RUNTIME=(libc6 libc6-dbg)  # libc6-dbg: the C library's symbols for the surface (elf/debugfile.py)

if [[ " $(dpkg --print-foreign-architectures | tr '\n' ' ') " != *" i386 "* ]]; then
    [[ "$(id -u)" == 0 ]] || { log "the i386 architecture is not enabled (run as root once: dpkg --add-architecture i386)"; exit 1; }
    log "enabling the i386 architecture"
    dpkg --add-architecture i386
fi
have_lists() { [[ "$(apt-cache policy busybox-static:i386 2>/dev/null)" == *"Candidate: "[0-9]* ]]; }
if ! have_lists && [[ "$(id -u)" == 0 ]]; then
    # a mirror mid-sync fails an update for a moment ("File has unexpected size"): retry
    for i in 1 2 3 4 5; do apt-get update -q >&2 && break; sleep $((i * 5)); done || true
fi
have_lists || { log "no i386 package lists (apt-get update failed?)"; exit 1; }

missing=()
for p in "${RUNTIME[@]}"; do
    dpkg -s "$p:i386" >/dev/null 2>&1 || missing+=("$p:i386")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    [[ "$(id -u)" == 0 ]] || { log "not installed: ${missing[*]} (needed to run the i386 programs)"; exit 1; }
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# one root per set of versions: a new Debian point release gets a new directory
tag=""
for p in "${PKGS[@]}"; do
    v="$(apt-cache policy "$p:i386" | awk '/Candidate:/ {print $2}')"
    tag="$tag-$p-${v//:/_}"
done
root="$cache/i386$(echo "$tag" | sha256sum | cut -c1-12)"
if [[ ! -x "$root/bin/busybox" || ! -f "$root/usr/lib/i386-linux-musl/libc.a" ]]; then
    log "downloading ${PKGS[*]} (i386) ..."
    rm -rf "$root.tmp" && mkdir -p "$root.tmp/debs"
    (cd "$root.tmp/debs" && apt-get download "${PKGS[@]/%/:i386}" >&2)
    for d in "$root.tmp"/debs/*.deb; do dpkg-deb -x "$d" "$root.tmp"; done
    rm -rf "$root.tmp/debs" "$root"
    mv "$root.tmp" "$root"
fi
echo "SYSSCAN_I386_ROOT=$root"
