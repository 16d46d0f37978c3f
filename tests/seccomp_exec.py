"""Run a program under an OCI seccomp profile, the way runc does, with libseccomp's own Python bindings.

    /usr/bin/python3 tests/seccomp_exec.py PROFILE.json PROGRAM [ARGS...]

(Debian's python3-seccomp: the system interpreter, not the project's venv.) The filter is built from the profile
(defaultAction/defaultErrnoRet, architectures, each entry's action, errnoRet and args), loaded with
no_new_privs, then the program is exec'd: from then on every syscall it makes goes through the filter. As runc
does, a syscall numbered above the highest one the profile names (per architecture) is answered ENOSYS: a kernel's
newer syscalls look absent, not forbidden (on the native architecture: a rule by number cannot be given to one
architecture of a multi-architecture filter here). Exit 111 with a message when the profile cannot be loaded.

Test tooling only: sysscan itself never runs what it analyses.
"""
from __future__ import annotations

import json
import os
import sys

import seccomp

ARCHES = {"SCMP_ARCH_X86_64": seccomp.Arch.X86_64, "SCMP_ARCH_X86": seccomp.Arch.X86,
          "SCMP_ARCH_X32": seccomp.Arch.X32}
OPS = {"SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
       "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT, "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
ENOSYS = 38
MAX_NR = 512  # above every x86 syscall number a kernel has today


def action(name: str, errno: int | None):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(1 if errno is None else errno)
    if name in ("SCMP_ACT_KILL_PROCESS",):
        return seccomp.KILL_PROCESS
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    raise ValueError(f"unsupported action {name}")


def build(doc: dict) -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(action(doc["defaultAction"], doc.get("defaultErrnoRet")))
    arches = [ARCHES[a] for a in doc.get("architectures", ["SCMP_ARCH_X86_64"])]
    for a in arches:
        if not _native(a):
            f.add_arch(a)
    named: dict[int, set[int]] = {int(a): set() for a in arches}
    for e in doc.get("syscalls", []):
        act = action(e["action"], e.get("errnoRet"))
        args = [seccomp.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in e.get("args", [])]
        for name in e["names"]:
            for a in arches:
                try:
                    named[int(a)].add(seccomp.resolve_syscall(a, name))
                except ValueError:
                    pass
            f.add_rule(act, name, *args)
    if doc["defaultAction"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        return f  # runc adds its ENOSYS stub only where the default would deny
    for a in arches:  # runc: numbers above the highest named one are ENOSYS
        if not _native(a):  # a rule by number applies to every architecture of the filter: the native one only
            continue
        top = max((n for n in named[int(a)] if n >= 0), default=-1)
        for nr in range(top + 1, MAX_NR):
            try:
                f.add_rule_exactly(seccomp.ERRNO(ENOSYS), nr)
            except (ValueError, RuntimeError, OSError):
                pass
    return f


def _native(arch) -> bool:
    """libseccomp's Arch constants are signed, system_arch() is not."""
    return int(arch) & 0xFFFFFFFF == seccomp.system_arch() & 0xFFFFFFFF


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: seccomp_exec.py PROFILE.json PROGRAM [ARGS...]", file=sys.stderr)
        return 111
    try:
        with open(argv[1], encoding="utf-8") as fh:
            f = build(json.load(fh))
        f.load()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"seccomp_exec: {argv[1]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 111
    os.execv(argv[2], argv[2:])
    return 111


if __name__ == "__main__":
    sys.exit(main(sys.argv))
