#!/bin/sh
# Rebuild the rule-example binaries into corpus/rules/bin/ (run from anywhere). The binaries are checked in;
# tests use them as they are and never need a compiler. Toolchain of the checked-in files: Debian 12,
# gcc 12.2.0, binutils 2.40, glibc 2.36, gcc-multilib for -m32. Two runs give byte-identical files.
#
# NEVER RUN bin/rules_risky*: their functions trace, load modules, reboot... (main/_start call none of them,
# but they exist only for static analysis).
set -eu
cd "$(dirname "$0")"
CC=${CC:-gcc}
COMMON="-O2 -Wall -Wl,--build-id=none"
mkdir -p bin
$CC $COMMON -fno-pie -no-pie -o bin/rules_risky src/risky.c
$CC $COMMON -fno-pie -no-pie -o bin/rules_clean src/clean.c
$CC -m32 $COMMON -ffreestanding -fno-stack-protector -fno-pie -no-pie -nostdlib -static \
    -o bin/rules_risky_i386 src/risky_i386.c
# the same risky program with DWARF line info (-g), source paths mapped to be relative to the repository root, so
# that findings point at corpus/rules/src/risky.c:LINE (SARIF, GitHub code scanning)
$CC $COMMON -g -fdebug-prefix-map="$(pwd)"=corpus/rules -fno-pie -no-pie -o bin/rules_risky_debug src/risky.c
ls -l bin
