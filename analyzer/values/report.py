"""A site of the report (model.Site) from a raw site and the values the engine recovers at it: the syscall named
in its ABI's table, the arguments typed by the table's parameters, strings read from read-only memory."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import model
from ..budget import BUDGET_REASON, BudgetExceeded
from ..syscalls import load_table
from ..syscalls.abi import VDSO_KINDS, VSYSCALL, name_syscall, site_abi

if TYPE_CHECKING:
    from ..program.model import LoadedBinary
    from ..sites import RawSite
    from .engine import ValueEngine
    from .local import ValueSummary


def _register_value(reg: str, role: str, s: ValueSummary, lb: LoadedBinary,
                    param_type: str | None, param: str | None) -> model.RegisterValue:
    strings: dict[int, str] = {}
    if s.constants and (param_type is None or "char" in param_type):
        for v in s.constants:
            if lb.memory.is_readonly(v):
                text = lb.memory.read_cstring(v)
                if text is not None and (param_type is not None or len(text) >= 3):
                    strings[v] = text
    return model.RegisterValue(
        register=reg, role=role, values=list(s.constants), status=s.status, reasons=list(s.reasons),
        strings=strings, param=param,
        provenance=list(getattr(s, "provenance", ()) or (["local"] if s.constants else [])),
        callers=list(getattr(s, "callers", ())),
    )


def build_site(lb: LoadedBinary, raw: RawSite, engine: ValueEngine) -> model.Site:
    entry_abi = site_abi(lb.bits, raw.instruction)
    abi, nreg, aregs = entry_abi.name, entry_abi.number_register, entry_abi.arg_registers
    # rcx as well before `syscall`: the instruction overwrites it, so a constant left there is a lost argument.
    extra_regs = ["rcx"] if abi == "x86_64" and raw.instruction == "syscall" else []
    vals = engine.at_site(raw, [nreg, *aregs, *extra_regs])
    number = vals[nreg]
    if raw.fixed_number is not None:  # a vsyscall-page call: the address called is the syscall
        from .local import ValueSummary

        nreg = "call target"
        number = ValueSummary((raw.fixed_number,), (), ())
    refs = [name_syscall(abi, nr) for nr in number.constants]
    # How many arguments to show: what the possible syscalls take; all six when we do not know which syscall.
    if refs and number.status == "resolved" and all(r.name for r in refs):
        nargs = max(len(r.params) for r in refs)
    else:
        nargs = len(aregs)
    single = refs[0] if len(refs) == 1 and refs[0].name else None
    args = []
    for i, reg in enumerate(aregs[:nargs]):
        ptype = pname = None
        if single and i < len(single.params):
            ptype, _, pname = single.params[i].rpartition(" ")
            pname = pname.lstrip("*")
        args.append(_register_value(reg, f"arg{i}", vals[reg], lb, ptype, pname))
    notes = []
    if lb.bits == 64 and abi == "i386":
        notes.append(f"{raw.instruction} in a 64-bit binary enters the kernel's 32-bit (i386) syscall table")
    notes.extend(entry_notes(raw.instruction))
    if any(r.abi == "x32" for r in refs):
        notes.append("number has the x32 bit (0x40000000) set: the x32 table applies")
    for r in refs:
        if r.name is None:
            notes.append(f"number {r.nr} is not in the {r.abi} table of kernel {load_table(r.abi).kernel_version}")
    code = lb.memory.read(raw.address, raw.size) or b""
    return model.Site(
        address=raw.address, offset=raw.offset, section=raw.section, function=raw.function_name,
        function_address=raw.function_start, instruction=raw.instruction, abi=abi, bytes=code.hex(),
        number=_register_value(nreg, "number", number, lb, "int", None), args=args, syscalls=refs, notes=notes,
        extra_registers=[_register_value(r, "extra", vals[r], lb, "long", None) for r in extra_regs
                         if vals[r].constants],
    )


def entry_notes(instruction: str) -> list[str]:
    """What a site that is a call, not a trap, enters the kernel through."""
    if instruction == VSYSCALL:
        return ["a call into the legacy vsyscall page: the kernel emulates this syscall there (vsyscall=xonly, the "
                "default, or emulate); with vsyscall=none the process gets SIGSEGV instead"]
    if instruction in VDSO_KINDS:
        return ["enters the kernel through the vDSO's __kernel_vsyscall, which uses sysenter, syscall or int 0x80 "
                "(the kernel picks one at boot); i386 syscall ABI"]
    return []


def binary_info(lb: LoadedBinary) -> model.BinaryInfo:
    return model.BinaryInfo(
        path=lb.path, name=os.path.basename(lb.path), size=lb.size, sha256=lb.sha256, arch=lb.arch, bits=lb.bits,
        elf_type=lb.elf_type, pie=lb.pie, static=lb.static, stripped=lb.stripped, interpreter=lb.interpreter,
        build_id=lb.build_id, entry=lb.entry, needed=sorted(lb.needed), functions=len(lb.functions),
        debug_file=lb.debug_file,
    )


def unresolved_site(lb: LoadedBinary, raw: RawSite, reason: str) -> model.Site:
    """The site as far as site finding knows it, with every register unresolved for `reason` (a contained analysis
    failure or the time budget): it stays in the report, honestly marked, instead of vanishing."""
    entry_abi = site_abi(lb.bits, raw.instruction)
    abi, nreg, aregs = entry_abi.name, entry_abi.number_register, entry_abi.arg_registers

    def unknown(reg: str, role: str) -> model.RegisterValue:
        return model.RegisterValue(register=reg, role=role, status="unresolved", reasons=[reason])

    code = lb.memory.read(raw.address, raw.size) or b""
    return model.Site(
        address=raw.address, offset=raw.offset, section=raw.section, function=raw.function_name,
        function_address=raw.function_start, instruction=raw.instruction, abi=abi, bytes=code.hex(),
        number=unknown(nreg, "number"), args=[unknown(r, f"arg{i}") for i, r in enumerate(aregs)],
    )


def build_site_safely(lb: LoadedBinary, raw: RawSite, engine: ValueEngine, incomplete: list[str]) -> model.Site:
    """`build_site`, with whatever goes wrong contained to this site: a bug or a library exception (LIEF,
    Capstone, networkx, angr) on hostile code makes this one site unresolved with the reason, and the rest of the
    binary is still analysed. MemoryError and RecursionError are contained too (the frame is gone by the time we
    catch them, so the memory is back)."""
    if engine.deadline.expired():
        return unresolved_site(lb, raw, BUDGET_REASON)
    from .local import AnalysisBound

    try:
        return build_site(lb, raw, engine)
    except BudgetExceeded:
        return unresolved_site(lb, raw, BUDGET_REASON)
    except AnalysisBound as e:  # not a failure: the work this site needs is above the bound, and the report says so
        return unresolved_site(lb, raw, str(e))
    except Exception as e:  # noqa: BLE001 - containment is the point
        why = f"analysis failed: {type(e).__name__}: {str(e)[:200]}"
        incomplete.append(f"{raw.address:#x} in {raw.function_name}: {why}")
        return unresolved_site(lb, raw, why)
