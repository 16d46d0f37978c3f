#!/bin/sh
# Rebuild every corpus binary into bin/ (run from anywhere).
# The binaries are checked in; tests must not depend on this script.
# Toolchain used for the checked-in binaries: Debian 12, gcc 12.2.0,
# binutils 2.40, musl 1.2.3 (musl-gcc), gcc-multilib for -m32,
# golang-go 1.19.8 for the Go program.
set -eu
cd "$(dirname "$0")"

CC=${CC:-gcc}
MUSLCC=${MUSLCC:-musl-gcc}
STRIP=${STRIP:-strip}

# Deterministic flags: fixed optimisation level, no build-id, relative
# source paths (the STT_FILE symbols), no debug info.
COMMON="-O2 -Wall -Wl,--build-id=none"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bin

# ---- x86-64 idioms ------------------------------------------------------
IDIOMS="src/idioms.c src/idioms_asm.S"

# glibc, dynamic, PIE
$CC -O0 -fPIE -c src/idioms_o0.c -o "$TMP/o0_pie.o"
$CC $COMMON -fPIE -pie -o bin/idioms_pie $IDIOMS "$TMP/o0_pie.o"
# same binary, stripped (addresses identical to bin/idioms_pie)
$STRIP --strip-all -o bin/idioms_pie_stripped bin/idioms_pie

# glibc, dynamic, non-PIE
$CC -O0 -fno-pie -c src/idioms_o0.c -o "$TMP/o0_nopie.o"
$CC $COMMON -fno-pie -no-pie -o bin/idioms_nopie $IDIOMS "$TMP/o0_nopie.o"

# glibc, static, non-PIE
$CC $COMMON -fno-pie -no-pie -static -o bin/idioms_glibc_static $IDIOMS "$TMP/o0_nopie.o"

# musl, static
$MUSLCC -O0 -c src/idioms_o0.c -o "$TMP/o0_musl.o"
$MUSLCC $COMMON -static -o bin/idioms_musl_static $IDIOMS "$TMP/o0_musl.o"

# ---- decoys ---------------------------------------------------------------
$CC $COMMON -fPIE -pie -o bin/decoys src/decoys.c

# ---- shared object --------------------------------------------------------
$CC $COMMON -fPIC -shared -Wl,-soname,libraw.so -o bin/libraw.so src/libraw.c

# ---- glibc static "hello" (benchmark, ~100 libc sites) --------------------
$CC $COMMON -static -o bin/hello_static src/hello.c
$STRIP --strip-all -o bin/hello_static_stripped bin/hello_static

# ---- i386 -----------------------------------------------------------------
# no libc, own _start, static, non-PIE
$CC -m32 $COMMON -DOWN_START -ffreestanding -fno-stack-protector -fno-pie -no-pie \
    -nostdlib -static -o bin/i386_raw src/i386_raw.c
# glibc, dynamic, PIE
$CC -m32 $COMMON -fPIE -pie -o bin/i386_pie src/i386_raw.c
# glibc, static (libc's own int $0x80 sites, and its call *%gs:0x10 ones)
$CC -m32 $COMMON -static -o bin/i386_glibc_static src/hello.c
# the other vDSO entry forms, hand-written, no libc: call *_dl_sysinfo, call __kernel_vsyscall
$CC -m32 -nostdlib -static -no-pie -Wl,--build-id=none -o bin/i386_vdso_forms src/i386_vdso_forms.S
# musl 1.2.3, static: Debian's musl-dev:i386 (benchmarks/fetch_i386.sh extracts it under $SYSSCAN_I386_ROOT) and
# the 32-bit libgcc.a of lib32gcc-12-dev (LIBGCC32; musl's printf divides 64-bit numbers)
if [ -n "${SYSSCAN_I386_ROOT:-}" ] && [ -n "${LIBGCC32:-}" ]; then
    M="$SYSSCAN_I386_ROOT/usr/lib/i386-linux-musl"
    $CC -m32 $COMMON -fno-pie -no-pie -static -nostdlib -nostdinc -isystem "$SYSSCAN_I386_ROOT/usr/include/i386-linux-musl" \
        -isystem "$($CC -print-file-name=include)" -o bin/i386_musl_static \
        "$M/crt1.o" "$M/crti.o" src/hello.c "$M/libc.a" "$LIBGCC32" "$M/crtn.o"
else
    echo "bin/i386_musl_static kept: set SYSSCAN_I386_ROOT and LIBGCC32 to rebuild it" >&2
fi

# libc's syscall() through the PLT, non-PIC and PIE (hand-written; linked with ld against libc6:i386's libc.so.6)
$CC -m32 -c -o "$TMP/sd.o" src/i386_syscall_dyn.S
ld -m elf_i386 --build-id=none -dynamic-linker /lib/ld-linux.so.2 -o bin/i386_syscall_dyn "$TMP/sd.o" \
    /lib/i386-linux-gnu/libc.so.6
$CC -m32 -DPIC -c -o "$TMP/sp.o" src/i386_syscall_dyn.S
ld -m elf_i386 --build-id=none -pie -z now -dynamic-linker /lib/ld-linux.so.2 -o bin/i386_syscall_pie "$TMP/sp.o" \
    /lib/i386-linux-gnu/libc.so.6

# ---- x86-64 legacy vsyscall page ---------------------------------------------
$CC -nostdlib -static -no-pie -Wl,--build-id=none -o bin/vsyscall src/vsyscall.S

# ---- wrappers: numbers that are parameters, tables, loops -----------------
# (inter-procedural resolution at the callers; angr for what data flow cannot follow)
$CC $COMMON -fno-pie -no-pie -static -o bin/wrappers_glibc_static src/wrappers.c
$MUSLCC $COMMON -static -o bin/wrappers_musl_static src/wrappers.c
# dynamic PIE: syscall() is libc.so.6's, main reaches it through the PLT
$CC $COMMON -fPIE -pie -o bin/wrappers_pie src/wrappers.c
# the same without unwind tables (no FDEs), then stripped: no symbols, no .eh_frame,
# function starts can only come from disassembly
$MUSLCC $COMMON -static -fno-asynchronous-unwind-tables -fno-unwind-tables -o bin/wrappers_musl_nofde src/wrappers.c
$STRIP --strip-all -o bin/wrappers_musl_nofde_stripped bin/wrappers_musl_nofde

# ---- Go (Debian golang-go 1.19.8, amd64, no cgo) ---------------------------
# Stripped as Go binaries usually ship (-s -w: no .symtab, no DWARF; the
# pclntab stays), plus an unstripped twin that gen_manifest.py reads the
# function names from. -trimpath, -buildvcs=false (no git revision) and an
# empty build id make the build reproducible.
GO=${GO:-go}
( cd src/gohello &&
  export GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local &&
  $GO build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o ../../bin/go_hello_stripped . &&
  $GO build -trimpath -buildvcs=false -ldflags="-buildid=" -o ../../bin/go_hello . )

ls -l bin
