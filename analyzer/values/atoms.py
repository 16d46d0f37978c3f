"""The abstract values the data-flow engine tracks.

A register holds a *set* of atoms: constants (ints) and symbolic atoms that say where an unknown value came from.
Sets let both arms of a branch survive; symbolic atoms keep the reason a value is unresolved, and the ones that
name a function's inputs (EntryReg, EntryStack) are what inter-procedural analysis substitutes at each caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

MAX_ATOMS = 32
"""Above this many possibilities a value is treated as unknown: loops would otherwise never converge."""


@dataclass(frozen=True, order=True)
class EntryReg:
    """The value a register had when the function was entered (a parameter, for ABI argument registers)."""

    reg: str


@dataclass(frozen=True, order=True)
class EntryStack:
    """The word at entry_sp + offset in the caller's frame (offset 0 is the return address; above it, stack args)."""

    offset: int


@dataclass(frozen=True, order=True)
class StackPtr:
    """An address inside the current frame: entry_sp + offset. Lets spills and reloads be matched."""

    offset: int


@dataclass(frozen=True, order=True)
class Unknown:
    """A value we cannot know statically, with the reason a user should read."""

    reason: str


Atom = Union[int, EntryReg, EntryStack, StackPtr, Unknown]
Vals = frozenset  # frozenset[Atom]

TOO_MANY = Unknown("too many possible values")


def const(v: int, mask: int) -> Vals:
    return frozenset((v & mask,))


def unknown(reason: str) -> Vals:
    return frozenset((Unknown(reason),))


def union(a: Vals, b: Vals) -> Vals:
    if a is b:
        return a
    if TOO_MANY in a or TOO_MANY in b:
        return frozenset((TOO_MANY,))
    u = a | b
    if len(u) > MAX_ATOMS:
        return frozenset((TOO_MANY,))
    return u


def constants(v: Vals) -> list[int]:
    return sorted(x for x in v if isinstance(x, int))


def symbolic(v: Vals) -> list:
    return sorted((x for x in v if not isinstance(x, int)), key=lambda a: (type(a).__name__, a))


PARAM_REGS_64 = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")


def describe(atom, function: str, bits: int) -> str:
    """Human reason for a symbolic atom (the text a report shows for an unresolved value)."""
    if isinstance(atom, Unknown):
        return atom.reason
    if isinstance(atom, EntryReg):
        if bits == 64 and atom.reg in PARAM_REGS_64:
            return f"from parameter {atom.reg} of {function}"
        reg = atom.reg if bits == 64 else "e" + atom.reg[1:]
        return f"from register {reg} at entry of {function}"
    if isinstance(atom, EntryStack):
        if atom.offset == 0:
            return f"the return address of {function}"
        if bits == 32 and atom.offset % 4 == 0:
            return f"from stack parameter {atom.offset // 4} of {function}"
        return f"from the caller's stack at [sp+{atom.offset:#x}] on entry to {function}"
    if isinstance(atom, StackPtr):
        return f"a stack address in {function}"
    return str(atom)
