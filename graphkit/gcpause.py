"""Pausing Python's cyclic garbage collector while a graph is built or checked.

Loading a graph creates millions of container objects (models, lists, dicts) that all stay
alive, and none of them is garbage. CPython runs a full collection whenever the objects that
survived since the last one exceed a quarter of all long-lived objects, and each full collection
traverses every object in the process: so from about 100,000 nodes, loading or validating
spends a growing share of its time collecting nothing, and its time per node grows with the
graph. Reference counting still frees everything while the collector is paused; only reference
cycles made meanwhile wait for the next collection after the pause.

When the outermost pause ends, the objects it made are moved to the oldest generation in
constant time (`gc.freeze()` then at once `gc.unfreeze()`, which splices the generations'
lists): else the first allocation after the pause runs a young collection that traverses every
one of them, only to find them alive (measured: 80 ms after loading the 100,000-node chain, a
sixth of loading it). Nothing stays frozen, so cyclic garbage that happened to be young then is
found by the next full collection instead of a young one. Skipped when the process keeps frozen
objects of its own (`gc.get_freeze_count()`), which `gc.unfreeze()` would release.

Not `gc.freeze()` alone after a load: it affects the whole process (cyclic garbage alive at that
moment is never collected), and measured on the 100,000 and 1,000,000-node DAGs it did not make
validating, planning or the first run faster (once a collection has moved the graph's objects
to the oldest generation, full collections are rare again).
"""

from __future__ import annotations

import gc
import threading
from types import TracebackType

_lock = threading.Lock()
_depth = 0
_was_enabled = False


class _Paused:
    """The collector off from the outermost `with` to its end, then as it was before."""

    def __enter__(self) -> None:
        global _depth, _was_enabled
        with _lock:
            if _depth == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _depth += 1

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                _age_young_objects()
                gc.enable()


def _age_young_objects() -> None:
    """Every tracked object into the oldest generation, without traversing any (see above)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def gc_paused() -> _Paused:
    """`with gc_paused():` runs its block with the cyclic collector off.

    Nested and concurrent uses (threads) share one pause: the outermost exit restores the state
    found by the outermost entry, also when the block raises.
    """
    return _Paused()
