"""Write scikit-learn's handwritten digits as the .npz files `graphkit train` reads.

    python examples/digits_npz.py [FOLDER]     # default: the current folder

writes FOLDER/digits_train.npz (1438 images) and FOLDER/digits_test.npz (359 held-out images),
each with the arrays `X` (N, 64) float64, the 8x8 pixels scaled to [0, 1], and `y` (N,) int64,
the digit: the names of the inputs of examples/two_layer_digits.json. The data set ships inside
scikit-learn (`pip install 'graphkit-backprop[examples]'`); nothing is downloaded. The split is
the same on every run (a fixed seed).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from graphkit.io.atomic import write_atomic

Arrays = dict[str, np.ndarray]


def digits(seed: int = 0, test_fraction: float = 0.2) -> tuple[Arrays, Arrays]:
    """The digits as (train, test) dicts of X and y, split at random with `seed`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit(
            "error: the digits data set needs scikit-learn: "
            "pip install 'graphkit-backprop[examples]'"
        ) from None
    data = load_digits()
    X = data.data.astype(np.float64) / 16.0  # noqa: N806 - the lecture's names
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    held_out = int(round(len(X) * test_fraction))
    test, train = order[:held_out], order[held_out:]
    return {"X": X[train], "y": y[train]}, {"X": X[test], "y": y[test]}


def save_npz(path: Path, arrays: Arrays) -> None:
    """numpy.savez, written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    train, test = digits()
    for name, arrays in (("digits_train.npz", train), ("digits_test.npz", test)):
        save_npz(folder / name, arrays)
        print(f"wrote {folder / name} ({len(arrays['y'])} images)")


if __name__ == "__main__":
    main()
