"""Writing an output file the way a user expects: atomically for a regular file (a reader never sees half a
report), but in place for anything else — `-o /dev/null`, `-o /dev/stdout` or a FIFO must stay what they are
(an atomic rename over /dev/null would replace the device with a regular file)."""
from __future__ import annotations

import os
import stat


TMP_PREFIX = ".sysscan-"


def write_text(path: str, text: str, *, tmp_prefix: str = TMP_PREFIX, private: bool = False) -> None:
    """Write `text` (UTF-8) to `path`; raises OSError (callers turn it into their one-line error).

    `tmp_prefix` names the temporary file of an atomic write, so that a caller can recognise (and clean up) the
    ones a killed writer leaves behind (the result cache does). `private`: a new file is readable by its owner only
    (0600: what a scan found in someone's binaries is theirs; the result cache uses it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    import tempfile  # here: importing it costs ~10 ms, and a warm run never writes a cache entry

    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix, dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # keep the mode of the file we replace
        elif not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a new report is readable like any new file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
