"""HTML: one self-contained, script-free page, every binary-derived string escaped, kernel paths drawn as SVG,
and checked in a real headless browser (Debian's chromium, offline): the page loads without console errors or
blocked requests and shows the findings. Chromium missing is a failure, not a skip (.ci/run installs it)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

from conftest import ROOT

from analyzer.model import KernelPath
from analyzer.render import render_all
from analyzer.rules import apply_rules, shipped_rules
from analyzer.run.pipeline import scan_file

HOSTILE = ROOT / "corpus" / "hostile" / "hostile_names.elf"


def scan_rel(rel: str):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan_file(rel)
    finally:
        os.chdir(cwd)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")


def browse(html_path, *extra: str) -> subprocess.CompletedProcess:
    """Headless, offline (no proxy reachable, no background networking), console logged to stderr."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, f"file://{html_path}"],
            capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict]]:
    p = Tags()
    p.feed(html)
    return p.tags


def assert_self_contained(html: str, strict_urls: bool = True) -> None:
    ts = tags(html)
    assert not [t for t, _ in ts if t in ("script", "iframe", "object", "embed", "img", "link") and
                not (t == "link" and _.get("href") == "data:,")]
    for _, attrs in ts:
        for k, v in attrs.items():
            assert not k.startswith("on"), (k, v)
            if k in ("src", "href", "xlink:href", "action", "srcset"):
                assert v is None or v.startswith("#") or v.startswith("data:"), (k, v)
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", html)), "only url(#fragment)"
    assert "@import" not in html
    assert "default-src 'none'" in html
    if strict_urls:
        assert "http://" not in html and "https://" not in html


@pytest.fixture(scope="module")
def risky():
    return scan_rel("corpus/rules/bin/rules_risky")


def with_kernel_paths(rep):
    """Site.kernel as the --vmlinux stage fills it (entry -> C entry -> dispatcher -> handler)."""
    for s in rep.sites:
        s.kernel = [KernelPath(nr=r.nr, abi=r.abi, entry="entry_SYSCALL_64", handler=f"__x64_sys_{r.name}"
                               if r.name else "__x64_sys_ni_syscall", enosys=r.name is None,
                               path=[f"{s.instruction} @ {s.address:#x}", "entry_SYSCALL_64", "do_syscall_64",
                                     "x64_sys_call [switch]", f"__x64_sys_{r.name}" if r.name else
                                     "__x64_sys_ni_syscall"]) for r in s.syscalls]
    rep.kernel = {"version": "6.1.0-56-cloud-amd64", "disagreements": []}
    apply_rules(rep)
    return rep


def test_self_contained_and_deterministic(risky):
    html = render_all([risky], "html", {"rules": shipped_rules()})
    assert_self_contained(html)
    assert html == render_all([scan_rel("corpus/rules/bin/rules_risky")], "html", {"rules": shipped_rules()})
    assert risky.binary.sha256 in html and "sysscan " in html
    rows = re.findall(r'<tr class="finding sev-(\w+)" data-rule="([\w-]+)"', html)
    assert len(rows) == len(risky.findings) and ("critical", "kernel-module") in rows


def test_kernel_paths_are_drawn_as_svg():
    rep = with_kernel_paths(scan_rel("corpus/rules/bin/rules_risky"))
    html = render_all([rep], "html", {})
    assert_self_contained(html)
    figures = re.findall(r'<figure class="kpath" id="kpath-0-([0-9a-f]+)"><svg', html)
    assert len(figures) == len(rep.sites)
    assert html.count("<rect") >= 5 * len(rep.sites) and "do_syscall_64" in html
    assert "#ffebe9" in html  # the -ENOSYS handler (number 400) is marked


def test_hostile_names_are_escaped():
    if not HOSTILE.exists():
        pytest.fail(f"{HOSTILE} is missing")
    rep = scan_rel(str(HOSTILE.relative_to(ROOT)))
    html = render_all([with_kernel_paths(rep)], "html", {})
    assert_self_contained(html, strict_urls=False)  # a hostile name *contains* a URL; it must stay inert text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" not in html


def test_in_a_real_browser(tmp_path, risky):
    page = tmp_path / "report.html"
    page.write_text(render_all([with_kernel_paths(scan_rel("corpus/rules/bin/rules_risky"))], "html", {}))
    p = browse(page, "--dump-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    assert console_lines(p.stderr) == [], console_lines(p.stderr)
    dom = p.stdout
    assert "<h3>Findings (" in dom and 'data-rule="kernel-module"' in dom and "Kernel module loading" in dom
    assert dom.count('<tr class="finding') == len(risky.findings)
    assert dom.count("<svg") == len(risky.sites)
    shot = tmp_path / "shot.png"
    p = browse(page, f"--screenshot={shot}", "--window-size=1280,2000")
    assert p.returncode == 0 and shot.stat().st_size > 20000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hostile_page_in_a_real_browser(tmp_path):
    if not HOSTILE.exists():
        pytest.fail(f"{HOSTILE} is missing")
    page = tmp_path / "hostile.html"
    page.write_text(render_all([scan_rel(str(HOSTILE.relative_to(ROOT)))], "html", {}))
    p = browse(page, "--dump-dom")
    assert p.returncode == 0
    # an unescaped <script> or <img onerror> would be blocked by the CSP and logged on the console
    assert console_lines(p.stderr) == [], console_lines(p.stderr)
    found = {t for t, _ in tags(p.stdout)}
    assert "script" not in found and "img" not in found
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in p.stdout
