"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from graphkit.errors import GraphkitError


def check_writable(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The target and its folder, or a GraphkitError when the file cannot be written there
    (a missing folder, a folder in the way): callers check before long work, not after."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise GraphkitError(f"cannot write {target}: folder {directory} does not exist")
    if target.is_dir():
        raise GraphkitError(f"cannot write {target}: it is a folder")
    return target, directory


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over."""
    target, directory = check_writable(path)
    try:
        handle, temporary = _open_temporary(directory, target.name)
    except OSError as exc:
        raise GraphkitError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            if target.exists():  # keep the permissions of the file replaced
                os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise GraphkitError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise


def _open_temporary(directory: Path, name: str) -> tuple[int, str]:
    """Create a new file beside the target, with the permissions open() gives (mode 0o666 less
    the umask; tempfile.mkstemp would make it 0o600, unreadable to anyone else once renamed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = str(directory / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")
