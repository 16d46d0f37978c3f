"""The pipeline for one binary: load → sites → values → names → (kernel) → (rules) → Report.

This is the pure function a worker pool (or a distributed engine) runs: a path and options in, a Report out.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import model
from ..budget import BUDGET_REASON, BudgetExceeded, Deadline, Limits, gc_paused
from ..elf.debugfile import DEFAULT_DIRS as DEFAULT_DEBUG_DIRS
from ..syscalls import load_table
from ..values.engine import ValueEngine
from ..values.report import binary_info, build_site_safely

if TYPE_CHECKING:  # LIEF, Capstone and the data-flow engine are imported on first use: a run answered from the
    from ..program.model import LoadedBinary  # result cache (run/job.py, run/pool.py) imports this module for ScanOptions


def load(path: str, max_size: int | None = None, debug_dirs: tuple[str, ...] | None = None) -> LoadedBinary:
    """The program model through the one door for inputs (a module attribute, so tests can still replace it);
    LIEF is imported on first use, not by importing this module."""
    from ..inputs import load_program

    return load_program(path, max_size, debug_dirs)


def find_sites(lb: LoadedBinary, **kw):
    """`analyzer.sites.find_sites`, imported when first called (a module attribute, so tests can replace it)."""
    from ..sites import find_sites as find

    return find(lb, **kw)


@dataclass
class ScanOptions:
    """Options that change results (and so belong in a cache key)."""

    max_seconds: float | None = None
    rules: object = None  # an analyzer.rules.RuleSet; None: the shipped rules; RuleSet([]): no rules
    kernel: object = None  # an analyzer.kernel.KernelAnalysis (--vmlinux), analysed once per run and shared
    surface: bool = True  # the program surface through ld.so and the libraries (--no-surface: raw sites only)
    sysroot: str = "/"  # where the program's libraries are (--sysroot: a container root, a cross tree)
    root_key: str | None = None  # what the sysroot holds that a result can depend on (an image's libraries)
    debug_dirs: tuple[str, ...] = DEFAULT_DEBUG_DIRS
    """Where stripped objects' separate debug files are looked for (--debug-dir; () with --no-debug-files)."""

    def key(self) -> str:
        rules = "shipped" if self.rules is None else getattr(self.rules, "digest", "?")
        kernel = getattr(self.kernel, "sha256", None)
        root = self.root_key or self.sysroot
        debug = ":".join(self.debug_dirs)
        return f"t={self.max_seconds};rules={rules};kernel={kernel};surface={self.surface};root={root};debug={debug}"


def scan_file(path: str, options: ScanOptions | None = None, *, limits: Limits | None = None,
              progress=None) -> model.Report:
    """Analyse one ELF: the pure per-binary job.

    `limits.timeout` (else `options.max_seconds`) is the wall-clock budget: when it runs out, the sites not yet
    analysed are reported unresolved with reason "time budget exhausted" and `report.incomplete` says how many.
    `progress(stage, payload)`, when given, receives ("binary", a site-less report dict) once the ELF is loaded,
    so that a supervising process (limits.run_isolated) can still report the binary if this one is killed."""
    with gc_paused():
        return _scan_file(path, options, limits, progress)


def _scan_file(path: str, options: ScanOptions | None, limits: Limits | None, progress) -> model.Report:
    options = options or ScanOptions()
    timeout = limits.timeout if limits is not None else options.max_seconds
    deadline = Deadline(timeout)
    lb = load(path, limits.max_size if limits is not None else None, options.debug_dirs)
    table = load_table("x86_64" if lb.bits == 64 else "i386")
    report = model.Report(
        binary=binary_info(lb),
        table=model.TableInfo(source="embedded", kernel_version=table.kernel_version, path=None),
    )
    incomplete: list[str] = list(lb.notes)
    if progress is not None:
        report.incomplete = sorted(set(incomplete))
        progress("binary", report.to_dict())
    raws, rejected = find_sites(lb, deadline=deadline, incomplete=incomplete,
                                max_sites=(limits or Limits()).max_sites)
    with contextlib.closing(ValueEngine(lb, deadline)) as engine:  # close(): its reference cycles go now
        engine.expect(raws)
        sites = [build_site_safely(lb, r, engine, incomplete) for r in raws]
        skipped = sum(1 for s in sites if BUDGET_REASON in s.number.reasons)
        if skipped:
            incomplete.append(f"{BUDGET_REASON} ({timeout:g}s, --timeout): {skipped} of {len(sites)} sites not "
                              "analysed, reported unresolved")
        report.sites = sorted(sites, key=lambda s: s.address)
        report.rejected = [model.Rejected(r.address, r.pattern, r.function, r.reason) for r in rejected]
        if lb.needed and engine.interproc_enabled:  # calls to a library's own syscall wrappers (libc's syscall())
            try:
                from ..values.wrappers import library_wrapper_calls

                report.wrapper_calls = library_wrapper_calls(lb, engine, incomplete)
            except Exception as e:  # noqa: BLE001 - an extra; never costs the sites
                incomplete.append(f"calls to library syscall wrappers not analysed: {type(e).__name__}: {str(e)[:160]}")
        facts = None
        if options.surface:
            from ..surface.build import object_facts

            facts = object_facts(lb, engine, report.sites)
        report.incomplete = sorted(set(engine.incomplete) | set(incomplete))
    if facts is not None:
        from ..surface.build import build_surface  # the surface stage: through ld.so and the libraries

        try:
            report.surface = build_surface(lb, report, facts, sysroot=options.sysroot, deadline=deadline,
                                           debug_dirs=options.debug_dirs)
            if deadline.expired():
                report.incomplete = sorted(set(report.incomplete) | {
                    f"{BUDGET_REASON}: the surface is partial (what was not analysed is in its open ends)"})
        except BudgetExceeded:
            report.incomplete = sorted(set(report.incomplete) | {f"{BUDGET_REASON}: the surface was not finished"})
        except Exception as e:  # noqa: BLE001 - the surface is a stage of its own: the sites stay reported
            report.incomplete = sorted(set(report.incomplete) | {
                f"surface not built: {type(e).__name__}: {str(e)[:200]}"})
    if options.kernel is not None:
        from ..kernel.link import link_report  # the kernel stage: each site's path into this kernel

        try:
            link_report(report, options.kernel)
        except Exception as e:  # noqa: BLE001 - a hostile kernel must not cost the binary its report
            report.incomplete = sorted(set(report.incomplete) | {
                f"kernel linking failed: {type(e).__name__}: {str(e)[:200]} (sites may lack kernel paths)"})
    if not lb.stripped and report.sites:
        from ..elf.sources import has_debug_line, site_sources  # DWARF file:line of each site, when built with -g

        if has_debug_line(path):
            found, note = site_sources(path, [s.address for s in report.sites])
            for s in report.sites:
                s.source = found.get(s.address)
            if note:
                report.incomplete = sorted(set(report.incomplete) | {note})
    model.summarize_report(report)
    rules_stage(report, options)
    return report


def rules_stage(report: model.Report, options: ScanOptions | None = None) -> None:
    """The rules stage, its one owner: findings from the selected rules (`options.rules`; None: the shipped ones),
    then the summary. Pure: report in, findings out. Every report a runner produces passes here once: whole ones
    at the end of the pipeline, partial ones (a child stopped after loading the file) in run/isolate.py and
    run/job.py; the CLI does not run rules again."""
    from ..rules import apply_rules

    apply_rules(report, getattr(options, "rules", None))
