#!/usr/bin/env bash
# Fetch the compressed kernel a machine boots (/boot/vmlinuz-*) from Debian's signed linux-image package, of the
# same version as the linux-source package fetch_kernel.sh pairs with the -dbg vmlinux.
#
#   benchmarks/fetch_vmlinuz.sh SERIES [FLAVOUR] [CACHE_DIR]    SERIES: 6.1 | 6.12; FLAVOUR: cloud-amd64 (default) | amd64 | rt-amd64
# Prints one shell assignment, e.g. SYSSCAN_VMLINUZ_61=/.../vmlinuz-6.1.0-56-cloud-amd64 (FLAVOUR amd64:
# SYSSCAN_VMLINUZ_61_GENERIC, rt-amd64: SYSSCAN_VMLINUZ_61_RT). Only the vmlinuz is kept; a second run downloads nothing.
# Debian's compressors: 6.1 cloud LZ4 (legacy frame), 6.12 cloud zstd, 6.1 generic xz.
set -euo pipefail

series="${1:?usage: fetch_vmlinuz.sh 6.1|6.12 [cloud-amd64|amd64] [CACHE_DIR]}"
flavour="${2:-cloud-amd64}"
cache="${3:-${SYSSCAN_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sysscan-kernels}}"
tag="${series//./}"
case "$flavour" in
    cloud-amd64) ;;
    amd64) tag="${tag}_GENERIC" ;;
    *) t="${flavour%-amd64}"; tag="${tag}_${t^^}" ;;
esac
log() { echo "fetch_vmlinuz: $*" >&2; }

version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
src_ver="$(version "linux-source-$series")"
if [[ ( -z "$src_ver" || "$src_ver" == "(none)" ) && "$(id -u)" == 0 ]]; then
    for _ in 1 2 3; do apt-get update -q >&2 && break; sleep 5; done || true
    src_ver="$(version "linux-source-$series")"
fi
[[ -n "$src_ver" && "$src_ver" != "(none)" ]] || { log "no candidate for linux-source-$series"; exit 1; }

pkg=""
# the signed image (what /boot holds on a Secure Boot machine; the bzImage header is unchanged by the signature);
# a security update reaches the archive unsigned first (the signed build follows days later): then the -unsigned
# package, whose vmlinuz is the same image without the signature
for suffix in "" "-unsigned"; do
    for p in $(apt-cache search --names-only "^linux-image-${series//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+)-${flavour}${suffix}\$" | awk '{print $1}'); do
        if apt-cache show "$p" 2>/dev/null | grep -x "Version: $src_ver" >/dev/null; then pkg="$p"; fi
    done
    [[ -n "$pkg" ]] && break
done
[[ -n "$pkg" ]] || { log "no linux-image-$series*-$flavour package with version $src_ver"; exit 1; }

dir="$cache/vmlinuz/$pkg-$src_ver"
mkdir -p "$dir"
vmlinuz="$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)"
if [[ -z "$vmlinuz" ]]; then
    log "downloading $pkg $src_ver ..."
    (cd "$dir" && apt-get download "$pkg=$src_ver" >&2)
    deb="$(ls "$dir"/"${pkg}"_*.deb | head -n1)"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards './boot/vmlinuz-*'
    rm -f "$deb"
    vmlinuz="$(ls "$dir"/boot/vmlinuz-* | head -n1)"
fi
echo "SYSSCAN_VMLINUZ_${tag}=$vmlinuz"
