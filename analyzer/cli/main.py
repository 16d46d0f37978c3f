"""`sysscan`: picks the command, runs it, and maps every failure to one line on stderr and an exit code. Each command
(cli/scan.py, render.py, kernel.py, rules.py, cache.py) handles its own arguments; nothing here analyses.

Exit codes (README, "Exit codes"): 0 clean, 1 findings at or above --fail-on, 2 usage, 3 input missing/unreadable,
4 not an ELF, 5 corrupt/truncated ELF, 6 unsupported architecture, 7 bad vmlinux, 8 bad rules, 9 bad saved report,
10 a limit (--max-size, --max-memory, --timeout) stopped a file before anything could be reported, 11 a container
image that cannot be read, 70 internal error,
130 interrupted.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import INTERNAL_ERROR_EXIT, SysscanError


def _command(name: str):
    """The command's entry point, imported only when that command runs."""
    if name == "render":
        from .render import cmd_render as cmd
    elif name == "rules":
        from .rules import cmd_rules as cmd
    elif name == "kernel":
        from .kernel import cmd_kernel as cmd
    elif name == "cache":
        from .cache import cmd_cache as cmd
    elif name == "fleet":
        from .fleet import cmd_fleet as cmd
    elif name == "who":
        from .fleet import cmd_who as cmd
    else:
        from .scan import cmd_scan as cmd
    return cmd


SUBCOMMANDS = ("scan", "render", "rules", "kernel", "cache", "fleet", "who")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("SYSSCAN_DEBUG"):
        import warnings

        warnings.simplefilter("ignore")  # library warnings would break "errors are one line on stderr"
    if argv and argv[0] in SUBCOMMANDS:
        cmd, rest = _command(argv[0]), argv[1:]
    else:
        cmd, rest = _command("scan"), argv
    try:
        return cmd(rest)
    except SysscanError as e:
        print(f"sysscan: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sysscan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        except OSError:
            pass
        return 0
    except MemoryError:
        print("sysscan: error: out of memory", file=sys.stderr)
        return INTERNAL_ERROR_EXIT
    except Exception as e:  # a bug in sysscan: one line, not a traceback; SYSSCAN_DEBUG=1 shows it
        if os.environ.get("SYSSCAN_DEBUG"):
            raise
        print(f"sysscan: internal error: {type(e).__name__}: {e} (set SYSSCAN_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return INTERNAL_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
