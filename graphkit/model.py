"""The file format as pydantic models: a graph is plain data, independent of any op registry."""

from __future__ import annotations

import base64
import functools
import math
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

FORMAT_VERSION = 1
"""The newest file format this graphkit reads and the one it writes."""

DType = Literal["float32", "float64", "int32", "int64", "bool"]
FLOAT_DTYPES = ("float32", "float64")

Name = Annotated[str, Field(min_length=1, max_length=256)]
Dim = Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
"""A dimension: a size, or a symbolic name such as "N" that must agree wherever it appears."""

INLINE_LIMIT = 64
"""Tensors with more elements than this are stored as base64 rather than as nested lists."""

_OP_PATTERN = re.compile(
    r"^(?:(?P<domain>[A-Za-z0-9_.\-]+)::)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<version>[0-9]+))?$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _also_a_string(pattern: str | None = None) -> Any:
    """JSON Schema hook: the model may also be written as a string shorthand."""

    def extra(schema: dict[str, Any]) -> None:
        as_object = dict(schema)
        title = as_object.pop("title", None)
        description = as_object.pop("description", None)
        schema.clear()
        string: dict[str, Any] = {"type": "string"}
        if pattern:
            string["pattern"] = pattern
        schema.update({k: v for k, v in (("title", title), ("description", description)) if v})
        schema["anyOf"] = [string, as_object]

    return extra


@functools.lru_cache(maxsize=4096)
def _parse_op(text: str) -> tuple[tuple[str, Any], ...]:
    """`domain::Name@version` as fields; cached, since a big graph names few distinct ops."""
    match = _OP_PATTERN.fullmatch(text)  # not match: its `$` also allows a final "\n"
    if match is None:
        raise ValueError(f"op reference {text!r} is not of the form [domain::]Name[@version]")
    return (("domain", match["domain"] or ""), ("name", match["name"]),
            ("version", int(match["version"] or 1)))


_set_attribute = object.__setattr__
_OP_REFS: dict[tuple[type, str], Any] = {}
_OP_REFS_LIMIT = 4096


class OpRef(_Strict):
    """Which op a node runs: `domain::Name@version`; the built-in domain is the empty string."""

    # Unnamed groups in the schema: `(?P<x>` is Python-only and `(?<x>` is ECMA-only, and JSON
    # Schema validators run the pattern with either engine.
    model_config = ConfigDict(
        json_schema_extra=_also_a_string(re.sub(r"\?P<\w+>", "", _OP_PATTERN.pattern))
    )

    # The same rules as the string form (and OpDef), so that every OpRef can be written as one.
    domain: Annotated[str, Field(max_length=256, pattern=r"^[A-Za-z0-9_.\-]*$")] = ""
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    version: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="wrap")
    @classmethod
    def _from_string(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The string form validates once per distinct string: a big graph names few ops, and
        an OpRef is immutable, so its nodes share one instance."""
        if not isinstance(data, str):
            return handler(data)
        key = (cls, data)
        found = _OP_REFS.get(key)
        if found is None:
            found = handler(dict(_parse_op(data)))
            if len(_OP_REFS) >= _OP_REFS_LIMIT:
                _OP_REFS.clear()
            _OP_REFS[key] = found
        return found

    @model_serializer
    def _to_string(self) -> str:
        return str(self)

    def __str__(self) -> str:
        prefix = f"{self.domain}::" if self.domain else ""
        suffix = f"@{self.version}" if self.version != 1 else ""
        return f"{prefix}{self.name}{suffix}"

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.domain, self.name, self.version)


class ValueInfo(_Strict):
    """A graph input or output: its name, and its dtype and shape where known (None: any).

    An input without a dtype takes arrays as given and turns numbers and lists into float64.
    """

    model_config = ConfigDict(json_schema_extra=_also_a_string())

    name: Name
    dtype: DType | None = None
    shape: list[Dim] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class Tensor(_Strict):
    """A concrete array. Small ones are nested lists (readable); big or non-finite ones base64."""

    dtype: DType = "float64"
    shape: list[Annotated[int, Field(ge=0)]]
    data: JsonValue = None
    base64: str | None = None

    @model_validator(mode="after")
    def _check_payload(self) -> Tensor:
        if (self.data is None) == (self.base64 is None):
            raise ValueError("a tensor needs exactly one of 'data' or 'base64'")
        size = math.prod(self.shape)  # Python ints: np.prod overflows on huge shapes
        if self.base64 is not None:
            expected = size * np.dtype(self.dtype).itemsize
            try:
                raw = base64.b64decode(self.base64, validate=True)
            except ValueError as exc:
                raise ValueError(f"base64 payload is not valid base64: {exc}") from None
            if len(raw) != expected:
                raise ValueError(
                    f"base64 payload has {len(raw)} bytes; shape {self.shape} of {self.dtype} "
                    f"needs {expected}"
                )
        else:
            try:
                with np.errstate(all="ignore"):
                    array = np.asarray(self.data, dtype=self.dtype)
                    given = np.asarray(self.data)
                    exact = self.dtype in FLOAT_DTYPES or bool(np.array_equal(array, given))
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"data is not a {self.dtype} array: {exc}") from None
            if list(array.shape) != list(self.shape):
                raise ValueError(f"data has shape {list(array.shape)}, declared {self.shape}")
            if given.dtype.kind in "US" or not exact:
                raise ValueError(f"data holds values that are not exactly {self.dtype}")
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(
                    f"data holds nan, inf or values out of range for {self.dtype} "
                    "(store non-finite tensors as base64)"
                )
        return self

    def to_numpy(self) -> np.ndarray:
        """Decode into a new numpy array of the declared dtype and shape."""
        if self.base64 is not None:
            raw = base64.b64decode(self.base64)
            flat = np.frombuffer(raw, dtype=np.dtype(self.dtype).newbyteorder("<"))
            return flat.astype(self.dtype).reshape(self.shape)
        return np.asarray(self.data, dtype=self.dtype).reshape(self.shape)

    @classmethod
    def from_numpy(cls, value: Any, dtype: str | None = None) -> Tensor:
        """Encode an array (or number); the encoding is chosen from its size, deterministically."""
        array = np.asarray(value, dtype=dtype)
        name = str(array.dtype)
        if name not in DType.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"dtype {name} is not supported (one of {', '.join(DType.__args__)})")  # type: ignore[attr-defined]
        shape = list(array.shape)
        finite = array.dtype.kind != "f" or bool(np.isfinite(array).all())
        # Nested lists lose the shape when a dimension other than the last is 0: [] for (0, 3).
        if array.size <= INLINE_LIMIT and finite and 0 not in shape[:-1]:
            return cls(dtype=name, shape=shape, data=array.tolist())
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        return cls(dtype=name, shape=shape, base64=base64.b64encode(raw).decode("ascii"))


class Constant(Tensor):
    """A named tensor stored in the graph; `trainable` marks a parameter an optimiser updates."""

    name: Name
    trainable: StrictBool = False


def _name_optional(schema: dict[str, Any]) -> None:
    """`name` may be left out (it defaults to the first output's name), and has no default of
    its own: the "" the model holds until its validator fills it in is not a valid name."""
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    schema["properties"]["name"].pop("default", None)


class Node(_Strict):
    """One gate: an op applied to named input values, defining named output values (SSA).

    Its name defaults to the name of its first output.
    """

    model_config = ConfigDict(json_schema_extra=_name_optional)

    # "" until `_default_name` fills it in; an explicit "" is refused (too short)
    name: Name = ""
    op: OpRef
    inputs: list[Annotated[str, Field(max_length=256)]] = []
    outputs: list[Name] = Field(min_length=1)
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_name(self) -> Node:
        """An "after" validator, not a "before" one: a "before" validator makes pydantic turn
        every node of a JSON document into Python objects first and validate those again.

        Also swaps the node's set of given fields for a shared one (`_shared_fields`)."""
        fields = self.__pydantic_fields_set__
        if "name" not in fields:
            self.__dict__["name"] = self.outputs[0]  # a valid Name: outputs are Names
            fields.add("name")
        _set_attribute(self, "__pydantic_fields_set__", _shared_fields(fields))
        return self


class _SharedFields(set):  # type: ignore[type-arg]
    """One set of given field names (`model_fields_set`) for many nodes: a 5-name set takes
    472 bytes, a third of a loaded node. Frozen models never change theirs (pydantic copies
    it first, in `model_copy`); a change would show in every node, so this one refuses any,
    and its copies are plain sets."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a node's fields set is shared between nodes: copy it to change it")

    add = discard = remove = pop = clear = update = _refuse
    intersection_update = difference_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse  # type: ignore[assignment]

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (set, (list(self),))


_SHARED_FIELDS: dict[frozenset[str], _SharedFields] = {}


def _shared_fields(fields: set[str]) -> set[str]:
    """The shared set equal to `fields` (of Node's field names: at most 32 of them)."""
    key = frozenset(fields)
    shared = _SHARED_FIELDS.get(key)
    if shared is None:
        shared = _SHARED_FIELDS.setdefault(key, _SharedFields(key))
    return shared


_ALL_FIELDS = _shared_fields(set(Node.model_fields))
_new_object = object.__new__
_CONSTRUCT_BY_HAND = (Node.__pydantic_post_init__ is None and not Node.__private_attributes__
                      and Node.model_config.get("extra") != "allow")


def trusted_node(
    name: str, op: OpRef, inputs: list[str], outputs: list[str], attributes: dict[str, Any]
) -> Node:
    """A Node built without validation, for loaders that have checked every part themselves:
    names of 1 to 256 characters (inputs may be ""), at least one output, an OpRef, attributes
    that passed as `dict[str, JsonValue]`; the lists and dict become the node's own.

    What pydantic's `model_construct` does, without its per-field search for aliases and
    defaults, which makes it slower than validating; a test checks both give equal nodes.
    """
    if not _CONSTRUCT_BY_HAND:
        return Node.model_construct(name=name, op=op, inputs=inputs, outputs=outputs,
                                    attributes=attributes)
    node = _new_object(Node)
    _set_attribute(node, "__dict__", {"name": name, "op": op, "inputs": inputs,
                                      "outputs": outputs, "attributes": attributes})
    _set_attribute(node, "__pydantic_fields_set__", _ALL_FIELDS)
    _set_attribute(node, "__pydantic_extra__", None)
    _set_attribute(node, "__pydantic_private__", None)
    return node


class Graph(_Strict):
    """A whole computational graph, as saved in a graphkit JSON file."""

    format_version: Annotated[StrictInt, Field(ge=1)] = FORMAT_VERSION
    name: Name
    inputs: list[ValueInfo] = []
    outputs: list[ValueInfo] = Field(min_length=1)
    constants: list[Constant] = []
    nodes: list[Node] = []
    metadata: dict[str, JsonValue] = {}

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version > FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is newer than this graphkit reads "
                f"(up to {FORMAT_VERSION}); upgrade graphkit-backprop"
            )
        return version

    def constant(self, name: str) -> Constant:
        for constant in self.constants:
            if constant.name == name:
                return constant
        raise KeyError(name)
