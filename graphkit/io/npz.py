"""Reading .npz archives of named arrays (inputs, training data) safely and with one-line errors.

Nothing is unpickled (allow_pickle=False), arrays keep their dtype, and every failure names the
file and, where there is one, the array: a bare .npy, a folder, a truncated zip, an array of
Python objects.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from graphkit.errors import FormatError, GraphkitError


def read_npz(
    path: str | os.PathLike[str], error: type[GraphkitError] = FormatError,
    what: str = "data file",
) -> dict[str, np.ndarray]:
    """The archive's arrays by name; `error` (a GraphkitError class) for anything unreadable."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise error(f"{path}: not an .npz archive of named arrays") from None
    if not isinstance(archive, Mapping):  # a bare .npy array
        raise error(f"{path}: not an .npz archive of named arrays (a single .npy array?)")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise error(
                        f"{path}: array {name!r} holds Python objects, not numbers"
                    ) from None
                raise error(f"{path}: array {name!r} cannot be read: {exc}") from None
            except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
                raise error(f"{path}: array {name!r} cannot be read: {exc}") from None
    return arrays
