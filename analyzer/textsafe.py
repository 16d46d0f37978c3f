"""Make strings that come from an analysed binary safe to show: no terminal control, no text-direction tricks.

Symbol, section and library names, interpreter paths, kernel symbol names — everything read from a file we do not
trust — can carry ESC sequences (`\\x1b[2J` clears the screen, `\\x1b]8;;url\\x1b\\\\` plants a hyperlink, OSC 52
writes the clipboard), carriage returns and backspaces that overwrite what the reader sees, and Unicode bidi
overrides that reorder it ("Trojan Source"). `escape_controls` turns each such character into a visible escape
(`\\x1b`, `\\r`, `\\u202e`); printable text, including markup-looking text such as `[bold]` or `<script>`, is left
alone here — each renderer escapes *its own* syntax (rich `Text`, HTML entities, Markdown backslashes).

`load._text` applies it to every name as the ELF is read; `terminal_safe(report)` is the table renderer's safety
net for strings that reach a report by other routes (kernel symbols, Go pclntab names, rule messages).
"""
from __future__ import annotations

import copy
import dataclasses
import re

# C0 controls except nothing (tab and newline too: a name has no business wrapping a table row), DEL, C1 controls,
# and the Unicode format characters that change how surrounding text is ordered or joined.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _esc(m: re.Match) -> str:
    c = m.group(0)
    if c in _NAMED:
        return _NAMED[c]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


_UNSAFE_KEEP_WS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069"
                             "\ufeff\ufff9-\ufffb]")


def escape_controls(s: str, keep_whitespace: bool = False) -> str:
    """`s` with every control / bidi / invisible-format character replaced by a visible escape. With
    `keep_whitespace`, tab, newline and carriage return stay (string *values* such as a `write` buffer may hold
    them; renderers quote those)."""
    pat = _UNSAFE_KEEP_WS if keep_whitespace else _UNSAFE
    return pat.sub(_esc, s) if pat.search(s) else s


def has_controls(s: str) -> bool:
    return _UNSAFE.search(s) is not None


def terminal_safe(obj, keep_whitespace: bool = False):
    """A copy of a report (or any dataclass / list / dict tree) whose strings are all `escape_controls`-ed.
    Objects without unsafe strings are shared, not copied, so a clean report costs one walk."""
    return _clean(obj, keep_whitespace)


def _clean(obj, ws: bool = False):
    if isinstance(obj, str):
        return escape_controls(obj, ws)
    if isinstance(obj, list):
        out = [_clean(x, ws) for x in obj]
        return obj if all(a is b for a, b in zip(out, obj)) else out
    if isinstance(obj, tuple):
        out = tuple(_clean(x, ws) for x in obj)
        return obj if all(a is b for a, b in zip(out, obj)) else out
    if isinstance(obj, dict):
        items = [(_clean(k, ws), _clean(v, ws)) for k, v in obj.items()]
        same = all(k2 is k and v2 is v for (k2, v2), (k, v) in zip(items, obj.items()))
        return obj if same else dict(items)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changed = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            c = _clean(v, ws)
            if c is not v:
                changed[f.name] = c
        if not changed:
            return obj
        new = copy.copy(obj)
        for k, v in changed.items():
            object.__setattr__(new, k, v)
        return new
    return obj


def num(v: int) -> str:
    """Small numbers in decimal, small negatives signed (-1, AT_FDCWD), the rest in hex."""
    if v >= 0xFFFFFFFFFFFF0000:
        return str(v - (1 << 64))
    if 0xFFFFFF00 <= v <= 0xFFFFFFFF:
        return str(v - (1 << 32))
    return str(v) if v < 4096 else hex(v)
