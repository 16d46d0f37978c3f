"""What a handler address is: its name (aliases resolved per ABI), whether it only returns -ENOSYS, the
implementation it calls, and its signature from the ftrace syscall metadata."""
from __future__ import annotations

import os
from array import array

from ..syscalls.abi import ABIS
from .code import Code
from .image import KernelImage

ABI_PREFIXES = {name: abi.handler_prefixes for name, abi in ABIS.items()}
NAME_PREFIXES = ("__x64_sys_", "__ia32_compat_sys_", "__ia32_sys_", "__x32_compat_sys_", "__x64_compat_sys_",
                 "__se_compat_sys_", "__do_compat_sys_", "__se_sys_", "__do_sys_", "compat_sys_", "sys_")
WRAPPER_PREFIXES = ("__x64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__x32_compat_sys_", "__se_sys_",
                    "__se_compat_sys_")
THIN_WRAPPER = 0x80
CHAIN_WINDOW = 0x200
MAX_STUB = 0x40  # -ENOSYS stubs are a few instructions  # bytes of a handler searched for the call to its implementation
IGNORED_CALLEES = ("__fentry__", "__x86_return_thunk", "__x86_indirect_thunk", "__stack_chk_fail",
                   "__sanitizer_cov", "__might_", "might_", "__cond_resched", "__SCT__", "__cfi_", "__ubsan",
                   "__kasan", "__kcsan", "__x86_indirect_call_thunk", "__x86_indirect_jump_thunk",
                   "srso_", "entry_untrain_ret", "__warn_printk", "warn_", "__get_user_", "__put_user_",
                   "copy_from_user", "_copy_from_user", "_copy_to_user", "__check_object_size", "rcu_")
ENOSYS_IMMS = ("0xffffffffffffffda", "-0x26", "0xffffffda")
MAX_CHAIN = 3


def syscall_name(symbol: str | None) -> str | None:
    if not symbol:
        return None
    for p in NAME_PREFIXES:
        if symbol.startswith(p):
            return symbol[len(p):]
    return None


class HandlerInfo:
    def __init__(self, image: KernelImage, code: Code) -> None:
        self.image = image
        self.code = code
        self._enosys: dict[int, bool] = {}
        self._chain: dict[int, list[tuple[str | None, int]]] = {}
        self._meta: dict[str, list[dict]] | None = None

    # ---- -ENOSYS stubs ------------------------------------------------------------------------------------------
    def returns_enosys(self, addr: int, depth: int = 0) -> bool:
        """sys_ni_syscall, its aliases, COND_SYSCALL weak stubs: `mov $-ENOSYS,%rax; ret` (or jmp to the return
        thunk), or a jump/call to such a function, after an optional endbr64 / `call __fentry__`."""
        if addr in self._enosys:
            return self._enosys[addr]
        self._enosys[addr] = False  # cycles
        result = False
        lo, hi = self.image.function_range(addr)
        if hi - lo > MAX_STUB and self.image.symbols_from == "symtab":
            return False  # a real body, not a stub (kallsyms sizes reach the next symbol: the pattern decides)
        insns = self.code.decode_lite(lo, min(hi, lo + 64))
        saw_enosys = False
        for i, (a, _s, m, op) in enumerate(insns[:8]):
            if m in ("endbr64", "nop", "push", "pop") or (m == "call" and i == 0) or m.startswith("nop"):
                continue
            if m in ("sub", "add") and op.startswith("rsp,"):
                continue
            if m == "call" and self._name(op) == "__fentry__":
                continue
            if m == "mov" and op.split(",")[0].strip() in ("rax", "eax") and op.split(",")[-1].strip() in ENOSYS_IMMS:
                saw_enosys = True
                continue
            if m in ("ret", "retq"):
                result = saw_enosys
                break
            if m == "jmp" and op.startswith("0x"):
                t = int(op, 16)
                name = self.image.best_name(t) or ""
                if name.startswith("__x86_return_thunk") or name.startswith("srso_return_thunk"):
                    result = saw_enosys
                elif depth < 2 and not saw_enosys:
                    result = self.returns_enosys(t, depth + 1)
                break
            if m == "call" and op.startswith("0x") and depth < 2 and not saw_enosys:
                t = int(op, 16)
                if self.returns_enosys(t, depth + 1):
                    rest = [x[2] for x in insns[i + 1:i + 3]]
                    result = bool(rest) and (rest[0] in ("ret", "retq", "jmp", "leave", "pop"))
                break
            break
        self._enosys[addr] = result
        return result

    def _name(self, op: str) -> str | None:
        if op.startswith("0x"):
            try:
                return self.image.best_name(int(op, 16))
            except ValueError:
                return None
        return None

    # ---- implementation -----------------------------------------------------------------------------------------
    def chain(self, addr: int, name: str | None) -> list[tuple[str | None, int]]:
        """handler -> (__se_sys_x -> __do_sys_x ->) implementation, following direct calls/tail jumps."""
        if addr in self._chain:
            return self._chain[addr]
        out: list[tuple[str | None, int]] = []
        cur = addr
        seen = {addr}
        for _ in range(MAX_CHAIN):
            lo, hi = self.image.function_range(cur)
            callees = []
            for _at, _how, t in self.code.direct_targets(lo, min(hi, lo + CHAIN_WINDOW)):
                tn = self.image.best_name(t)
                if t in seen or not tn or tn.startswith(IGNORED_CALLEES):
                    continue
                if t not in [c[1] for c in callees]:
                    callees.append((tn, t))
            if not callees:
                break
            pick = None
            if name:
                pick = next((c for c in callees if c[0].startswith(("__se_", "__do_")) and name in c[0]), None)
                pick = pick or next((c for c in callees if name in c[0]), None)
            if pick is None and hi - lo <= THIN_WRAPPER:
                # a thin wrapper (no body inlined): the implementation is what it calls, when the callee is named
                # like one; the first callee of a small handler is as often a helper (rcu, locks), so no guess
                pick = next((c for c in callees
                             if c[0].startswith(("ksys_", "do_", "__do_", "__sys_", "vfs_", "kernel_"))), None)
                pick = pick or _named_like(name, callees)
            if pick is None:
                break  # the body is inlined into this function: it is the implementation
            out.append(pick)
            seen.add(pick[1])
            if not pick[0].startswith(WRAPPER_PREFIXES):
                break
            cur = pick[1]
        self._chain[addr] = out
        return out

    # ---- signatures ---------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, list[dict]]:
        """{"sys_write": [{"type": "unsigned int", "name": "fd"}, ...]} from the ftrace syscall metadata
        (struct syscall_metadata {name; syscall_nr; nb_args; types; args; ...}) between
        __start_syscalls_metadata and __stop_syscalls_metadata, else from every __syscall_meta_* object."""
        if self._meta is not None:
            return self._meta
        image = self.image
        mem = image.memory
        out: dict[str, list[dict]] = {}
        ptrs: list[int] = []
        start, stop = image.address_of("__start_syscalls_metadata"), image.address_of("__stop_syscalls_metadata")
        if start and stop and 0 < stop - start < 1 << 20:
            raw = mem.read(start, stop - start) or b""
            ptrs = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw) - 7, 8)]
        else:
            ptrs = [s.address for s in image.symbols_with_prefix("__syscall_meta_")]
        if not ptrs:  # no data symbols (CONFIG_KALLSYMS_ALL off): the structures themselves, by their shape
            ptrs = metadata_by_shape(image)
        for p in ptrs:
            # nb_args is an int; newer kernels pack flags in the bytes beside its low 7 bits
            name_p, raw_nb = mem.read_u64(p), mem.read(p + 12, 1)
            nb = raw_nb[0] & 0x7F if raw_nb else None
            types_p, args_p = mem.read_u64(p + 16), mem.read_u64(p + 24)
            if name_p is None or nb is None or nb > 6:
                continue
            name = mem.read_cstring(name_p, 128)
            if not name:
                continue
            sig = []
            for i in range(nb):
                tp = mem.read_u64(types_p + 8 * i) if types_p else None
                ap = mem.read_u64(args_p + 8 * i) if args_p else None
                t = mem.read_cstring(tp, 128) if tp else None
                a = mem.read_cstring(ap, 128) if ap else None
                if t is None or a is None:
                    sig = None
                    break
                sig.append({"type": t, "name": a})
            if sig is not None:
                out.setdefault(name, sig)
        self._meta = out
        return out

    def signature(self, symbol: str | None) -> list[dict] | None:
        """Native handlers only: compat entry points (COMPAT_SYSCALL_DEFINE) have no ftrace metadata, and the
        native one's types would be wrong for them."""
        if not symbol or "compat_sys_" in symbol:
            return None
        name = syscall_name(symbol)
        if name is None:
            return None
        return self.metadata().get("sys_" + name)


def metadata_by_shape(image) -> list[int]:
    """Addresses of struct syscall_metadata found without symbols: 8-aligned, a pointer to a "sys_*" string, then
    syscall_nr == -1 (it is set at boot), then nb_args 0..6. The string addresses are collected first (C-speed
    finds), then every data word is looked up in that set once; metadata() then reads and checks each."""
    mem = image.memory
    names: set[int] = set()
    for r in mem.regions:
        p = r.data.find(b"sys_")  # not only after a NUL: the linker shares "sys_close" with "ksys_close"'s tail
        while p >= 0:
            names.add(r.start + p)
            p = r.data.find(b"sys_", p + 1)
    out = []
    if not names:
        return out
    minus_one = 0xFFFFFFFF
    for r in mem.regions:
        if r.executable:
            continue
        skip = (-r.start) % 8
        words = array("Q")
        words.frombytes(r.data[skip:len(r.data) - (len(r.data) - skip) % 8])
        hits = names.intersection(words)
        if not hits:
            continue
        for i, w in enumerate(words):
            if w in hits and i + 1 < len(words) and words[i + 1] & 0xFFFFFFFF == minus_one \
                    and (words[i + 1] >> 32) & 0x7F <= 6:
                out.append(r.start + skip + 8 * i)
    return out


def _named_like(name: str | None, callees: list[tuple[str, int]]) -> tuple[str, int] | None:
    """The callee whose name starts like the syscall's (process_vm_readv -> process_vm_rw), at least one whole
    word of it: a shared prefix says "implementation"; an unrelated first callee (__rcu_read_lock) does not."""
    if not name:
        return None
    first = name.split("_")[0]
    best, best_len = None, 0
    for c in callees:
        cn = c[0].lstrip("_")
        n = len(os.path.commonprefix([cn, name]))
        if n >= max(len(first), 4) and n > best_len:
            best, best_len = c, n
    return best
