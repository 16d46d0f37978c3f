"""Find where user space enters the kernel, by data flow: the MSR writes that set the syscall/sysenter targets,
and the IDT record for vector 0x80.

MSR writes come in three forms:
  * literal `wrmsr`: index in ecx, value in edx:eax;
  * paravirt: `call *pv_ops+0xc0` (Debian's kernels), index in edi, value low in esi, high in edx. We accept an
    indirect call through a memory slot when the pointer stored in the slot leads to code that executes `wrmsr`
    (native_write_msr / native_write_msr_safe), and report the slot and its target;
  * a direct call to such a function (kernels built without paravirt but with out-of-line MSR helpers).
Index and value are recovered with the user side's value-recovery engine (analyzer.values.local).

We do not decode the kernel: candidate functions are the ones whose bytes contain the MSR index as an immediate
(`82 00 00 c0` for LSTAR ...), located through the symbol table.
"""
from __future__ import annotations

import struct

from ..values.local import FunctionDataflow
from .code import Code, family, mem_operand, thunk_register
from .image import KernelImage
from .model import MSR_NAMES, EntryPoint, MsrWrite

MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_IA32_SYSENTER_EIP = 0x176
ENTRY_MSRS = {
    MSR_LSTAR: ("syscall", "x86_64"),
    MSR_CSTAR: ("syscall (compat)", "i386"),
    MSR_IA32_SYSENTER_EIP: ("sysenter", "i386"),
}
IA32_SYSCALL_VECTOR = 0x80
KERNEL_CS = 0x10
MAX_CANDIDATE_FUNCTION = 0x8000
MAX_CANDIDATES = 64

FALLBACK_NAMES = {
    "syscall": ("entry_SYSCALL_64",),
    "syscall (compat)": ("entry_SYSCALL_compat",),
    "sysenter": ("entry_SYSENTER_compat", "entry_SYSENTER_32"),
    "int 0x80": ("asm_int80_emulation", "entry_INT80_compat", "entry_INT80_32"),
}


def _needles(msrs: tuple[int, ...]) -> list[bytes]:
    out = []
    for msr in msrs:
        if msr >= 0x10000:
            out.append(struct.pack("<I", msr))  # distinctive enough as a bare imm32
        else:
            out += [bytes((op,)) + struct.pack("<I", msr) for op in (0xB9, 0xBF)]  # mov $imm32, %ecx / %edi
    return out


def candidate_functions(image: KernelImage, msrs: tuple[int, ...] = (MSR_LSTAR,),
                        skip: set[tuple[int, int]] = frozenset()) -> list[tuple[int, int]]:
    """Functions whose code contains one of the MSR indexes as an immediate."""
    found: set[tuple[int, int]] = set()
    ranges = image.code_ranges() or [(r.start, r.end) for r in image.memory.regions if r.executable]
    for lo, hi in ranges:
        r = image.memory.region_of(lo)
        if r is None:
            continue
        data, a, b = r.data, lo - r.start, min(hi, r.end) - r.start  # searched in place: a slice copies MBs
        for needle in _needles(msrs):
            i = data.find(needle, a, b)
            while i >= 0 and len(found) < MAX_CANDIDATES:
                fn = image.containing_function(r.start + i)
                if fn and fn[1] - fn[0] <= MAX_CANDIDATE_FUNCTION and fn not in skip:
                    found.add(fn)
                i = data.find(needle, i + 1, b)
    return sorted(found)


class MsrWriteFinder:
    def __init__(self, image: KernelImage, code: Code) -> None:
        self.image = image
        self.code = code
        self._writer_cache: dict[int, bool] = {}

    def _is_msr_writer(self, target: int | None) -> bool:
        if target is None or not self.image.executable(target):
            return False
        if target not in self._writer_cache:
            self._writer_cache[target] = self.code.contains_wrmsr(target)
        return self._writer_cache[target]

    @staticmethod
    def _thunk_slot(df, addr: int, reg: str) -> int | None:
        """`mov slot(%rip),%rax; call __x86_indirect_thunk_rax` (a retpoline build): the slot loaded into the
        thunk's register by one of the few instructions before the call."""
        order = sorted(a for a in df.insns if a < addr)[-8:]
        for a in reversed(order):
            ins = df.insns[a]
            ops = ins.raw.operands
            if ins.mnemonic == "mov" and len(ops) == 2 and ops[0].type == 1 and \
                    (family(ins.raw.reg_name(ops[0].reg)) or ("",))[0] == reg:
                mem = mem_operand(ins.raw)
                return mem.absolute if mem is not None else None
        return None

    def writes_in(self, lo: int, hi: int) -> list[MsrWrite]:
        image = self.image
        name = image.best_name(lo)
        df = FunctionDataflow(image.memory, lo, hi, 64, name or "", symbolize=image.symbolize)
        out: list[MsrWrite] = []
        for addr in sorted(df.insns):
            ins = df.insns[addr]
            if ins.mnemonic == "wrmsr":
                regs, method, via = ("rcx", "rax", "rdx"), "wrmsr", None
            elif ins.mnemonic in ("call", "jmp"):  # jmp: a tail call to the writer
                raw = ins.raw
                ops = raw.operands
                target = ops[0].imm & 0xFFFFFFFFFFFFFFFF if ops and ops[0].type == 2 else None  # X86_OP_IMM
                if target is not None:
                    tname = image.best_name(target) or ""
                    treg = thunk_register(image, target)
                    slot = self._thunk_slot(df, addr, treg) if treg else None
                    if slot is not None:
                        ptr = image.memory.read_u64(slot)
                        if not self._is_msr_writer(ptr):
                            continue
                        regs, method = ("rdi", "rsi", "rdx"), "paravirt"
                        via = (f"{image.symbolize(slot) or hex(slot)} -> {image.best_name(ptr) or hex(ptr)} "
                               f"(through {tname})")
                    elif not self._is_msr_writer(target):
                        continue
                    else:
                        regs, method, via = ("rdi", "rsi", "rdx"), "msr-call", image.best_name(target)
                else:
                    mem = mem_operand(raw)
                    if mem is None or mem.absolute is None:
                        continue
                    slot = mem.absolute
                    ptr = image.memory.read_u64(slot)
                    if not self._is_msr_writer(ptr):
                        continue
                    regs, method = ("rdi", "rsi", "rdx"), "paravirt"
                    via = f"{image.symbolize(slot) or hex(slot)} -> {image.best_name(ptr) or hex(ptr)}"
            else:
                continue
            st = df.state_before(addr)
            if st is None:
                continue
            idx = st.get(regs[0])
            if not idx.is_resolved:
                continue
            lo_v, hi_v = st.get(regs[1]), st.get(regs[2])
            values: list[int] = []
            if lo_v.is_resolved and hi_v.is_resolved:
                values = sorted({((h & 0xFFFFFFFF) << 32) | (l & 0xFFFFFFFF)
                                 for l in lo_v.constants for h in hi_v.constants})[:16]
            for msr in sorted(i & 0xFFFFFFFF for i in idx.constants):
                out.append(MsrWrite(addr, name, msr, MSR_NAMES.get(msr), values, method, via))
        return out


def find_msr_writes(image: KernelImage, code: Code) -> list[MsrWrite]:
    """MSR writes in the functions that mention MSR_LSTAR (syscall_init writes all the entry MSRs); only when
    CSTAR or SYSENTER_EIP is not written there, also the functions that mention those."""
    finder = MsrWriteFinder(image, code)
    out: list[MsrWrite] = []
    seen = candidate_functions(image, (MSR_LSTAR,))
    for lo, hi in seen:
        out.extend(finder.writes_in(lo, hi))
    missing = tuple(m for m in (MSR_CSTAR, MSR_IA32_SYSENTER_EIP)
                    if not any(w.msr == m and any(image.executable(v) for v in w.values) for w in out))
    if missing:
        for lo, hi in candidate_functions(image, missing, set(seen)):
            out.extend(finder.writes_in(lo, hi))
    return out


def entries_from_writes(image: KernelImage, writes: list[MsrWrite]) -> list[EntryPoint]:
    out: list[EntryPoint] = []
    seen: set[tuple[str, int]] = set()
    for w in writes:
        if w.msr not in ENTRY_MSRS:
            continue
        instruction, abi = ENTRY_MSRS[w.msr]
        for v in w.values:
            if not image.executable(v) or (instruction, v) in seen:
                continue
            seen.add((instruction, v))
            out.append(EntryPoint(instruction=instruction, abi=abi, address=v, symbol=image.best_name(v),
                                  method=w.method, msr=w.msr, msr_name=MSR_NAMES.get(w.msr), at=w.at,
                                  writer=w.writer, via=w.via))
    return out


def find_int80(image: KernelImage) -> list[EntryPoint]:
    """The vector 0x80 gate in a static `struct idt_data` table (def_idts / ia32_idt), found by its shape:
    {u32 vector = 0x80; u32 segment = __KERNEL_CS; u16 bits: present, DPL 3, interrupt/trap gate; ptr addr}."""
    out: list[EntryPoint] = []
    needle = struct.pack("<II", IA32_SYSCALL_VECTOR, KERNEL_CS)
    for region in _data_ranges(image):
        data, hi = region.data, region.hi
        i = data.find(needle, region.lo, hi)
        while i >= 0:
            if (region.start + i) % 4 == 0 and i + 24 <= hi:
                bits, addr = struct.unpack_from("<H6xQ", data, i + 8)
                present_dpl3 = bits & 0xE000 == 0xE000 and (bits >> 8) & 0xF in (0xE, 0xF)
                if present_dpl3 and image.executable(addr) and _idt_neighbour(image, region, i):
                    if not any(e.address == addr for e in out):
                        out.append(EntryPoint(instruction="int 0x80", abi="i386", address=addr,
                                              symbol=image.best_name(addr), method="idt", at=region.start + i,
                                              writer=image.symbolize(region.start + i),
                                              via="struct idt_data {vector 0x80, __KERNEL_CS, DPL 3}"))
            i = data.find(needle, i + 1, hi)
    return out


class _Range:
    """data[lo:hi] of a mapped region starting at `start`: searched in place (copying a section costs MBs)."""

    def __init__(self, start: int, data: bytes, lo: int, hi: int) -> None:
        self.start = start
        self.data = data
        self.lo = lo
        self.hi = hi


IDT_SECTIONS = (".init.data", ".init.rodata", ".rodata", ".data", ".data..ro_after_init")


def _data_ranges(image: KernelImage) -> list[_Range]:
    """Where static `struct idt_data` tables live (init data; read-only data on some configs); every loaded
    region when the image has no section headers."""
    out = []
    for name, addr, size, _off, sh_type, _flags in image.sections:
        if addr and name in IDT_SECTIONS and sh_type != 8:
            r = image.memory.region_of(addr)
            if r is not None and size and addr + size <= r.end:
                out.append(_Range(r.start, r.data, addr - r.start, addr - r.start + size))
    return out or [_Range(r.start, r.data, 0, len(r.data)) for r in image.memory.regions]


def _idt_neighbour(image: KernelImage, rng: _Range, i: int) -> bool:
    """A real table has another gate record next to it, or (a one-entry ia32_idt) a symbol starting at it. Symbols
    from kallsyms may lack data symbols (CONFIG_KALLSYMS_ALL off): there, a gate to the very start of a function
    is taken as one."""
    for j in (i - 24, i + 24):
        if rng.lo <= j and j + 24 <= rng.hi:
            vec, seg, _bits, addr = struct.unpack_from("<IIH6xQ", rng.data, j)
            if vec < 256 and seg == KERNEL_CS and image.executable(addr):
                return True
    if image.names_at(rng.start + i):
        return True
    target, = struct.unpack_from("<Q", rng.data, i + 16)
    return image.symbols_from != "symtab" and image.has_symbol(target)


def fallback_entries(image: KernelImage, have: set[str]) -> list[EntryPoint]:
    out = []
    abis = {"syscall": "x86_64", "syscall (compat)": "i386", "sysenter": "i386", "int 0x80": "i386"}
    for instruction, names in FALLBACK_NAMES.items():
        if instruction in have:
            continue
        for n in names:
            a = image.address_of(n)
            if a is not None:
                out.append(EntryPoint(instruction=instruction, abi=abis[instruction], address=a, symbol=n,
                                      method="symbol-fallback",
                                      note="no MSR write / IDT record found by data flow; located by name"))
                break
    return out
