"""Reading a file that may be untrusted: its size is checked before a byte of it is read."""

from __future__ import annotations

import os
from pathlib import Path

from graphkit.errors import FormatError

MAX_FILE_BYTES = 1 << 30
"""Files bigger than this are refused before parsing (GRAPHKIT_MAX_FILE_BYTES overrides)."""


def max_file_bytes() -> int:
    raw = os.environ.get("GRAPHKIT_MAX_FILE_BYTES")
    return int(raw) if raw and raw.isdecimal() else MAX_FILE_BYTES  # isdigit() takes "²"


def read_capped(path: str | os.PathLike[str], what: str) -> bytes:
    """The file's bytes, or a FormatError naming it (missing, a folder, too big, unreadable);
    `what` names what a folder is not, e.g. "a graph file"."""
    source = Path(path)
    try:
        size = source.stat().st_size
        if size > max_file_bytes():
            raise FormatError(f"{source}: {size} bytes is over the limit of {max_file_bytes()}")
        return source.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{source}: is a folder, not {what}") from None
    except OSError as exc:
        raise FormatError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a path with a NUL character
        raise FormatError(f"{source}: cannot read: {exc}") from None
