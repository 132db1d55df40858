"""The attributes check: an op's attribute model is what validates every graph that uses it.

So it must build from its defaults when every field has one, refuse unknown names (a typo in
a graph is an error, not a silently ignored attribute: `extra="forbid"`) and refuse a value of
the wrong type for each field. Required fields take the values of the op's own sample.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from graphkit.opdef import OpDef
from graphkit.testing.points import SampleError, draw
from graphkit.testing.report import Check

NAME = "attributes"
UNKNOWN = "__graphkit_unknown_attribute__"


class _Foreign:
    """A value of a type no attribute can mean."""

    def __repr__(self) -> str:
        return "<a _Foreign object>"


def attributes_check(op: OpDef, seed: int) -> Check:
    """Passed when defaults build, unknown names and wrongly typed values are refused."""
    model = op.attributes
    fields = model.model_fields
    problems = []
    base: dict[str, Any] = {}
    defaults = all(not f.is_required() for f in fields.values())
    if defaults:
        try:
            model()
        except Exception as exc:  # noqa: BLE001 - reported
            problems.append(f"{model.__name__}() fails although every field has a default: "
                            f"{_first_error(exc)}")
    else:
        try:  # the required fields need valid values
            base = draw(op, seed).raw_attributes
        except SampleError as exc:
            return Check(NAME, "skipped", f"required fields need values from sample(): {exc}")
    if _accepts(model, {**base, UNKNOWN: 1}):
        problems.append(f"{model.__name__} accepts an unknown attribute {UNKNOWN!r}: set "
                        "model_config = ConfigDict(extra=\"forbid\")")
    for name, info in fields.items():
        for wrong in _wrong_values(info.annotation):
            if _accepts(model, {**base, name: wrong}):
                problems.append(f"field {name!r} accepts {wrong!r}, a value of the wrong type: "
                                "annotate it with the type it needs")
                break
    if problems:
        return Check(NAME, "failed", "; ".join(problems))
    noun = "field" if len(fields) == 1 else "fields"
    built = "defaults build" if defaults else "required fields taken from sample()"
    return Check(NAME, "passed", f"{model.__name__} ({len(fields)} {noun}): {built}; unknown "
                                 "and wrongly typed values refused")


def _accepts(model: type[BaseModel], values: dict[str, Any]) -> bool:
    try:
        model.model_validate(values)
    except ValidationError:
        return False
    return True


def _wrong_values(annotation: Any) -> list[Any]:
    """An object of an unrelated type; for fields that take no text, also a piece of text."""
    wrong: list[Any] = [_Foreign()]
    if not _takes_text(annotation):
        wrong.append("not-a-value")
    return wrong


def _takes_text(annotation: Any) -> bool:
    if annotation in (str, Any, object):
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(v, str) for v in typing.get_args(annotation))
    return any(_takes_text(arg) for arg in typing.get_args(annotation))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc'])) or 'attributes'}: {error['msg']}"
    return f"{type(exc).__name__}: {exc}"
