#!/usr/bin/env bash
# Fetch a Debian cloud-amd64 debug vmlinux and the syscall tables of the *matching* kernel source.
#
#   benchmarks/fetch_kernel.sh SERIES [CACHE_DIR]      SERIES: 6.1 | 6.12
#   CACHE_DIR default: $SYSSCAN_KERNEL_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/sysscan-kernels
# Prints shell assignments on stdout, e.g. for 6.1:
#   SYSSCAN_VMLINUX_61=/.../vmlinux-6.1.0-56-cloud-amd64
#   SYSSCAN_TBL_61=/.../syscall_64.tbl
#   SYSSCAN_TBL32_61=/.../syscall_32.tbl
# so CI can `eval "$(benchmarks/fetch_kernel.sh 6.1 "$CACHE")"`.
#
# The pair is chosen dynamically (the archive moves): the candidate version of linux-source-SERIES,
# then the linux-image-SERIES*-cloud-amd64-dbg package whose Version equals it. Downloads are cached:
# a second run with the same archive state downloads nothing. Only the vmlinux and the two .tbl files
# are kept; the .debs are deleted after extraction unless KEEP_DEBS=1.
set -euo pipefail

series="${1:?usage: fetch_kernel.sh 6.1|6.12 [CACHE_DIR]}"
cache="${2:-${SYSSCAN_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sysscan-kernels}}"
tag="${series//./}"
log() { echo "fetch_kernel: $*" >&2; }

src_pkg="linux-source-$series"
src_ver="$(apt-cache policy "$src_pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ ( -z "$src_ver" || "$src_ver" == "(none)" ) && "$(id -u)" == 0 ]]; then
    log "no candidate for $src_pkg: apt-get update"
    apt-get update -q >&2 || true
    src_ver="$(apt-cache policy "$src_pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
fi
if [[ -z "$src_ver" || "$src_ver" == "(none)" ]]; then
    log "no candidate for $src_pkg (run apt-get update?)"; exit 1
fi

dbg_pkg=""
# versioned packages only (linux-image-6.1.0-56-..., linux-image-6.12.117+deb12-...), not the meta-packages
for p in $(apt-cache search --names-only "^linux-image-${series//./\\.}\\.[0-9][.0-9+a-z-]*-cloud-amd64-dbg\$" | awk '{print $1}'); do
    # not `grep -q`: it exits at the first match, apt-cache then dies of SIGPIPE and pipefail fails the test
    if apt-cache show "$p" 2>/dev/null | grep -x "Version: $src_ver" >/dev/null; then dbg_pkg="$p"; fi
done
if [[ -z "$dbg_pkg" ]]; then
    log "no linux-image-$series*-cloud-amd64-dbg package with version $src_ver"; exit 1
fi
log "pair: $dbg_pkg $src_ver + $src_pkg $src_ver"

dir="$cache/$dbg_pkg-$src_ver"
mkdir -p "$dir"
cd "$dir"

vmlinux="$(ls "$dir"/usr/lib/debug/boot/vmlinux-* 2>/dev/null | head -n1 || true)"
if [[ -z "$vmlinux" ]]; then
    log "downloading $dbg_pkg ..."
    apt-get download "$dbg_pkg=$src_ver" >&2
    deb="$(ls "$dir"/"${dbg_pkg}"_*.deb | head -n1)"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards './usr/lib/debug/boot/vmlinux-*'
    [[ "${KEEP_DEBS:-0}" == 1 ]] || rm -f "$deb"
    vmlinux="$(ls "$dir"/usr/lib/debug/boot/vmlinux-* | head -n1)"
fi

tbl64="$dir/syscalls/syscall_64.tbl"
tbl32="$dir/syscalls/syscall_32.tbl"
srctree="$dir/src"
# FETCH_SRC_TREE=1 also keeps what analyzer/syscalls/generate.py reads (headers and the SYSCALL_DEFINE sources),
# so CI can check the embedded tables against a regeneration.
want_tree="${FETCH_SRC_TREE:-0}"
if [[ ! -s "$tbl64" || ! -s "$tbl32" || ( "$want_tree" == 1 && ! -s "$srctree/Makefile" ) ]]; then
    log "downloading $src_pkg ..."
    apt-get download "$src_pkg=$src_ver" >&2
    deb="$(ls "$dir"/"${src_pkg}"_*.deb | head -n1)"
    tmp="$dir/src.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.*'
    tarball="$(ls "$tmp"/usr/src/linux-source-*.tar.* | head -n1)"
    mkdir -p "$dir/syscalls"
    tar -x -f "$tarball" -C "$tmp" --wildcards '*/arch/x86/entry/syscalls/syscall_*.tbl'
    cp "$(find "$tmp" -path '*/arch/x86/entry/syscalls/syscall_64.tbl' | head -n1)" "$tbl64"
    cp "$(find "$tmp" -path '*/arch/x86/entry/syscalls/syscall_32.tbl' | head -n1)" "$tbl32"
    if [[ "$want_tree" == 1 ]]; then
        rm -rf "$srctree"; mkdir -p "$srctree"
        tar -x -f "$tarball" -C "$srctree" --strip-components=1 --wildcards \
            '*/Makefile' '*/include/*' '*/arch/x86/*' '*/kernel/*' '*/fs/*' '*/mm/*' '*/net/*' '*/ipc/*' \
            '*/security/*' '*/block/*' '*/io_uring/*' '*/drivers/char/*' '*/init/*' '*/lib/*' '*/virt/*'
    fi
    rm -rf "$tmp"
    [[ "${KEEP_DEBS:-0}" == 1 ]] || rm -f "$deb"
fi

echo "SYSSCAN_VMLINUX_${tag}=$vmlinux"
echo "SYSSCAN_TBL_${tag}=$tbl64"
echo "SYSSCAN_TBL32_${tag}=$tbl32"
if [[ "$want_tree" == 1 ]]; then echo "SYSSCAN_LINUX_SRC_${tag}=$srctree"; fi
