#!/bin/sh
# Rebuild every corpus binary into bin/ (run from anywhere).
# The binaries are checked in; tests must not depend on this script.
# Toolchain used for the checked-in binaries: Debian 12, gcc 12.2.0,
# binutils 2.40, musl 1.2.3 (musl-gcc), gcc-multilib for -m32.
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
# glibc, static (libc's own int $0x80 sites)
$CC -m32 $COMMON -static -o bin/i386_glibc_static src/hello.c

ls -l bin
