"""Shape inference for validation: known sizes must agree, symbolic and unknown dims pass."""

from __future__ import annotations

from collections.abc import Sequence

from graphkit.opdef import Shape

Dim = int | str | None


def broadcast(*shapes: Shape) -> Shape:
    """The numpy broadcast of shapes whose dims may be symbolic or unknown."""
    if any(shape is None for shape in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)  # type: ignore[arg-type]
    result: list[Dim] = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]  # type: ignore[arg-type]
        result.append(_broadcast_dim(dims, shapes))
    return tuple(result)


def _broadcast_dim(dims: Sequence[Dim], shapes: Sequence[Shape]) -> Dim:
    sizes = {d for d in dims if isinstance(d, int) and d != 1}
    if len(sizes) > 1:
        shown = " and ".join(_show(s) for s in shapes)
        raise ValueError(f"shapes {shown} cannot broadcast")
    if sizes:
        return sizes.pop()
    others = [d for d in dims if d != 1]
    if not others:
        return 1
    if all(d == others[0] for d in others) and others[0] is not None:
        return others[0]
    return None


def same(*shapes: Shape, **_attributes: object) -> list[Shape]:
    return [shapes[0]]


def elementwise(*shapes: Shape, **_attributes: object) -> list[Shape]:
    return [broadcast(*shapes)]


def reduce(shape: Shape, axes: Sequence[int] | None, keepdims: bool) -> Shape:
    if shape is None:
        return None
    rank = len(shape)
    if axes is None:
        chosen = set(range(rank))
    else:
        chosen = set()
        for axis in axes:
            if not -rank <= axis < rank:
                raise ValueError(f"axis {axis} is out of range for shape {_show(shape)}")
            chosen.add(axis % rank)
    if keepdims:
        return tuple(1 if i in chosen else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in chosen)


def matmul(a: Shape, b: Shape) -> Shape:
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ValueError("MatMul needs at least one dimension on each side")
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if isinstance(inner_a, int) and isinstance(inner_b, int) and inner_a != inner_b:
        raise ValueError(f"inner dimensions {inner_a} and {inner_b} differ")
    batch = broadcast(tuple(a[:-2]), tuple(b[:-2]))
    assert batch is not None
    rows = (a[-2],) if len(a) >= 2 else ()
    cols = (b[-1],) if len(b) >= 2 else ()
    return (*batch, *rows, *cols)


def _show(shape: Shape) -> str:
    if shape is None:
        return "(any)"
    dims = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


show = _show
