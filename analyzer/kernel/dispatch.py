"""From an entry point to the numbers: find the C function that dispatches (do_syscall_64 ...), its dispatch site
(a table-indexed call/load or a call to a compare-tree function such as x64_sys_call), the NR_syscalls bound in
front of it, and decode the mapping number -> handler.

The dispatcher is chosen by what the code contains, never by kernel version:
  * table: `call *tbl(,%rax,8)` or `mov tbl(,%rax,8),%rax; call __x86_indirect_thunk_rax`;
  * switch: a call to a function made of compare/branch trees on the number (6.9+, backported to 6.1.9x);
  * jump-table: such a function built with jump tables (`jmp *tbl(,%rsi,8)` or through a retpoline thunk).
The compare tree is decoded by propagating the set of possible numbers through every branch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .code import NOP_MNEMONICS, Code, direct_target, thunk_register, family, imm_operand, mem_operand, reg_operand, written_families
from .image import KernelImage
from ..syscalls import X32_SYSCALL_BIT
from .model import PathStep

MAX_BFS_DEPTH = 5
MAX_BFS_FUNCTIONS = 400
MAX_SWITCH_STEPS = 400_000
BOUND_LOOKBACK = 40
UNKNOWN_DOMAIN = 2048
INLINE_ENOSYS = -1
ENOSYS = -38
MASK64 = (1 << 64) - 1
X32_IMMEDIATES = {X32_SYSCALL_BIT, (-X32_SYSCALL_BIT) & 0xFFFFFFFF, (-X32_SYSCALL_BIT) & MASK64,
                  X32_SYSCALL_BIT - 1, 0xBFFFFFFF}
SKIP_CALLEES = ("__fentry__", "__x86_return_thunk", "__sanitizer_cov", "__stack_chk_fail", "__x86_indirect_thunk",
                "__x86_indirect_call_thunk", "__x86_indirect_jump_thunk", "__cfi_", "__SCT__", "__static_call",
                "panic", "__warn_printk", "__ubsan", "__kasan", "__asan", "__tsan", "__kcsan")
NO_FLAGS = frozenset(("mov", "movabs", "movzx", "movsx", "movsxd", "lea", "push", "pop", "nop", "endbr64", "xchg",
                      "call", "jmp"))
CONDITIONS = {
    "je": "eq", "jz": "eq", "jne": "ne", "jnz": "ne",
    "ja": "ugt", "jnbe": "ugt", "jae": "uge", "jnb": "uge", "jnc": "uge", "jb": "ult", "jnae": "ult", "jc": "ult",
    "jbe": "ule", "jna": "ule",
    "jg": "sgt", "jnle": "sgt", "jge": "sge", "jnl": "sge", "jl": "slt", "jnge": "slt", "jle": "sle", "jng": "sle",
    "js": "neg", "jns": "pos",
}


@dataclass
class Site:
    kind: str  # "switch" | "table"
    at: int  # the instruction
    target: int  # switch function or table address
    index_reg: str | None  # register family carrying the number (table); switch: the argument register
    index: int  # position in the c_entry instruction list


@dataclass
class Bound:
    nr: int | None
    method: str
    at: int | None


@dataclass
class SwitchDecode:
    mapping: dict[int, tuple[int, str]] = field(default_factory=dict)  # nr -> (target, "jmp"|"call"|...)
    used_table: bool = False
    unresolved: set[int] = field(default_factory=set)
    conflicts: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    steps: int = 0


@dataclass
class DispatchPath:
    steps: list[PathStep]
    c_entry: int
    sites: list[Site]


def _is_skip(name: str | None) -> bool:
    return bool(name) and name.startswith(SKIP_CALLEES)


class Dispatch:
    def __init__(self, image: KernelImage, code: Code) -> None:
        self.image = image
        self.code = code
        self._switch_cache: dict[int, str | None] = {}
        self._table_cache: dict[int, bool] = {}
        self._sites_cache: dict[int, list[Site]] = {}
        self._code_starts = None

    # ---- from an entry to the dispatching function --------------------------------------------------------------
    def walk(self, entry: int) -> DispatchPath | None:
        """Breadth-first over direct calls/jumps from the entry code, up to MAX_BFS_DEPTH functions deep, until a
        function that holds a dispatch site. Returns the chain of hops."""
        image = self.image
        lo, hi = image.function_range(entry)
        start_steps = [PathStep(entry, image.best_name(entry), "entry")]
        sites = self.sites(lo, hi)
        if sites:
            return DispatchPath(start_steps, entry, sites)
        queue: list[tuple[int, list[PathStep]]] = []
        for at, how, t in self.code.direct_targets(lo, hi):
            queue.append((t, start_steps + [PathStep(t, image.best_name(t), how, at)]))
        seen = {entry}
        visited = 0
        while queue and visited < MAX_BFS_FUNCTIONS:
            t, steps = queue.pop(0)
            if t in seen or not image.executable(t):
                continue
            seen.add(t)
            name = image.best_name(t)
            if _is_skip(name):
                continue
            visited += 1
            flo, fhi = image.function_range(t)
            sites = self.sites(flo, fhi)
            if sites:
                return DispatchPath(steps, t, sites)
            if len(steps) > MAX_BFS_DEPTH:
                continue
            for at, how, nt in self.code.direct_targets(flo, fhi):
                if nt not in seen:
                    queue.append((nt, steps + [PathStep(nt, image.best_name(nt), how, at)]))
        return None

    # ---- dispatch sites -----------------------------------------------------------------------------------------
    def sites(self, lo: int, hi: int) -> list[Site]:
        if lo in self._sites_cache:
            return self._sites_cache[lo]
        out: list[Site] = []
        insns = self.code.decode_cheap(lo, hi)
        for i, ins in enumerate(insns):
            m = ins.mnemonic
            if m in ("call", "jmp"):
                t = direct_target(ins)
                if t is not None and not lo <= t < hi:
                    nr_reg = self.switch_register(t)
                    if nr_reg:
                        out.append(Site("switch", ins.address, t, nr_reg, i))
                    continue
            if m in ("call", "jmp", "mov") and "*8" in ins.op_str:
                mem = mem_operand(ins)
                if mem and mem.index and mem.scale == 8 and mem.base is None and self.is_table(mem.disp):
                    fam = family(mem.index)
                    out.append(Site("table", ins.address, mem.disp, fam[0] if fam else mem.index, i))
        self._sites_cache[lo] = out
        return out

    def is_table(self, addr: int) -> bool:
        """At least 32 consecutive pointers to the starts of code symbols (syscall handlers)."""
        if addr in self._table_cache:
            return self._table_cache[addr]
        ok = False
        raw = self.image.memory.read(addr, 8 * 32)
        if raw:
            ptrs = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
            starts = sum(1 for p in ptrs if self.image.executable(p) and self.image.has_symbol(p))
            ok = starts >= 30 and len(set(ptrs)) >= 8
        self._table_cache[addr] = ok
        return ok

    def switch_register(self, addr: int) -> str | None:
        """Is the code at addr a compare tree (or jump-table switch) on one argument register? Returns its family."""
        if addr in self._switch_cache:
            return self._switch_cache[addr]
        result = None
        image = self.image
        if image.executable(addr):
            lo, hi = image.function_range(addr)
            if hi - lo >= 64:
                counts: dict[str, int] = {}
                external: set[int] = set()
                indexed_jump = None
                for a, _s, m, op in self.code.decode_lite(lo, hi):
                    if m == "cmp" or m == "test":
                        reg = op.split(",")[0].strip()
                        fam = family(reg)
                        if fam and fam[0] in ("rdi", "rsi", "rdx"):
                            counts[fam[0]] = counts.get(fam[0], 0) + 1
                    elif m == "jmp" and op.startswith("0x"):
                        t = int(op, 16)
                        if not lo <= t < hi:
                            external.add(t)
                    elif m == "jmp" and "*8" in op:
                        indexed_jump = op
                if counts:
                    reg, n = max(counts.items(), key=lambda kv: kv[1])
                    if (n >= 6 and len(external) >= 8) or (indexed_jump and n >= 1):
                        result = reg
        self._switch_cache[addr] = result
        return result

    # ---- the bound ----------------------------------------------------------------------------------------------
    def bound(self, lo: int, hi: int, site: Site) -> Bound:
        """NR_syscalls from the array_index_nospec `cmp $NR,%reg; sbb %r,%r` in front of the site, else from the
        range check `cmp $NR-1,%reg; ja`."""
        insns = self.code.decode_cheap(lo, hi)
        fallback: Bound | None = None
        for k in range(site.index - 1, max(site.index - BOUND_LOOKBACK, 0) - 1, -1):
            ins = insns[k]
            if ins.mnemonic == "sbb" and k > 0:
                a, b = reg_operand(ins, 0), reg_operand(ins, 1)
                prev = insns[k - 1]
                imm = imm_operand(prev, 1)
                if a and a == b and prev.mnemonic == "cmp" and imm is not None:
                    return Bound(imm & 0xFFFFFFFF, "cmp/sbb (array_index_nospec)", prev.address)
            if ins.mnemonic == "cmp" and fallback is None and k + 1 < len(insns):
                imm = imm_operand(ins, 1)
                nxt = insns[k + 1].mnemonic
                if imm is not None and nxt in ("ja", "jae", "jb", "jbe", "jnb", "jnbe", "jna", "jnae"):
                    n = imm + 1 if nxt in ("ja", "jbe", "jnbe", "jna") else imm
                    fallback = Bound(n & 0xFFFFFFFF, f"cmp/{nxt}", ins.address)
        return fallback or Bound(None, "none found", None)

    def is_x32_site(self, lo: int, hi: int, site: Site) -> bool:
        insns = self.code.decode_cheap(lo, hi)
        for k in range(site.index - 1, max(site.index - BOUND_LOOKBACK, 0) - 1, -1):
            ins = insns[k]
            if ins.mnemonic in ("sub", "add", "lea", "and", "btr", "cmp", "mov"):
                imm = imm_operand(ins, 1)
                mem = mem_operand(ins) if ins.mnemonic == "lea" else None
                vals = {imm & MASK64} if imm is not None else set()
                if mem is not None:
                    vals.add(mem.disp & MASK64)
                    vals.add(mem.disp & 0xFFFFFFFF)
                if vals & X32_IMMEDIATES:
                    return True
        return False

    # ---- reading a table ----------------------------------------------------------------------------------------
    def read_table(self, addr: int, n: int) -> dict[int, int]:
        raw = self.image.memory.read(addr, 8 * n) or b""
        return {i: int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(len(raw) // 8)}

    # ---- the compare tree ---------------------------------------------------------------------------------------
    def decode_switch(self, addr: int, domain: range, nr_reg: str = "rsi") -> SwitchDecode:
        """Propagate the set of possible numbers through the function at addr. Each path ends in a tail jump or a
        call to a handler (all numbers still possible there map to it), a table jump, or a return."""
        image = self.image
        lo, hi = image.function_range(addr)
        insns = self.code.decode_cheap(lo, hi)
        index = {ins.address: i for i, ins in enumerate(insns)}
        out = SwitchDecode()
        memo: set = set()
        first_real = next((ins.address for ins in insns if ins.mnemonic not in NOP_MNEMONICS), lo)
        # state: (addr, S, regs{fam: (offset, width)}, consts{fam: value}, tables{fam: (table, offset, width)}, flags)
        stack = [(lo, frozenset(domain), {nr_reg: (0, 64)}, {}, {}, None)]

        def emit(numbers, target, how):
            for n in numbers:
                old = out.mapping.get(n)
                if old is not None and old[0] != target:
                    out.conflicts.add(n)
                out.mapping[n] = (target, how)

        def table_targets(numbers, table, off, width):
            groups: dict[int, set[int]] = {}
            for n in numbers:
                x = (n + off) & ((1 << width) - 1)
                v = image.memory.read_u64(table + 8 * x)
                if v is None:
                    out.unresolved.add(n)
                    continue
                groups.setdefault(v, set()).add(n)
            return groups

        while stack:
            addr_, S, regs, consts, tables, flags = stack.pop()
            key = (addr_, S, tuple(sorted(regs.items())), flags)
            if key in memo:
                continue
            memo.add(key)
            pc = addr_
            while True:
                out.steps += 1
                if out.steps > MAX_SWITCH_STEPS:
                    out.unresolved |= S
                    out.warnings.append(f"switch decode at {addr:#x} stopped after {MAX_SWITCH_STEPS} steps")
                    stack.clear()
                    break
                i = index.get(pc)
                if i is None:
                    out.unresolved |= S
                    out.warnings.append(f"branch to {pc:#x} outside the decoded code")
                    break
                ins = insns[i]
                m = ins.mnemonic
                nxt = ins.address + ins.size
                if m in ("int3", "ud2", "hlt", "ud1"):
                    break  # unreachable padding / noreturn marker
                if m in ("ret", "retq"):
                    rax = consts.get("rax")
                    if rax is not None and (rax & 0xFFFFFFFF) == (ENOSYS & 0xFFFFFFFF):
                        emit(S, INLINE_ENOSYS, "inline -ENOSYS")
                    else:
                        out.unresolved |= S
                        out.warnings.append(f"{len(S)} numbers return at {ins.address:#x} without a handler")
                    break
                if m in ("nop", "endbr64", "endbr32") or (m == "xchg" and ins.op_str in ("ax, ax", "eax, eax")):
                    pc = nxt
                    continue
                if m == "call":
                    t = direct_target(ins)
                    tname = image.best_name(t) if t is not None else None
                    if t is not None and (ins.address == first_real or tname == "__fentry__" or _is_skip(tname)
                                          and thunk_register(image, t) is None):
                        pc = nxt
                        continue
                    groups = self._indirect(ins, t, tname, S, regs, tables, table_targets)
                    if groups is not None:
                        out.used_table = True
                        for v, ns in groups.items():
                            emit(ns, v, "call (table)")
                    elif t is not None:
                        emit(S, t, "call")
                    else:
                        out.unresolved |= S
                    break
                if m == "jmp":
                    t = direct_target(ins)
                    if t is not None and lo <= t < hi:
                        nk = (t, S, tuple(sorted(regs.items())), flags)
                        if nk in memo:
                            break
                        memo.add(nk)
                        pc = t
                        continue
                    tname = image.best_name(t) if t is not None else None
                    groups = self._indirect(ins, t, tname, S, regs, tables, table_targets)
                    if groups is not None:
                        out.used_table = True
                        for v, ns in groups.items():
                            if lo <= v < hi:
                                stack.append((v, frozenset(ns), dict(regs), dict(consts), dict(tables), None))
                            else:
                                emit(ns, v, "jmp (table)")
                    elif t is not None:
                        emit(S, t, "jmp")
                    else:
                        out.unresolved |= S
                    break
                cond = CONDITIONS.get(m)
                if cond is not None:
                    t = direct_target(ins)
                    if flags is None:
                        taken, fall = S, S
                        out.warnings.append(f"branch at {ins.address:#x} on an untracked comparison")
                    else:
                        verdicts = {n: _holds(flags, n, cond) for n in S}
                        if None in verdicts.values():
                            taken, fall = S, S
                            out.warnings.append(f"branch {m} at {ins.address:#x} not modelled for this comparison")
                        else:
                            taken = frozenset(n for n, v in verdicts.items() if v)
                            fall = S - taken
                    if taken and t is not None:
                        stack.append((t, taken, dict(regs), dict(consts), dict(tables), flags))
                    if not fall:
                        break
                    S = fall
                    pc = nxt
                    continue
                # data flow on the number
                flags = self._step(ins, m, regs, consts, tables, flags)
                pc = nxt
        out.unresolved -= set(out.mapping)
        return out

    def _indirect(self, ins, t, tname, S, regs, tables, table_targets):
        """Targets of an indirect call/jmp through a table indexed by the number, grouped: {target: numbers}."""
        if t is not None:
            reg = thunk_register(self.image, t)
            if reg and reg in tables:
                table, off, width = tables[reg]
                return table_targets(S, table, off, width)
            return None
        mem = mem_operand(ins)
        if mem is not None:
            if mem.index and mem.scale == 8 and mem.base is None:
                fam = family(mem.index)
                if fam and fam[0] in regs:
                    off, width = regs[fam[0]]
                    return table_targets(S, mem.disp, off, width)
            return None
        reg = reg_operand(ins, 0)
        fam = family(reg) if reg else None
        if fam and fam[0] in tables:
            table, off, width = tables[fam[0]]
            return table_targets(S, table, off, width)
        return None

    @staticmethod
    def _step(ins, m, regs, consts, tables, flags):
        """Update what we know about registers holding (number + offset), constants and table loads."""
        if m in ("cmp", "test"):  # the bulk of a compare tree: parse the text, skip capstone's detail
            parts = ins.op_str.split(", ")
            if len(parts) == 2:
                f0 = family(parts[0])
                if f0 is not None:
                    if m == "test":
                        f1 = family(parts[1])
                        if f1 is not None and f1[0] == f0[0] and f0[0] in regs:
                            return ("cmp", regs[f0[0]], f0[1], 0)
                        if f1 is not None:
                            return None
                    else:
                        try:
                            imm = int(parts[1], 0)
                        except ValueError:
                            imm = None
                        if imm is not None:
                            return ("cmp", regs[f0[0]], f0[1], imm) if f0[0] in regs else None
                        if family(parts[1]) is not None:
                            return None
        ops = ins.operands
        dst = reg_operand(ins, 0)
        dfam = family(dst) if dst else None
        src = reg_operand(ins, 1)
        sfam = family(src) if src else None
        imm = imm_operand(ins, 1)
        if m == "cmp" and dfam:
            if dfam[0] in regs and imm is not None:
                return ("cmp", regs[dfam[0]], dfam[1], imm)
            return None
        if m == "test" and dfam and sfam and dfam[0] == sfam[0] and dfam[0] in regs:
            return ("cmp", regs[dfam[0]], dfam[1], 0)
        if m == "bt" and dfam and sfam and sfam[0] in regs and dfam[0] in consts:
            return ("bt", regs[sfam[0]], dfam[1], consts[dfam[0]])
        if m == "bt" and dfam and imm is None and sfam and sfam[0] in regs:
            return None
        new_flags = flags if m in NO_FLAGS or m.startswith(("cmov", "set")) else None
        if m == "sub" and dfam and dfam[0] in regs and imm is not None:
            off, width = regs[dfam[0]]
            new_flags = ("cmp", (off, width), dfam[1], imm)
            regs[dfam[0]] = (off - imm, min(width, dfam[1]) if dfam[1] >= 32 else width)
            return new_flags
        if m == "add" and dfam and dfam[0] in regs and imm is not None:
            off, width = regs[dfam[0]]
            regs[dfam[0]] = (off + imm, min(width, dfam[1]) if dfam[1] >= 32 else width)
            return None
        if m == "lea" and dfam:
            mem = mem_operand(ins)
            if mem and mem.base and not mem.index:
                bfam = family(mem.base)
                if bfam and bfam[0] in regs:
                    off, width = regs[bfam[0]]
                    _drop(dfam[0], regs, consts, tables)
                    regs[dfam[0]] = (off + mem.disp, min(width, dfam[1]))
                    return flags
            _drop(dfam[0], regs, consts, tables)
            return flags
        if m in ("mov", "movsxd", "movsx", "movzx", "movabs") and dfam and len(ops) == 2:
            if sfam:
                v_reg, v_const, v_tab = regs.get(sfam[0]), consts.get(sfam[0]), tables.get(sfam[0])
                _drop(dfam[0], regs, consts, tables)
                if v_reg is not None:
                    regs[dfam[0]] = (v_reg[0], min(v_reg[1], max(dfam[1], 32)))
                if v_const is not None:
                    consts[dfam[0]] = v_const
                if v_tab is not None:
                    tables[dfam[0]] = v_tab
                return flags
            if imm is not None:
                _drop(dfam[0], regs, consts, tables)
                consts[dfam[0]] = imm & ((1 << max(dfam[1], 32)) - 1) if dfam[1] == 32 else imm & MASK64
                return flags
            mem = mem_operand(ins)
            _drop(dfam[0], regs, consts, tables)
            if mem and mem.index and mem.scale == 8 and mem.base is None:
                ifam = family(mem.index)
                if ifam and ifam[0] in regs:
                    off, width = regs[ifam[0]]
                    tables[dfam[0]] = (mem.disp, off, width)
            return flags
        if m == "xor" and dfam and sfam and dfam[0] == sfam[0]:
            _drop(dfam[0], regs, consts, tables)
            consts[dfam[0]] = 0
            return None
        for fam in written_families(ins):
            _drop(fam, regs, consts, tables)
        return new_flags


def _drop(fam: str, regs: dict, consts: dict, tables: dict) -> None:
    regs.pop(fam, None)
    consts.pop(fam, None)
    tables.pop(fam, None)


def _holds(flags, n: int, cond: str) -> bool | None:
    kind = flags[0]
    if kind == "bt":
        (off, width), _w, mask = flags[1], flags[2], flags[3]
        x = (n + off) & ((1 << width) - 1)
        bit = (mask >> (x & 63)) & 1
        if cond == "ult":  # jb / jc: CF = the tested bit
            return bool(bit)
        if cond == "uge":
            return not bit
        return None
    (off, width), w, imm = flags[1], flags[2], flags[3]
    wm = (1 << w) - 1
    x = ((n + off) & ((1 << width) - 1)) & wm
    y = imm & wm
    if cond == "eq":
        return x == y
    if cond == "ne":
        return x != y
    if cond == "ugt":
        return x > y
    if cond == "uge":
        return x >= y
    if cond == "ult":
        return x < y
    if cond == "ule":
        return x <= y
    sx = x - (1 << w) if x >> (w - 1) else x
    sy = y - (1 << w) if y >> (w - 1) else y
    if cond == "sgt":
        return sx > sy
    if cond == "sge":
        return sx >= sy
    if cond == "slt":
        return sx < sy
    if cond == "sle":
        return sx <= sy
    d = (x - y) & wm
    if cond == "neg":
        return bool(d >> (w - 1))
    if cond == "pos":
        return not d >> (w - 1)
    return None
