#!/bin/sh
# Rebuild corpus/hostile/hostile_names.elf (checked in; tests do not run this). Debian 12: gcc 12.2, binutils 2.40.
set -eu
cd "$(dirname "$0")"
CC=${CC:-gcc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$CC -O1 -static -nostdlib -no-pie -fno-asynchronous-unwind-tables -fcf-protection=none -Wl,--build-id=none \
    -o "$TMP/hostile" hostile.c
python3 patch.py "$TMP/hostile" hostile_names.elf
chmod +x hostile_names.elf
