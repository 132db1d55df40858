"""dtype names <-> ONNX element types, and the metadata keys graphkit writes into ONNX files."""

from __future__ import annotations

from onnx import TensorProto

from graphkit.errors import FormatError

TO_ONNX = {
    "float32": TensorProto.FLOAT,
    "float64": TensorProto.DOUBLE,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
}
FROM_ONNX = {value: key for key, value in TO_ONNX.items()}

# model-level metadata_props (anything ONNX has no field for)
FORMAT_VERSION_KEY = "graphkit.format_version"
METADATA_KEY = "graphkit.metadata"
TRAINABLE_KEY = "graphkit.trainable"
UNTYPED_KEY = "graphkit.untyped"
"""Inputs and outputs declared without a dtype (ONNX needs one, so they travel as float64)."""
UNSHAPED_KEY = "graphkit.unshaped"
"""Outputs declared without a shape (ONNX needs one: inferred on export, dropped on import)."""
EXTRA_KEY = "graphkit.extra_inputs"
"""Initializers that carry attributes as ONNX inputs (dropped again on import)."""
# node-level metadata_props
OP_KEY = "graphkit.op"
ATTRIBUTES_KEY = "graphkit.attributes"


def dtype_from_onnx(elem_type: int, what: str) -> str:
    try:
        return FROM_ONNX[elem_type]
    except KeyError:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() \
            else str(elem_type)
        raise FormatError(
            f"{what} has element type {name}; graphkit supports {', '.join(TO_ONNX)}"
        ) from None
