#!/bin/sh
# Rebuild the synthetic kernels in bin/ (checked in; tests do not need a compiler).
# Toolchain for the checked-in files: Debian 12, gcc 12.2.0, binutils 2.40 (the same gcc as Debian's 6.1 kernel).
set -eu
cd "$(dirname "$0")"
CC=${CC:-gcc}
LD=${LD:-ld}
python3 gen.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bin
# kernel-like code generation: -mcmodel=kernel, fentry calls, no red zone, no PIC, no ICF (handlers stay distinct)
KFLAGS="-O2 -mcmodel=kernel -fno-pic -fno-pie -mno-red-zone -ffreestanding -fno-stack-protector -fno-builtin
        -fno-asynchronous-unwind-tables -fno-ipa-icf -pg -mfentry -fcf-protection=none -fno-common -Wall -Wno-unused
        -ffile-prefix-map=$PWD=."
build() { # name cflags...
	name=$1; shift
	$CC $KFLAGS "$@" -Isrc -c src/kernel.c -o "$TMP/$name.o"
	$CC -c src/entry.S -o "$TMP/entry.o"
	$LD -nostdlib -static -T src/vmlinux.lds --build-id=sha1 -z max-page-size=4096 -z noexecstack \
		-o "bin/$name" "$TMP/entry.o" "$TMP/$name.o"
}
build vmlinux-switch -DDISPATCH_SWITCH -fno-jump-tables
build vmlinux-table -mindirect-branch=thunk-extern -fno-jump-tables
build vmlinux-jumptable -DDISPATCH_SWITCH -fjump-tables --param=case-values-threshold=4
build vmlinux-hooked -DDISPATCH_SWITCH -DHOOKED -fno-jump-tables
# refusal cases: the same image without its symbol table
strip --strip-all -o bin/vmlinux-stripped bin/vmlinux-switch
ls -l bin
