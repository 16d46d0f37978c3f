"""Rules on kernel facts with a real kernel (Debian's 6.1 cloud vmlinux, SYSSCAN_VMLINUX_61; .ci/run fetches it).

rules_risky's enosys_on_kernel calls _sysctl (156): still in the 6.1 syscall *table*, but removed from the kernel
in 5.5, so only the kernel's own dispatcher says -ENOSYS. enosys_hole (400) is absent from the table as well."""
from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT

VMLINUX = os.environ.get("SYSSCAN_VMLINUX_61")
pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(not VMLINUX, reason="SYSSCAN_VMLINUX_61 not set (.ci/run fetches Debian's 6.1 kernel)")]


@pytest.fixture(scope="module")
def linked():
    from analyzer.kernel import analyze_kernel
    from analyzer.run.pipeline import ScanOptions, scan_file

    k = analyze_kernel(VMLINUX)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan_file("corpus/rules/bin/rules_risky", ScanOptions(kernel=k)), scan_file(
            "corpus/rules/bin/rules_risky")
    finally:
        os.chdir(cwd)


def test_enosys_comes_from_the_kernel(linked):
    with_kernel, without = linked
    on = {f.function for f in with_kernel.findings if f.rule == "enosys-on-target-kernel"}
    off = {f.function for f in without.findings if f.rule == "enosys-on-target-kernel"}
    assert on == {"enosys_hole", "enosys_on_kernel"}
    assert off == {"enosys_hole"}  # the embedded table still lists _sysctl
    site = next(s for s in with_kernel.sites if s.function == "enosys_on_kernel")
    assert site.kernel and all(k.enosys for k in site.kernel)


def test_stock_kernel_has_no_disagreement(linked):
    with_kernel, _ = linked
    assert with_kernel.kernel["disagreements"] == []
    assert not [f for f in with_kernel.findings if f.rule == "kernel-dispatch-disagreement"]


def test_reports_show_the_kernel_paths(linked, tmp_path):
    from analyzer.render import render_all
    from test_render_html import assert_self_contained, browse, console_lines

    with_kernel, _ = linked
    html = render_all([with_kernel], "html", {})
    assert_self_contained(html)
    assert html.count("<svg") == len(with_kernel.sites) and "do_syscall_64" in html and "x64_sys_call" in html
    page = tmp_path / "k.html"
    page.write_text(html)
    p = browse(page, "--dump-dom")
    assert p.returncode == 0 and console_lines(p.stderr) == []
    assert p.stdout.count("<svg") == len(with_kernel.sites)
    doc = json.loads(render_all([with_kernel], "sarif", {}))
    assert any(r["ruleId"] == "enosys-on-target-kernel" for r in doc["runs"][0]["results"])
