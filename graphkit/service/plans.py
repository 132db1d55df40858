"""Compiled plans of stored graph versions, kept in a bounded LRU cache.

Loading canonical JSON, validating it and compiling its plan costs far more than running a
small graph, so each (name, version, sha256) is compiled once and reused by every later infer
and metadata request until it falls out of the cache (`Settings.plan_cache_size` entries).

Every request still reads the version's row from the store (one indexed query, in a worker
thread): that resolves "latest", sees deletions at once, and works unchanged when several server
processes share one database. The sha256 in the key makes a cached plan match its stored bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import graphkit
from graphkit.errors import GraphkitError
from graphkit.model import FLOAT_DTYPES, ValueInfo
from graphkit.plan import Plan
from graphkit.service.store import Store, VersionInfo
from graphkit.service.tensors import OIPError, v2_datatype, v2_shape


@dataclass
class Model:
    """One stored graph version, validated and compiled, ready to run."""

    info: VersionInfo
    plan: Plan
    inputs: dict[str, ValueInfo]
    outputs: list[ValueInfo]
    _free: list[Plan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def running(self) -> Iterator[Plan]:
        """A plan no other thread is running: graphkit.execute updates a plan's run statistics
        and swaps in generated code without a lock, so one plan must not run in two threads at
        once. Concurrent runs of one model take extra plans compiled from the validated graph
        (`plan_for(ResolvedGraph)`: no loading or validating), kept for reuse; so a run that
        timed out and still works in its thread holds up no one else."""
        with self._lock:
            plan = self._free.pop() if self._free else None
        if plan is None:
            plan = graphkit.plan_for(self.plan.resolved)
        try:
            yield plan
        finally:
            with self._lock:
                self._free.append(plan)

    def tensors(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Inputs and outputs as V2 metadata tensors (datatype, shape with -1 for symbolic)."""
        shapes = self.plan.resolved.shapes
        default = self._output_default()
        inputs = [{"name": info.name, "datatype": v2_datatype(info.dtype),
                   "shape": v2_shape(info.shape)} for info in self.inputs.values()]
        outputs = []
        for info in self.outputs:
            shape = info.shape if info.shape is not None else shapes.get(info.name)
            datatype = v2_datatype(info.dtype) if info.dtype is not None else default
            outputs.append({"name": info.name, "datatype": datatype,
                            "shape": v2_shape(None if shape is None else list(shape))})
        return inputs, outputs

    def _output_default(self) -> str:
        """An undeclared output's datatype: FP32 when every float input and constant is
        float32, else FP64 (the response always states the dtype actually computed)."""
        dtypes = [info.dtype for info in self.inputs.values()]
        dtypes += [str(array.dtype) for _name, _slot, array in self.plan.constants]
        floats = [d for d in dtypes if d is None or d in FLOAT_DTYPES]
        return "FP32" if floats and all(d == "float32" for d in floats) else "FP64"


class PlanCache:
    """A thread-safe LRU of compiled models keyed by (name, version, sha256).

    Concurrent first requests for one version compile it once: the others wait for it.
    `hits` and `loads` count lookups answered from the cache and compilations made.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.hits = 0
        self.loads = 0
        self._models: OrderedDict[tuple[str, int, str], Model] = OrderedDict()
        self._building: dict[tuple[str, int, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def model(self, store: Store, name: str, version: int | None) -> Model:
        """The compiled model of `name` at `version` (None: latest); blocking (call it from a
        worker thread). Raises the store's NotFound, or OIPError(503) for a stored graph this
        server cannot run (an op whose plugin it lacks)."""
        info, canonical = store.get(name, version)
        key = (info.name, info.version, info.sha256)
        found = self._lookup(key)
        if found is not None:
            return found
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            found = self._lookup(key)
            if found is not None:
                return found
            try:
                model = _compile(info, canonical)
                with self._lock:
                    self._models[key] = model
                    self.loads += 1
                    while len(self._models) > self.size:
                        self._models.popitem(last=False)
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return model

    def _lookup(self, key: tuple[str, int, str]) -> Model | None:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                self.hits += 1
            return model


def _compile(info: VersionInfo, canonical: bytes) -> Model:
    try:
        graph = graphkit.loads(canonical, source=f"{info.name}@{info.version}")
        plan = graphkit.plan_for(graph)
    except GraphkitError as exc:
        raise OIPError(503, f"model {info.name!r} version {info.version} cannot run on this "
                            f"server: {exc}") from None
    model = plan.resolved.model
    return Model(info, plan, {v.name: v for v in model.inputs}, list(model.outputs), [plan])
