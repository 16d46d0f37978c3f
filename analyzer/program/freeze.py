"""A program model saved and loaded back as the same interface (capa's freeze/ is the shape): `dumps(lb)` writes
what the stages read of one object — its identity, executable ranges, functions, symbols, imports (PLT/GOT),
exports, needed libraries, data in code, what is address-taken — as JSON; `loads(text)` gives back a LoadedBinary
that answers the same questions (function_at, symbolize, anchor_before, address_taken …).

The bytes are not saved: a frozen model answers every question about functions and names, and a stage that needs
to decode passes the object's memory back in (`loads(text, memory)`, e.g. from elf/dso.read_dso). Cached per object
by content hash in the derived cache (analyzer/cache.py): `cached(lb)` / `load_cached(sha256)`, so a library
shared by many programs is modelled once per machine.
"""
from __future__ import annotations

import json

from ..elf.memory import Memory
from .calls import call_index
from .model import ExecRange, Function, LoadedBinary

FORMAT = 2
KIND = "program-model"
IDENTITY = ("path", "size", "sha256", "arch", "bits", "elf_type", "static", "stripped", "interpreter", "build_id",
            "entry", "debug_file", "debug_sha256")


def to_doc(lb: LoadedBinary) -> dict:
    """The model as a JSON-able document (addresses as integers; every list sorted)."""
    refs = call_index(lb).address_taken_all()
    return {
        "format": FORMAT,
        **{k: getattr(lb, k) for k in IDENTITY},
        "exec_ranges": [[r.name, r.start, r.end, r.offset] for r in lb.exec_ranges],
        "functions": [[f.start, f.end, f.name, f.source] for f in lb.functions],
        "symbols": sorted([a, n] for a, n in lb.symbols.items()),
        "imports": sorted([a, n] for a, n in lb.imports.items()),
        "exports": sorted([n, a] for n, a in lb.exports.items()),
        "needed": list(lb.needed),
        "notes": list(lb.notes),
        "data_in_code": [list(d) for d in lb.data_in_code],
        "address_taken": sorted([a, why] for a, why in refs.items()),
    }


def from_doc(doc: dict, memory: Memory | None = None) -> LoadedBinary:
    """The model back from `to_doc`'s document. ValueError when the document is not one."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a frozen program model of this format")
    lb = LoadedBinary(
        **{k: doc[k] for k in IDENTITY},
        memory=memory if memory is not None else Memory([]),
        exec_ranges=[ExecRange(n, s, e, o) for n, s, e, o in doc["exec_ranges"]],
        functions=[Function(s, e, n, src, doc["sha256"]) for s, e, n, src in doc["functions"]],
        symbols={a: n for a, n in doc["symbols"]},
        imports={a: n for a, n in doc["imports"]},
        exports={n: a for n, a in doc["exports"]},
        needed=list(doc["needed"]),
        notes=list(doc["notes"]),
        data_in_code=[tuple(d) for d in doc["data_in_code"]],
    )
    call_index(lb).preset_address_taken({a: why for a, why in doc["address_taken"]})
    return lb


def dumps(lb: LoadedBinary) -> str:
    return json.dumps(to_doc(lb), sort_keys=True, separators=(",", ":"))


def loads(text: str, memory: Memory | None = None) -> LoadedBinary:
    return from_doc(json.loads(text), memory)


def cached(lb: LoadedBinary) -> None:
    """Keep this object's model in the derived cache, under its key (content hash, and its debug file's)."""
    from ..cache import derived_put

    derived_put(KIND, lb.key, to_doc(lb))


def load_cached(sha256: str, memory: Memory | None = None) -> LoadedBinary | None:
    """The cached model of the object with this key (LoadedBinary.key: its content hash when it has no debug
    file), or None."""
    from ..cache import derived_get

    doc = derived_get(KIND, sha256)
    try:
        return None if doc is None else from_doc(doc, memory)
    except (ValueError, KeyError, TypeError):
        return None
