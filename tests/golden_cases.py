"""The inputs whose JSON reports are kept byte for byte in tests/golden/ (see tests/test_golden.py).

A refactor must not change what sysscan says: every corpus binary, Debian's busybox and gofmt, the host's libc.so.6,
both real Debian kernels (`sysscan kernel … -f json`) and a binary linked into each (`--vmlinux`). Each case runs the
CLI in the input's own directory with the input's base name, so the report does not carry a machine's cache path.
Regenerate after an intended change of output with `python tests/golden/regen.py` and say why in the commit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LIBC32 = "/lib/i386-linux-gnu/libc.so.6"  # libc6:i386 (multiarch)


@dataclass(frozen=True)
class Case:
    name: str  # golden file: tests/golden/NAME.json
    input: str | None  # the analysed file (absolute), None when its source is not on this machine
    kind: str = "scan"  # scan: `sysscan FILE -f json`; kernel: `sysscan kernel FILE -f json`
    vmlinux: str | None = None  # scan with --vmlinux (an env variable's value)
    where: str = ""  # what provides the input when it is missing

    def argv(self) -> list[str]:
        base = os.path.basename(self.input or "")
        if self.kind == "kernel":
            return ["kernel", base, "-f", "json", "--no-cache"]
        argv = [base, "-f", "json"]
        if self.vmlinux:
            argv += ["--vmlinux", self.vmlinux]
        return argv


def cases() -> list[Case]:
    out = []
    for d in ("corpus/bin", "corpus/rules/bin"):
        for p in sorted((ROOT / d).iterdir()):
            out.append(Case(f"{d.replace('/', '_')}_{p.name}", str(p)))
    out.append(Case("corpus_hostile_names", str(ROOT / "corpus/hostile/hostile_names.elf")))
    for p in sorted((ROOT / "corpus/kernel/bin").iterdir()):
        out.append(Case(f"corpus_kernel_{p.name}", str(p), kind="kernel"))
    fetch = "benchmarks/fetch_inputs.sh (.ci/run sets it)"
    out.append(Case("debian_busybox", os.environ.get("SYSSCAN_BUSYBOX"), where=f"SYSSCAN_BUSYBOX: {fetch}"))
    out.append(Case("debian_gofmt", os.environ.get("SYSSCAN_GOFMT"), where=f"SYSSCAN_GOFMT: {fetch}"))
    out.append(Case("host_libc.so.6", LIBC if os.path.exists(LIBC) else None, where=LIBC))
    i386 = os.environ.get("SYSSCAN_I386_ROOT")
    where = "SYSSCAN_I386_ROOT: benchmarks/fetch_i386.sh (.ci/run sets it)"
    out.append(Case("debian_busybox_i386", f"{i386}/bin/busybox" if i386 else None, where=where))
    out.append(Case("host_libc.so.6_i386", LIBC32 if os.path.exists(LIBC32) else None, where=f"{LIBC32}: {where}"))
    for tag in ("61", "612"):
        vm = os.environ.get(f"SYSSCAN_VMLINUX_{tag}")
        where = f"SYSSCAN_VMLINUX_{tag}: benchmarks/fetch_kernel.sh (.ci/run sets it)"
        out.append(Case(f"kernel_{tag}", vm, kind="kernel", where=where))
        for prog in ("rules_risky", "rules_risky_i386"):
            out.append(Case(f"kernel_{tag}_{prog}", str(ROOT / "corpus/rules/bin" / prog) if vm else None,
                            vmlinux=vm, where=where))
        for prog in ("i386_glibc_static", "vsyscall"):  # through the vDSO; through the vsyscall page's emulation
            out.append(Case(f"kernel_{tag}_{prog}", str(ROOT / "corpus/bin" / prog) if vm else None,
                            vmlinux=vm, where=where))
    return out
