"""Values benchmark (inter-procedural stage): resolution rate, time, memory, what angr adds, recall vs strace.

For each binary, in fresh processes (imports included, as a user pays them; peak RSS from wait4's rusage):

* the full scan (local + wrappers at callers + clobber summaries + angr fallback), and the local engine alone
  (`ValueEngine.interproc_enabled = False`): resolved / partial / unresolved numbers, unresolved reasons;
* what the inter-procedural stage did: wrappers found, call sites examined, functions discovered by disassembly,
  angr functions tried / resolved / seconds, sites whose number came from callers or from angr;
* for static binaries with a workload: the system calls strace observes vs sysscan's static set (recall);
* with --cfgfast: angr's whole-program CFGFast on the same file (time, peak RSS), for the speed ratio.

    .venv/bin/python benchmarks/values_bench.py [--runs 3] [--cfgfast] [--json OUT] [FILE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus" / "bin"
BUSYBOX_SH = ("echo hi; ls -la / >/dev/null; cat /etc/hostname >/dev/null; wc -l /etc/passwd >/dev/null; "
              "date >/dev/null; id >/dev/null; uname -a >/dev/null; find /etc -maxdepth 1 -name '*.conf' >/dev/null; "
              "tar cf - /etc/hostname 2>/dev/null | gzip -c >/dev/null; ps >/dev/null; df >/dev/null; "
              "d=/tmp/bbx$$; mkdir $d; touch $d/f; ln -s $d/f $d/l; readlink $d/l >/dev/null; stat $d/f >/dev/null; "
              "chmod 600 $d/f; mv $d/f $d/g; rm -r $d; sleep 0.01; nproc >/dev/null; free >/dev/null; "
              "uptime >/dev/null; seq 3 | sort -r | uniq >/dev/null; printf 'a\\nb\\n' | grep -c a >/dev/null; "
              "sha256sum /etc/hostname >/dev/null; env >/dev/null; true")
WORKLOADS = {
    "/usr/bin/busybox": [["sh", "-c", BUSYBOX_SH], ["ls", "/"], ["cat", "/etc/hostname"], ["ionice", "-p", "1"],
                         ["nice", "true"], ["timeout", "1", "true"], ["hostname"], ["whoami"],
                         ["nslookup", "localhost", "127.0.0.1"]],
    "/usr/lib/go-1.19/bin/gofmt": [["-l", "/usr/lib/go-1.19/src/fmt"], ["-d", "/usr/lib/go-1.19/src/fmt/print.go"],
                       ["-s", "-e", "/usr/lib/go-1.19/src/sort/sort.go"]],
}
DEFAULT = [CORPUS / n for n in ("hello_static", "hello_static_stripped", "idioms_glibc_static", "idioms_musl_static",
                                "wrappers_glibc_static", "wrappers_musl_static", "wrappers_musl_nofde_stripped",
                                "i386_raw", "i386_glibc_static", "go_hello", "go_hello_stripped")]
DEFAULT += [Path("/usr/bin/busybox"), Path("/usr/lib/go-1.19/bin/gofmt")]

CHILD = r"""
import json, sys, time
t0 = time.monotonic()
from analyzer.run.pipeline import scan_file
from analyzer.values.engine import ValueEngine
ValueEngine.interproc_enabled = sys.argv[2] == "1"
captured = {}
orig = ValueEngine._interproc
def hook(self, site, regs, out):
    captured["engine"] = self
    return orig(self, site, regs, out)
ValueEngine._interproc = hook
r = scan_file(sys.argv[1])
dt = time.monotonic() - t0
s = r.summary
reasons = {}
for x in r.sites:
    if x.number.status != "resolved":
        key = (x.number.reasons[0] if x.number.reasons else "?")[:110]
        reasons[f"{x.address:#x} {x.function}: {key}"] = x.number.status
eng = captured.get("engine")
ip = getattr(eng, "interproc", None) if eng else None
stats = {}
if ip is not None:
    stats = {"wrappers": len(ip.resolver.wrappers), "call_sites_examined": ip.index.examined,
             "discovered_functions": ip.index.finder.discovered, "clobber_summaries": ip.clobbers.computed,
             "angr": dict(ip.angr.stats) if ip.angr else None}
print(json.dumps({"seconds": dt, "sites": s.sites, "resolved": s.resolved, "partial": s.partial,
                  "unresolved": s.unresolved, "static": r.binary.static, "bits": r.binary.bits,
                  "from_callers": sum(1 for x in r.sites if any(p.startswith("caller") for p in x.number.provenance)),
                  "from_angr": sum(1 for x in r.sites if "angr" in x.number.provenance),
                  "from_summaries": sum(1 for x in r.sites if "callee clobber summaries" in x.number.provenance),
                  "syscalls": sorted([u.abi, u.nr] for u in r.syscalls), "unresolved_reasons": reasons,
                  "stats": stats}))
"""

CFGFAST = r"""
import logging, sys, time
for n in ("angr", "cle", "pyvex", "claripy"):
    logging.getLogger(n).setLevel(logging.CRITICAL)
t0 = time.monotonic()
import angr
p = angr.Project(sys.argv[1], auto_load_libs=False)
t1 = time.monotonic()
try:
    cfg = p.analyses.CFGFast(normalize=True)
    print(f"ok {time.monotonic() - t0:.1f} {time.monotonic() - t1:.1f} {len(cfg.kb.functions)}")
except Exception as e:
    print(f"failed {time.monotonic() - t0:.1f} {time.monotonic() - t1:.1f} {type(e).__name__}")
"""


def child(code: str, *args: str, timeout: float = 1800) -> tuple[str, float, float]:
    """Run code in a fresh interpreter; (stdout, wall seconds, peak RSS MB of that child, from wait4)."""
    t = time.monotonic()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        out = p.stdout.read().decode()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"child failed ({p.returncode}): {err.read()[-800:].decode(errors='replace')}")
    return out, wall, ru.ru_maxrss / 1024


def scan(path: Path, interproc: bool) -> dict:
    out, wall, rss = child(CHILD, str(path), "1" if interproc else "0")
    d = json.loads(out.strip().splitlines()[-1])
    d["wall"] = wall
    d["rss_mb"] = rss
    return d


def recall(path: Path, result: dict) -> tuple[int, int, list] | None:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_strace as T  # the harness the tests use

    key = str(path)
    if path.parent == CORPUS:
        file = f"bin/{path.name}"
        if file not in T.STATIC_PROGRAMS:
            return None
        workloads = T.STATIC_PROGRAMS[file]
    elif key in WORKLOADS or str(path.resolve()) in WORKLOADS:
        workloads = WORKLOADS.get(key) or WORKLOADS[str(path.resolve())]
    else:
        return None
    static = {tuple(x) for x in result["syscalls"]}
    seen = set()
    for args in workloads:
        for nr, name in T.run_traced([str(path), *args]):
            seen.add((T.abi_of(nr, name, result["bits"]), nr, name))
    missing = sorted(x for x in seen if (x[0], x[1]) not in static)
    return len(seen), len(seen) - len(missing), missing


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cfgfast", action="store_true", help="also time angr's whole-program CFGFast (slow)")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    files = [f.resolve() if f.parent.resolve() == CORPUS else f for f in (a.files or DEFAULT) if f.exists()]
    rows = []
    print(f"# {platform.python_version()} on {platform.machine()}, load average {os.getloadavg()[0]:.1f}")
    for f in files:
        full = [scan(f, True) for _ in range(a.runs)]
        local = scan(f, False)
        best = min(full, key=lambda d: d["wall"])
        row = {"file": str(f), "full": best, "walls": [d["wall"] for d in full], "local": local,
               "median_wall": statistics.median(d["wall"] for d in full),
               "max_rss_mb": max(d["rss_mb"] for d in full)}
        if not a.no_strace and best["static"]:
            r = recall(f, best)
            if r:
                row["recall"] = {"observed": r[0], "covered": r[1], "missing": [list(x) for x in r[2]]}
        if a.cfgfast:
            out, wall, rss = child(CFGFAST, str(f), timeout=3600)
            row["cfgfast"] = {"out": out.strip(), "wall": wall, "rss_mb": rss}
        rows.append(row)
        d = best
        rate = 100.0 * d["resolved"] / d["sites"] if d["sites"] else 100.0
        lrate = 100.0 * local["resolved"] / local["sites"] if local["sites"] else 100.0
        rec = row.get("recall")
        print(f"{f.name:32} sites {d['sites']:4}  resolved {d['resolved']:4} ({rate:5.1f} %, local {lrate:5.1f} %)  "
              f"partial {d['partial']:2}  unresolved {d['unresolved']:2}  callers {d['from_callers']:2}  "
              f"angr {d['from_angr']}  summaries {d['from_summaries']}  "
              f"wall {d['wall']:.2f}s (median {row['median_wall']:.2f}, local {local['wall']:.2f})  "
              f"RSS {row['max_rss_mb']:.0f} MB"
              + (f"  strace {rec['covered']}/{rec['observed']}" if rec else "")
              + (f"  CFGFast {row['cfgfast']['out']} RSS {row['cfgfast']['rss_mb']:.0f} MB" if a.cfgfast else ""))
        for k, v in d["unresolved_reasons"].items():
            print(f"    {v:10} {k}")
        if d["stats"]:
            print(f"    stage: {d['stats']}")
    if a.json:
        a.json.write_text(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
