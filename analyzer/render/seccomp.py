"""A seccomp profile (seccomp.Profile) written in the forms its users load:

- `seccomp`: the OCI runtime-spec `linux.seccomp` object, as Docker/Podman (`--security-opt seccomp=FILE`), runc
  and containerd read it; each syscall entry carries a `comment` (Docker's own field) with its justification;
- `systemd`: a `[Service]` fragment (`SystemCallFilter=`, `SystemCallArchitectures=`, `SystemCallErrorNumber=`),
  the justification as comment lines;
- `k8s`: a security-profiles-operator `SeccompProfile` resource (YAML), the provenance in its annotations.

Each holds the tool version and the inputs' hashes; the full "why" (every path) is in the JSON report.
"""
from __future__ import annotations

import json
import re

from ..seccomp.profile import ENOSYS, Cond, Profile, Rule

ARCH = {"x86_64": "SCMP_ARCH_X86_64", "i386": "SCMP_ARCH_X86", "x32": "SCMP_ARCH_X32"}
DEFAULT = {"errno": "SCMP_ACT_ERRNO", "kill": "SCMP_ACT_KILL_PROCESS", "log": "SCMP_ACT_LOG"}
OP = {"eq": "SCMP_CMP_EQ", "masked_eq": "SCMP_CMP_MASKED_EQ"}
ERRNO_NAMES = {1: "EPERM", 38: "ENOSYS"}


def _entries(p: Profile, comments: bool) -> list[dict]:
    """One entry per syscall name (an entry per allowed alternative when its arguments are filtered), in the
    profile's order; the same name in two ABIs is one entry (a profile names syscalls, its architectures pick
    the numbers)."""
    out: list[dict] = []
    by_name: dict[str, list[Rule]] = {}
    for r in p.rules:
        by_name.setdefault(r.name, []).append(r)
    done: set[str] = set()
    for r in p.rules:
        if r.name in done:
            continue
        done.add(r.name)
        same = by_name[r.name]
        # one name in two ABIs: filtered only if filtered in both (the union of the alternatives)
        alts = [] if any(not x.alternatives for x in same) else _unique([a for x in same for a in x.alternatives])
        for alt in (alts or [[]]):
            e: dict = {"names": [r.name], "action": "SCMP_ACT_ALLOW" if r.action == "allow" else "SCMP_ACT_ERRNO"}
            if r.action != "allow":
                e["errnoRet"] = r.errno
            if alt:
                e["args"] = [_arg(c) for c in alt]
            if comments:
                e["comment"] = "; ".join(_comment(x) for x in same)
            out.append(e)
    return out


def _unique(alts: list[list[Cond]]) -> list[list[Cond]]:
    out: list[list[Cond]] = []
    for a in alts:
        if a not in out:
            out.append(a)
    return out


def _arg(c: Cond) -> dict:
    d = {"index": c.index, "value": c.value, "op": OP[c.op]}
    if c.op == "masked_eq":
        d["valueTwo"] = c.value_two
    return d


def _comment(r: Rule) -> str:
    head = f"{r.abi} {r.nr}: "
    note = f" ({r.args_note})" if r.args_note else ""
    who = f" [{', '.join(r.binaries)}]" if r.binaries and len(r.binaries) > 1 else ""
    return head + r.why + note + who


def _header(p: Profile) -> list[str]:
    lines = [f"{p.tool} seccomp profile: {len(p.allowed())} syscalls allowed, "
             f"{sum(1 for r in p.rules if r.action != 'allow')} answered with an errno, the rest "
             f"{_default_text(p)}"]
    lines += [f"input {i['path']} sha256 {i['sha256']}" for i in p.inputs]
    if p.runtime:
        lines.append(f"runtime: {p.runtime} (the syscalls its init makes after installing the filter are allowed)")
    lines += [f"syscall names: Linux {v} ({abi} table)" for abi, v in p.tables.items()]
    lines += [f"WARNING: {w}" for w in p.warnings]
    lines += [f"not expressible: {abi} syscall {nr} has no name in the table (allow it by number)"
              for abi, nr in p.unnamed]
    return lines


def _default_text(p: Profile) -> str:
    return {"errno": f"get {ERRNO_NAMES.get(p.default_errno, p.default_errno)}", "kill": "kill the process",
            "log": "are allowed and logged"}[p.default_action]


def oci(p: Profile) -> dict:
    doc: dict = {"defaultAction": DEFAULT[p.default_action]}
    if p.default_action == "errno":
        doc["defaultErrnoRet"] = p.default_errno
    doc["architectures"] = [ARCH[a] for a in p.abis]
    doc["syscalls"] = _entries(p, comments=True)
    return doc


def render_oci(p: Profile) -> str:
    doc = oci(p)
    # the provenance (tool, inputs, table, warnings) as a top-level "comment": the runtime-spec schema allows it,
    # and runtimes ignore fields they do not know (an extra syscall entry to carry it would change the filter)
    doc = {"comment": _header(p), **doc}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_k8s(p: Profile, name: str) -> str:
    import yaml

    spec = oci(p)
    spec.pop("defaultErrnoRet", None)  # not a field of the operator's v1beta1 CRD (EPERM is its default anyway)
    spec["syscalls"] = _entries(p, comments=False)
    doc = {
        "apiVersion": "security-profiles-operator.x-k8s.io/v1beta1",
        "kind": "SeccompProfile",
        "metadata": {"name": k8s_name(name), "annotations": {
            "sysscan/generated-by": p.tool,
            "sysscan/inputs": ", ".join(f"{i['path']} sha256:{i['sha256']}" for i in p.inputs),
            "sysscan/summary": _header(p)[0],
            **({"sysscan/warnings": "; ".join(p.warnings)} if p.warnings else {}),
        }},
        "spec": spec,
    }
    head = "".join(f"# {line}\n" for line in _header(p))
    return head + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True)


def k8s_name(name: str) -> str:
    """A DNS-1123 subdomain from a binary's name: lower case, [a-z0-9.-], alphanumeric at both ends."""
    s = re.sub(r"[^a-z0-9.-]+", "-", name.lower())[:240].strip("-.")
    return s or "sysscan"


def render_systemd(p: Profile) -> str:
    """systemd's allow-list cannot give one syscall its own errno, so clone3 is allowed where the OCI profile
    answers ENOSYS (an EPERM would make glibc's pthread_create fail instead of falling back to clone); the
    ENOSYS for newer syscalls is systemd's own (it answers syscalls it does not know with ENOSYS)."""
    allowed = sorted({r.name for r in p.rules if r.action == "allow"} |
                     {r.name for r in p.rules if r.action == "errno" and r.name == "clone3" and r.binaries})
    lines = [f"# {_one_line(line)}" for line in _header(p)]
    lines.append("# argument filters are not expressible here: each syscall is allowed whole")
    for r in p.rules:
        if r.action == "allow" or r.name in allowed:
            lines.append(f"#   {r.name}: {_one_line(_comment(r))}")
    lines.append("[Service]")
    native = p.abis == ["x86_64"]
    lines.append("SystemCallArchitectures=" + ("native" if native else " ".join(_systemd_arch(a) for a in p.abis)))
    if p.default_action == "log":
        lines.append("SystemCallLog=~" + " ".join(allowed))
    else:
        for i in range(0, len(allowed), 12):
            lines.append("SystemCallFilter=" + " ".join(allowed[i:i + 12]))
        if p.default_action == "errno":
            lines.append(f"SystemCallErrorNumber={ERRNO_NAMES.get(p.default_errno, p.default_errno)}")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """A comment line stays one line: a name with a line break (a saved report from anyone) must not become a
    directive of the unit."""
    from ..textsafe import escape_controls

    return escape_controls(text)  # newline and carriage return included


def _systemd_arch(abi: str) -> str:
    return {"x86_64": "x86-64", "i386": "x86", "x32": "x32"}[abi]


__all__ = ["ENOSYS", "k8s_name", "oci", "render_k8s", "render_oci", "render_systemd"]
