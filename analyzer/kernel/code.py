"""Decode only the kernel functions we need (never the whole kernel), with small operand helpers."""
from __future__ import annotations

from dataclasses import dataclass

import capstone
from capstone import x86 as X

from .image import KernelImage

# Register families, enough for the compare trees and dispatch sites we read.
_FAMILIES = {}
for _fam, _names in {
    "rax": ("rax", "eax", "ax", "al"), "rbx": ("rbx", "ebx", "bx", "bl"), "rcx": ("rcx", "ecx", "cx", "cl"),
    "rdx": ("rdx", "edx", "dx", "dl"), "rsi": ("rsi", "esi", "si", "sil"), "rdi": ("rdi", "edi", "di", "dil"),
    "rbp": ("rbp", "ebp", "bp", "bpl"), "rsp": ("rsp", "esp", "sp", "spl"),
}.items():
    for _n, _w in zip(_names, (64, 32, 16, 8)):
        _FAMILIES[_n] = (_fam, _w)
for _i in range(8, 16):
    for _suf, _w in (("", 64), ("d", 32), ("w", 16), ("b", 8)):
        _FAMILIES[f"r{_i}{_suf}"] = (f"r{_i}", _w)
_FAMILIES["ah"] = ("rax", 8)
_FAMILIES["bh"] = ("rbx", 8)
_FAMILIES["ch"] = ("rcx", 8)
_FAMILIES["dh"] = ("rdx", 8)

NOP_MNEMONICS = frozenset(("nop", "nopl", "nopw", "xchg", "endbr64", "endbr32", "data16", "cs", "int3"))
TERMINATORS = frozenset(("ret", "retq", "iretq", "iretd", "iret", "sysretq", "sysretl", "sysret", "sysexit",
                         "sysexitl", "ud2", "hlt", "int3", "ud1", "ljmp"))


def family(reg: str) -> tuple[str, int] | None:
    """'esi' -> ('rsi', 32)."""
    return _FAMILIES.get(reg)


@dataclass(frozen=True)
class Mem:
    base: str | None
    index: str | None
    scale: int
    disp: int
    size: int
    rip_target: int | None  # absolute address when rip-relative or base-less

    @property
    def absolute(self) -> int | None:
        return self.rip_target


class Lite:
    """An instruction from capstone's lite decoder (address, size, mnemonic, op_str: ~10x cheaper than a detailed
    one); anything else (operands, reg_name, regs_access) decodes the detailed instruction on first use."""

    __slots__ = ("address", "size", "mnemonic", "op_str", "_code", "_full")

    def __init__(self, code: "Code", t: tuple[int, int, str, str]) -> None:
        self.address, self.size, self.mnemonic, self.op_str = t
        self._code = code
        self._full = None

    @property
    def full(self):
        if self._full is None:
            raw = self._code.image.memory.read(self.address, self.size) or b""
            self._full = next(self._code.md.disasm(raw, self.address, 1))
        return self._full

    def __getattr__(self, name: str):
        return getattr(self.full, name)


class Code:
    """Capstone decoders with a per-range cache."""

    def __init__(self, image: KernelImage) -> None:
        self.image = image
        self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self.md.detail = True
        self.lite = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._cache: dict[tuple[int, int], list] = {}
        self._lite_cache: dict[tuple[int, int], list] = {}
        self.decoded_bytes = 0

    def decode(self, start: int, end: int) -> list:
        """Instructions (capstone, with detail) of [start, end), a linear sweep resynchronising after bad bytes."""
        key = (start, end)
        if key in self._cache:
            return self._cache[key]
        data = self.image.memory.read(start, end - start)
        if data is None:
            region = self.image.memory.region_of(start)
            data = self.image.memory.read(start, region.end - start) if region else b""
        out = []
        addr = start
        self.decoded_bytes += len(data)
        while addr < start + len(data):
            for ins in self.md.disasm(data[addr - start:], addr):
                out.append(ins)
                addr = ins.address + ins.size
            if addr < start + len(data):
                addr += 1  # an undecodable byte: resynchronise on the next one
        self._cache[key] = out
        return out

    def decode_lite(self, start: int, end: int) -> list[tuple[int, int, str, str]]:
        """(address, size, mnemonic, op_str) of [start, end): cheap, for direct targets and quick checks."""
        key = (start, end)
        if key in self._lite_cache:
            return self._lite_cache[key]
        data = self.image.memory.read(start, end - start) or b""
        out = list(self.lite.disasm_lite(data, start))
        addr = out[-1][0] + out[-1][1] if out else start
        while addr < start + len(data):  # stopped on an undecodable byte: resynchronise after it
            addr += 1
            more = list(self.lite.disasm_lite(data[addr - start:], addr))
            if more:
                out.extend(more)
                addr = more[-1][0] + more[-1][1]
        self._lite_cache[key] = out
        return out

    def decode_cheap(self, start: int, end: int) -> list[Lite]:
        """Like decode(), but detail is decoded only for the instructions that need it."""
        return [Lite(self, t) for t in self.decode_lite(start, end)]

    def function(self, addr: int) -> list:
        lo, hi = self.image.function_range(addr)
        return self.decode(lo, hi)

    def direct_targets(self, start: int, end: int) -> list[tuple[int, str, int]]:
        """(site, 'call'|'jmp', target) for every direct call/jmp in [start, end) whose target lies outside it."""
        out = []
        for a, _s, m, op in self.decode_lite(start, end):
            if m in ("call", "jmp") and op.startswith("0x"):
                try:
                    t = int(op, 16)
                except ValueError:
                    continue
                if not start <= t < end:
                    out.append((a, m, t))
        return out

    def contains_wrmsr(self, addr: int, limit: int = 96) -> bool:
        """Does the code at addr execute `wrmsr` within its first `limit` instructions (linear, no branches)?"""
        lo, hi = self.image.function_range(addr)
        hi = min(hi, lo + 0x400)
        for i, (_a, _s, m, _op) in enumerate(self.decode_lite(lo, hi)):
            if m == "wrmsr":
                return True
            if i >= limit:
                break
        return False


THUNK_PREFIXES = ("__x86_indirect_thunk_", "__x86_indirect_jump_thunk_", "__x86_indirect_call_thunk_")


def thunk_register(image, addr: int | None) -> str | None:
    """The register a retpoline thunk at addr jumps through ('rax' for __x86_indirect_thunk_rax), looking at
    every alias (6.1+ also names the rax thunk __x86_indirect_thunk_array)."""
    if addr is None:
        return None
    for name in image.names_at(addr):
        if name.startswith(THUNK_PREFIXES):
            fam = family(name.rsplit("_", 1)[-1])
            if fam and fam[1] == 64:
                return fam[0]
    return None


def direct_target(ins) -> int | None:
    """Capstone reports 64-bit immediates signed: kernel addresses come back negative, so mask."""
    if isinstance(ins, Lite):
        op = ins.op_str
        if op.startswith("0x") and " " not in op:
            return int(op, 16)
        if ins.mnemonic in ("call", "jmp") or ins.mnemonic.startswith("j"):
            return None  # register or memory operand
    ops = ins.operands
    if len(ops) == 1 and ops[0].type == X.X86_OP_IMM:
        return ops[0].imm & 0xFFFFFFFFFFFFFFFF
    return None


def reg_operand(ins, i: int) -> str | None:
    ops = ins.operands
    if i < len(ops) and ops[i].type == X.X86_OP_REG:
        return ins.reg_name(ops[i].reg)
    return None


def imm_operand(ins, i: int) -> int | None:
    ops = ins.operands
    if i < len(ops) and ops[i].type == X.X86_OP_IMM:
        return ops[i].imm
    return None


def mem_operand(ins) -> Mem | None:
    for op in ins.operands:
        if op.type == X.X86_OP_MEM:
            m = op.mem
            base = ins.reg_name(m.base) if m.base else None
            index = ins.reg_name(m.index) if m.index else None
            absolute = None
            if base == "rip":
                absolute = (ins.address + ins.size + m.disp) & 0xFFFFFFFFFFFFFFFF
                base = None
            elif base is None and index is None:
                absolute = m.disp & 0xFFFFFFFFFFFFFFFF
            seg = ins.reg_name(m.segment) if m.segment else None
            if seg in ("gs", "fs"):
                return Mem(base, index, m.scale, m.disp, op.size, None)
            return Mem(base, index, m.scale, m.disp & 0xFFFFFFFFFFFFFFFF if index else m.disp, op.size, absolute)
    return None


def written_families(ins) -> set[str]:
    try:
        _r, w = ins.regs_access()
    except capstone.CsError:
        return set()
    out = set()
    for r in w:
        f = family(ins.reg_name(r))
        if f:
            out.add(f[0])
    return out
