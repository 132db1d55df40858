"""Value names to slots for big graphs whose nodes read what the node before them wrote.

Validation numbers a graph's values in order (inputs, constants, then each node's outputs) and
finds the slot of every name a node reads. With a dict, a million names cost 300-500 ns each to
insert and 150-700 ns to look up, against 50 and 25 at ten thousand: each probe lands at random
in tens of MB, a cache and TLB miss that a Python loop cannot overlap. Most big graphs are
sequences, though: each node reads inputs, constants (weights) and what the node just before it
wrote. So guess that, check every guess exactly (string equality, reading the names in order),
and prove the names distinct by sorting their hashes with numpy. A graph where one guess fails
goes back to the dict (`resolve_in_order`), after a check of its first nodes that costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain, repeat
from operator import eq

import numpy as np

SEQUENCE_NAMES = 50_000
"""Graphs with fewer names use the dict: below this it is the faster of the two (measured on
the add-mul-tanh chain: equal at 50,000 nodes, 20% slower at 10,000; validation of the
1,000,000-node chain 2.25 us per node against the dict's 2.8)."""

_PROBE = 1_000
"""Nodes whose guesses are checked first: a graph that is no sequence fails here at once."""


class Slots(Mapping[str, int]):
    """Name -> slot for values numbered in order (`names[slot]` is the slot's name).

    Names in `known` (a graph's inputs, constants and last value: what runs ask for) are
    answered from it; the first question about another name builds the full dict, unless
    `known` is `complete` (holds every name) already."""

    __slots__ = ("_names", "_known", "_all")

    def __init__(self, names: list[str], known: dict[str, int], complete: bool = False) -> None:
        self._names = names
        self._known = known
        self._all: dict[str, int] | None = known if complete else None

    def _full(self) -> dict[str, int]:
        if self._all is None:
            self._all = dict(zip(self._names, range(len(self._names)), strict=True))
        return self._all

    def __getitem__(self, name: str) -> int:
        slot = self._known.get(name)
        return slot if slot is not None else self._full()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._known or name in self._full()

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def values(self) -> range:  # type: ignore[override]
        """Every slot, in order (without the full dict: slot i is `names[i]`'s)."""
        return range(len(self._names))

    def __repr__(self) -> str:
        return f"Slots({len(self._names)} names)"


def number_sequence(
    names: list[str], base: int, inputs_of: list[list[str]], out_counts: np.ndarray,
    outputs: list[str],
) -> tuple[Slots, list[tuple[int, ...]]] | None:
    """The slots of a sequence's names (`Slots`, which knows the graph's `outputs` without
    its full dict) and of each node's inputs, if every name a node reads is an input, a
    constant or the last output of the node before it, and no name is given twice; else None
    (then a dict decides, and names what is wrong)."""
    count = len(inputs_of)
    inputs = dict(zip(names[:base], range(base), strict=True))
    if len(inputs) != base or not count:
        return None
    counts = np.fromiter(map(len, inputs_of), np.intp, count)
    last_before = base + np.cumsum(out_counts) - out_counts - 1  # per node
    head = min(count, _PROBE)
    if _guessed(names, inputs, inputs_of[:head], counts[:head], last_before[:head]) is None:
        return None
    found = _guessed(names, inputs, inputs_of, counts, last_before)
    if found is None:
        return None
    hashes = np.fromiter(map(hash, names), np.int64, len(names))
    ordered = np.sort(hashes)
    if (ordered[1:] == ordered[:-1]).any():
        return None  # a name given twice (or two names with one hash: the dict tells)
    known = dict(inputs)
    for name in outputs:  # found by hash in one pass each (a handful of names), then checked
        at = np.flatnonzero(hashes == hash(name)).tolist()
        if len(at) == 1 and names[at[0]] == name:
            known[name] = at[0]
    return Slots(names, known), _split(found, counts, len(names))


def _guessed(
    names: list[str], inputs: dict[str, int], inputs_of: list[list[str]],
    counts: np.ndarray, last_before: np.ndarray,
) -> np.ndarray | None:
    """The slot of every name the nodes read, in order, if each is an input, a constant or
    the previous node's last output (checked exactly, reading the names in order); else None."""
    reads = list(chain.from_iterable(inputs_of))
    found = np.fromiter(map(inputs.get, reads, repeat(-1)), np.intp, len(reads))
    rest = np.flatnonzero(found < 0)
    if rest.size:
        guesses = np.repeat(last_before, counts)[rest]
        if guesses[0] < 0 or not all(map(eq, map(reads.__getitem__, rest.tolist()),
                                          map(names.__getitem__, guesses.tolist()))):
            return None
        found[rest] = guesses
    return found


def _split(found: np.ndarray, counts: np.ndarray, slots: int) -> list[tuple[int, ...]]:
    """`found` cut into one tuple per node (`counts[k]` slots for node k), made by `zip` for
    all nodes of one arity at a time rather than one slice per node; one int object per slot
    (as a dict's values would be), not one per read."""
    shared = list(range(slots)).__getitem__
    starts = np.cumsum(counts) - counts
    tuples: list[tuple[int, ...]] = []
    grouped = []
    for arity in np.flatnonzero(np.bincount(counts)).tolist():  # the arities present
        nodes = np.flatnonzero(counts == arity)
        grouped.append(nodes)
        if arity == 0:
            tuples += [()] * len(nodes)
            continue
        firsts = starts[nodes]
        tuples += zip(*[map(shared, found[firsts + j].tolist()) for j in range(arity)],
                      strict=True)
    where = np.empty(len(counts), np.intp)  # node -> its tuple's index in `tuples`
    where[np.concatenate(grouped)] = np.arange(len(counts))
    return list(map(tuples.__getitem__, where.tolist()))
