#!/usr/bin/env python3
"""Regenerate the sample reports in reports/ from corpus binaries, in every format:

    python reports/generate.py          # rewrite reports/
    python reports/generate.py --check  # exit 1 and list the files that are not current (tests run this)

The reports are made exactly as `sysscan FILE -f table,json,sarif,markdown,html -o reports/` would make them from
the repository root (paths relative to it, the shipped rules, no colour, a fixed table width), so they are
byte-for-byte reproducible: no timestamps, and every format carries the tool version and the input's sha256.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BINARIES = [
    "corpus/rules/bin/rules_risky",       # every shipped rule family fires
    "corpus/rules/bin/rules_risky_i386",  # the same rules through int 0x80 in a 32-bit binary
    "corpus/rules/bin/rules_clean",       # harmless neighbours: only raw-syscall-in-application
    "corpus/bin/idioms_nopie",            # i386 ABI in 64-bit code, unresolved numbers
]
FORMATS = ("table", "json", "sarif", "markdown", "html")
TABLE_WIDTH = 120
# With Debian's 6.1 vmlinux (SYSSCAN_VMLINUX_61, which .ci/run fetches), one binary is also linked into the kernel:
# the HTML then draws every site's path entry -> dispatcher -> handler. Without it these files are not checked.
KERNEL_BINARY = "corpus/rules/bin/rules_risky"
KERNEL_ENV = "SYSSCAN_VMLINUX_61"
KERNEL_FORMATS = ("json", "sarif", "markdown", "html")
KERNEL_TAG = "vmlinux-6.1"
PROFILE_BINARY = "corpus/bin/hello_static"  # a static program: its profile depends on nothing on the host
PROFILE_FORMATS = ("seccomp", "systemd", "k8s")


def build(checking: bool = False) -> dict[str, str]:
    """File name (in reports/) -> content. When `checking`, the kernel-linked samples are included only if the
    kernel is the one they were made from (the archive moves on; a newer 6.1 build is not a stale sample)."""
    from analyzer.render import EXTENSIONS, render_all
    from analyzer.rules import shipped_rules
    from analyzer.run.pipeline import scan_file

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        reports = [scan_file(b) for b in BINARIES]
    finally:
        os.chdir(cwd)
    opts = {"verbose": 0, "color": False, "width": TABLE_WIDTH, "rules": shipped_rules()}
    out: dict[str, str] = {}
    for rep in reports:
        for fmt in FORMATS:
            out[f"{rep.binary.name}.{EXTENSIONS[fmt]}"] = render_all([rep], fmt, opts)
    out.update(build_profiles())
    out["corpus.sarif"] = render_all(reports, "sarif", opts)
    out["corpus.html"] = render_all(reports, "html", opts)
    vmlinux = os.environ.get(KERNEL_ENV)
    if vmlinux:
        out.update(build_kernel(vmlinux, opts, checking))
    return out


def build_profiles() -> dict[str, str]:
    """The seccomp profile of PROFILE_BINARY in each profile format, as `sysscan FILE -f seccomp,systemd,k8s`."""
    from analyzer.render import EXTENSIONS, render_profile
    from analyzer.run.pipeline import scan_file
    from analyzer.seccomp import build_profile

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        rep = scan_file(PROFILE_BINARY)
    finally:
        os.chdir(cwd)
    profile = build_profile([rep])
    return {f"{rep.binary.name}.{EXTENSIONS[f]}": render_profile(f, profile, rep.binary.name) for f in PROFILE_FORMATS}


def committed_kernel_sha256() -> str | None:
    saved = ROOT / "reports" / f"{Path(KERNEL_BINARY).name}.{KERNEL_TAG}.json"
    try:
        return (json.loads(saved.read_text(encoding="utf-8")).get("kernel") or {}).get("sha256")
    except (OSError, ValueError):
        return None


def kernel_names() -> set[str]:
    from analyzer.render import EXTENSIONS

    return {f"{Path(KERNEL_BINARY).name}.{KERNEL_TAG}.{EXTENSIONS[f]}" for f in KERNEL_FORMATS}


def build_kernel(vmlinux: str, opts: dict, checking: bool = False) -> dict[str, str]:
    """rules_risky linked into the given kernel; the vmlinux path (machine-specific) is reduced to its name."""
    from analyzer.kernel import analyze_kernel
    from analyzer.render import EXTENSIONS, render_all
    from analyzer.rules import apply_rules
    from analyzer.run.pipeline import ScanOptions, scan_file

    analysis = analyze_kernel(vmlinux)
    if checking and analysis.sha256 != committed_kernel_sha256():
        return {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        rep = scan_file(KERNEL_BINARY, ScanOptions(kernel=analysis))
    finally:
        os.chdir(cwd)
    name = os.path.basename(vmlinux)
    rep.table.path = name
    if rep.kernel:
        rep.kernel["path"] = name
    apply_rules(rep)
    return {f"{rep.binary.name}.{KERNEL_TAG}.{EXTENSIONS[f]}": render_all([rep], f, opts) for f in KERNEL_FORMATS}


def stale(files: dict[str, str]) -> list[str]:
    here = ROOT / "reports"
    bad = [n for n, text in files.items() if not (here / n).exists() or (here / n).read_text(encoding="utf-8") !=
           text]
    known = set(files) | {"generate.py", "README.md"} | kernel_names()
    bad += [p.name + " (not generated any more)" for p in here.iterdir() if p.is_file() and p.name not in known]
    return sorted(bad)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a report is not current")
    args = ap.parse_args(argv)
    files = build(checking=args.check)
    if args.check:
        bad = stale(files)
        for b in bad:
            print(f"stale: reports/{b}")
        return 1 if bad else 0
    for name, text in files.items():
        (ROOT / "reports" / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to reports/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
