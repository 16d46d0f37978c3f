"""`riz`: Capstone's name for the index of a SIB byte that has no index (`mov %eax,(%rdx,%riz,1)`, bytes 89 04 22).

It is not a register: it reads as 0. /usr/bin/node has such forms (in hand-written crypto code decoded as
instructions); the local engine looked `riz` up in its register table, and a *store* through such an operand raised
KeyError twice (once in the transfer function, once in its fallback that clobbers what the instruction writes), so
the whole function failed: its sites became "analysis failed: KeyError: 'riz'", and when the function called
libc's syscall() the stage that resolves those calls (values/wrappers.library_wrapper_calls) was lost for the whole
binary ("calls to library syscall wrappers not analysed: KeyError: 'riz'").
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from analyzer.elf.memory import Memory, Region

BASE = 0x401000

C_SOURCE = r"""
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    int x = 0;
    /* movl %eax,(%rdx,%riz,1): ModRM 0x04, SIB 0x22 (no index). gas no longer accepts the name %riz. */
    __asm__ volatile(".byte 0x89, 0x04, 0x22" : : "d"(&x), "a"(7) : "memory");
    return (int)syscall(SYS_getpid) + x;
}
"""


def flow(code: bytes):
    from analyzer.values.local import FunctionDataflow

    mem = Memory([Region(BASE, code, True, False, True, "text")])
    return FunctionDataflow(mem, BASE, BASE + len(code), 64, "f")


def test_store_through_riz_does_not_fail_the_function():
    code = bytes.fromhex(
        "488d542408"    # lea 0x8(%rsp),%rdx
        "b827000000"    # mov $39,%eax
        "890422"        # mov %eax,(%rdx,%riz,1)   <- riz: no index
        "8b0c22"        # mov (%rdx,%riz,1),%ecx   <- load back what was stored
        "c3")           # ret
    fd = flow(code)
    ret = BASE + len(code) - 1
    state = fd.state_before(ret)
    assert state is not None
    assert sorted(state.get("rax")) == [39]
    assert sorted(state.get("rcx")) == [39]  # [rdx + riz] is [rdx]: the stack slot just written


def test_worth_angr_does_not_take_riz_for_an_index():
    """A load through `[rdx + riz]` is a plain dereference: angr cannot do better than the local engine."""
    from analyzer.values.wrappers import worth_angr

    code = bytes.fromhex("8b0422"   # mov (%rdx,%riz,1),%eax
                         "8b048a"   # mov (%rdx,%rcx,4),%eax   (a real index: a table)
                         "c3")
    fd = flow(code)
    assert fd.insns[BASE].ops[1].mem.index != 0  # Capstone does report riz as the index
    assert not worth_angr(fd, [f"loaded at {BASE:#x} through a pointer from parameter rdx"])
    assert worth_angr(fd, [f"loaded at {BASE + 3:#x} through a pointer from parameter rdx"])


@pytest.fixture(scope="module")
def riz_binary(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc")
    if not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        pytest.skip("needs the system's libc.so.6")
    d = tmp_path_factory.mktemp("riz")
    src = d / "riz.c"
    src.write_text(C_SOURCE)
    out = d / "riz"
    p = subprocess.run([gcc, "-O2", "-Wall", "-fPIE", "-pie", "-Wl,--build-id=none", "-o", str(out), str(src)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        pytest.skip(f"gcc failed: {p.stderr[:300]}")
    return out


def test_the_binary_has_the_riz_store(riz_binary):
    """The input really holds the form (and a call to syscall() in the same function)."""
    import capstone

    from analyzer.program.load import load

    lb = load(str(riz_binary))
    main = next(f for f in lb.functions if f.name == "main")
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    ins = [f"{i.mnemonic} {i.op_str}" for i in md.disasm(lb.memory.read(main.start, main.end - main.start),
                                                          main.start)]
    assert any("riz" in i and i.startswith("mov dword ptr") for i in ins), ins
    assert any(i.startswith("call") for i in ins), ins


def test_call_to_libc_syscall_next_to_a_riz_store(riz_binary):
    from analyzer.run.pipeline import scan_file

    r = scan_file(str(riz_binary))
    assert not any("riz" in m for m in r.incomplete), r.incomplete
    assert len(r.wrapper_calls) == 1, (r.wrapper_calls, r.incomplete)
    w = r.wrapper_calls[0]
    assert (w.function, w.callee, w.library) == ("main", "syscall", "libc.so.6")
    assert w.number.values == [39] and w.number.status == "resolved"
    assert [s.name for s in w.syscalls] == ["getpid"]
