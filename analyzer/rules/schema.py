"""The JSON Schema (draft 7) every rule file must satisfy, checked before a rule is compiled.

A rule file holds one rule:

    rule:
      meta: {id, name, severity, scope, description, tags, references, message, examples, ...}
      match: EXPRESSION

EXPRESSION is a one-key mapping: a logic node (`and`, `or`, `not`, `N or more`, `site`, `count`) or a feature
(`syscall`, `number`, `arg`, `register`, `instruction`, `abi`, `location`, `section`, `function`, `kernel`,
`binary`). The reference is docs/rules.md.
"""
from __future__ import annotations

from ..model import SEVERITIES
from ..syscalls.abi import KINDS

SCOPES = ("site", "binary")
LOCATIONS = ("application", "libc", "runtime", "unknown")
STATUSES = ("resolved", "partial", "unresolved")

_int_or_const = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}]}
_one_or_many_value = {"anyOf": [_int_or_const, {"type": "array", "minItems": 1, "items": _int_or_const}]}


def _one_or_many(item: dict) -> dict:
    return {"anyOf": [item, {"type": "array", "minItems": 1, "items": item}]}


_status = _one_or_many({"enum": list(STATUSES)})
_predicates = {
    "equals": _one_or_many_value,
    "bits-set": _one_or_many_value,
    "bits-clear": _one_or_many_value,
    "any-bits": _one_or_many_value,
    "status": _status,
    "unknown": {"type": "boolean"},
    "reason": _one_or_many({"type": "string", "minLength": 3}),
}

RULE_SCHEMA: dict = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "sysscan rule",
    "type": "object",
    "required": ["rule"],
    "additionalProperties": False,
    "properties": {
        "rule": {
            "type": "object",
            "required": ["meta", "match"],
            "additionalProperties": False,
            "properties": {
                "meta": {"$ref": "#/definitions/meta"},
                "match": {"$ref": "#/definitions/expr"},
            },
        }
    },
    "definitions": {
        "meta": {
            "type": "object",
            "required": ["id", "name", "severity", "scope", "description", "examples"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,63}$"},
                "name": {"type": "string", "minLength": 3, "maxLength": 120},
                "severity": {"enum": list(SEVERITIES)},
                "scope": {"enum": list(SCOPES)},
                "surface": {"type": "boolean"},
                "description": {"type": "string", "minLength": 10},
                "message": {"type": "string", "minLength": 3},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"}},
                "references": {"type": "array", "items": {"type": "string", "minLength": 3}},
                "attack": {"type": "array", "items": {"type": "string", "pattern": "^T[0-9]{4}(\\.[0-9]{3})?$"}},
                "cwe": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                "examples": {
                    "type": "object",
                    "required": ["positive", "negative"],
                    "additionalProperties": False,
                    "properties": {
                        "positive": {"type": "array", "items": {"$ref": "#/definitions/example"}},
                        "negative": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/example"}},
                        "no-positive-because": {"type": "string", "minLength": 10},
                    },
                },
            },
        },
        "example": {
            "type": "object",
            "required": ["file"],
            "additionalProperties": False,
            "properties": {
                "file": {"type": "string", "pattern": "^[A-Za-z0-9_./-]+$"},
                "functions": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
        },
        "exprs": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/expr"}},
        "expr": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "patternProperties": {"^[1-9][0-9]* or more$": {"$ref": "#/definitions/exprs"}},
            "additionalProperties": False,
            "properties": {
                "and": {"$ref": "#/definitions/exprs"},
                "or": {"$ref": "#/definitions/exprs"},
                "not": {"$ref": "#/definitions/expr"},
                "site": {"$ref": "#/definitions/expr"},
                "count": {
                    "type": "object", "required": ["match"], "additionalProperties": False,
                    "properties": {"match": {"$ref": "#/definitions/expr"},
                                   "min": {"type": "integer", "minimum": 0},
                                   "max": {"type": "integer", "minimum": 0}},
                },
                "syscall": _one_or_many({"anyOf": [{"type": "string", "pattern": "^[a-z0-9_]+$"},
                                                   {"type": "integer", "minimum": 0}]}),
                "number": {
                    "type": "object", "minProperties": 1, "additionalProperties": False,
                    "properties": {"status": _status, "in-table": {"type": "boolean"}},
                },
                "arg": {
                    "type": "object", "additionalProperties": False,
                    "oneOf": [{"required": ["index"]}, {"required": ["name"]}],
                    "properties": {"index": {"type": "integer", "minimum": 0, "maximum": 5},
                                   "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"}, **_predicates},
                },
                "register": {
                    "type": "object", "required": ["name"], "additionalProperties": False,
                    "properties": {"name": {"enum": ["rax", "rdi", "rsi", "rdx", "r10", "r8", "r9", "rcx",
                                                     "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp"]},
                                   **_predicates},
                },
                "instruction": _one_or_many({"enum": list(KINDS)}),
                "abi": _one_or_many({"enum": ["x86_64", "i386", "x32"]}),
                "location": _one_or_many({"enum": list(LOCATIONS)}),
                "section": _one_or_many({"type": "string", "minLength": 1}),
                "function": _one_or_many({"type": "string", "minLength": 1}),
                "kernel": {
                    "type": "object", "minProperties": 1, "additionalProperties": False,
                    "properties": {"enosys": {"type": "boolean"}, "disagreement": {"type": "boolean"},
                                   "handler": _one_or_many({"type": "string", "minLength": 1})},
                },
                "binary": {
                    "type": "object", "minProperties": 1, "additionalProperties": False,
                    "properties": {"bits": {"enum": [32, 64]}, "static": {"type": "boolean"},
                                   "pie": {"type": "boolean"}, "stripped": {"type": "boolean"},
                                   "arch": {"enum": ["x86_64", "i386"]},
                                   "elf_type": {"enum": ["executable", "pie", "shared-object", "relocatable",
                                                         "core"]}},
                },
            },
        },
    },
}
