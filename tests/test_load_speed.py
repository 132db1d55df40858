"""Shortcuts that make loading, validating and planning big graphs fast give what the long
way gives: young objects aged after a pause."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from graphkit.gcpause import gc_paused

# -- young objects aged after a pause ---------------------------------------------------------


@pytest.fixture
def collector_on() -> Any:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_what_a_pause_made_skips_the_young_collection(collector_on: None) -> None:
    gc.collect()
    with gc_paused():
        kept = [[i] for i in range(50_000)]
    assert gc.get_count()[0] < 1_000, "the next allocation would traverse them all"
    assert gc.get_freeze_count() == 0 and len(kept) == 50_000


def test_cycles_made_in_a_pause_are_still_collected(collector_on: None) -> None:
    class Cyclic:
        pass

    with gc_paused():
        first = Cyclic()
        first.self = first  # type: ignore[attr-defined]
    gc.collect()  # (whatever `first` was before)
    seen = gc.get_objects()
    assert any(obj is first for obj in seen)
    del first, seen
    assert gc.collect() >= 1


def test_objects_the_process_froze_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with gc_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
