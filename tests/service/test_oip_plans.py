"""The plan cache on a real store: one compilation per version, bounded, safe across threads."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest

import graphkit
from graphkit.service.plans import Model, PlanCache
from graphkit.service.store import NotFound, Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRIALS = 6


@pytest.fixture
def store(sqlite_url: str) -> Store:
    opened = Store(sqlite_url)
    opened.check_schema()
    return opened


def add(store: Store, graph: graphkit.Graph, name: str) -> int:
    canonical = graphkit.dumps(graph).encode()
    info, _ = store.add_version(name, canonical, hashlib.sha256(canonical).hexdigest(),
                                len(graph.nodes))
    return info.version


def test_each_version_is_compiled_once_and_the_cache_is_bounded(store: Store) -> None:
    neuron = graphkit.load(EXAMPLES / "sigmoid_neuron.json")
    for description in ("a", "b", "c"):
        add(store, neuron.model_copy(update={"metadata": {"description": description}}), "n")
    cache = PlanCache(size=2)
    first = cache.model(store, "n", 1)
    assert cache.model(store, "n", 1) is first and (cache.loads, cache.hits) == (1, 1)
    assert cache.model(store, "n", None).info.version == 3  # latest
    assert cache.model(store, "n", 3) is cache.model(store, "n", None)
    assert cache.loads == 2 and len(cache) == 2
    cache.model(store, "n", 2)  # evicts the least recently used: version 1
    assert len(cache) == 2
    assert cache.model(store, "n", 1) is not first and cache.loads == 4
    store.delete_version("n", 1)
    with pytest.raises(NotFound):  # a deleted version is gone at once, cached or not
        cache.model(store, "n", 1)


def test_concurrent_first_requests_compile_once(store: Store) -> None:
    add(store, graphkit.load(EXAMPLES / "two_layer_net.json"), "net")
    cache = PlanCache(size=4)
    models = []
    barrier = threading.Barrier(8)

    def first() -> None:
        barrier.wait()
        models.append(cache.model(store, "net", None))

    threads = [threading.Thread(target=first) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.loads == 1 and len({id(m) for m in models}) == 1


def test_one_model_runs_in_many_threads_at_once(store: Store) -> None:
    """graphkit.execute must not run one plan in two threads (it swaps in generated code once
    a plan is hot, racing with runs still interpreted): Model.running hands each concurrent run
    a plan of its own. Several fresh models, since each turns hot once."""
    graph = graphkit.load(EXAMPLES / "two_layer_net.json")
    for trial in range(TRIALS):
        add(store, graph.model_copy(update={"metadata": {"trial": trial}}), "net")
    cache = PlanCache(size=1)
    given = json.loads((EXAMPLES / "two_layer_net.inputs.json").read_text())
    inputs = {"X": np.array(given["X"]), "y": np.array(given["y"])}
    expected = graphkit.execute(graph, inputs, wrt=["X"])
    errors: list[BaseException] = []

    def work(model: Model) -> None:
        try:
            for _ in range(150):
                with model.running() as plan:
                    result = graphkit.execute(plan, inputs, wrt=["X"])
                assert np.array_equal(result.gradients["X"], expected.gradients["X"])
                with model.running() as plan:
                    graphkit.execute(plan, inputs)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    for trial in range(TRIALS):
        model = cache.model(store, "net", trial + 1)
        threads = [threading.Thread(target=work, args=(model,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert 1 <= len(model._free) <= 8  # plans are reused, at most one per concurrent run
