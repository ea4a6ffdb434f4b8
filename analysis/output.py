"""Writing an output file (a GIF, a refined sweep) without ever damaging what is there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from analysis.load import AnalysisError


def write_new(out: Path, data: bytes, validate: Callable[[Path], None] | None = None) -> None:
    """Write ``data`` to ``out`` through a temp file beside it, created exclusively (never
    someone else's file), optionally checked by ``validate`` (which raises), then renamed
    over ``out``; the temp file is removed on any failure. OSError -> one-line AnalysisError.
    """
    tmp, created = out.with_name(f".{out.name}.{os.getpid()}.tmp"), False
    if out.is_file() and not out.stat().st_mode & 0o222:  # rename would ignore the mode
        raise AnalysisError(f"{out}: read-only file; not overwritten (make it writable first)")
    try:
        with open(tmp, "xb") as f:  # "x": never someone else's file
            created = True
            f.write(data)
        if validate is not None:
            validate(tmp)
        os.replace(tmp, out)
        created = False
    except OSError as exc:
        raise AnalysisError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        if created:
            tmp.unlink(missing_ok=True)
