"""Smaller ONNX files for downloads: the generator's weights stored as float16 or int8, computed in float32.

A web page downloads its model before it can translate anything, and a 256 px generator's float32
weights are 218 MB. Here each large float32 weight of an ONNX file is stored smaller and turned
back into float32 by a node in front of its users:

- float16: half the size; a Cast to float32. The network computes in float32 as before (ONNX
  Runtime's WebAssembly kernels for float16 convolutions are few), so only the weights' rounding
  (a relative 2**-11) moves the output.
- int8: a quarter of the size; one scale per slice along the weight's first axis (per output
  channel for a convolution, per input channel for a transposed one), symmetric, and a
  DequantizeLinear. Activations stay float32: weight-only quantization, no calibration.

Small tensors (biases, normalization parameters, shapes) stay as they are: they weigh nothing and
hold the values that move the output most. The file's metadata (model_info) says what it holds.

Example:
>>> import onnx
>>> weights = onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [4, 512], [0.5] * 2048)
>>> node = onnx.helper.make_node("Identity", ["w"], ["out"])
>>> out = onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [4, 512])
>>> model = onnx.helper.make_model(onnx.helper.make_graph([node], "g", [], [out], [weights]))
>>> [len(stored_as(model.SerializeToString(), kind)) < 8192 for kind in WEB_WEIGHTS]
[False, True, True]
"""

import numpy as np

from keras_pix2pix.config import check_choice
from keras_pix2pix.options import WEB_WEIGHTS

# Weights with fewer elements than this stay float32.
SMALLEST_STORED = 1024


def _onnx():
    # Imported here: onnx comes with the [onnx] extra, checked by exports before any work.
    import onnx
    from onnx import numpy_helper

    return onnx, numpy_helper


def stored_as(content, storage):
    """The serialized ONNX model `content` with its large float32 weights stored as `storage`.

    Args:
        content: a serialized ONNX model (bytes).
        storage: "float32" (unchanged), "float16" or "int8" (see the module docstring).

    Returns:
        The serialized model (bytes), computing in float32 as before; its metadata_props say the
        storage (keras_pix2pix.weights).
    """
    check_choice("web_weights", storage, WEB_WEIGHTS)
    onnx, numpy_helper = _onnx()
    model = onnx.load_from_string(content)
    _set_props(model, {"keras_pix2pix.weights": storage})
    if storage == "float32":
        return model.SerializeToString()
    graph = model.graph
    kept, decoders = [], []
    for initializer in graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype != np.float32 or values.size < SMALLEST_STORED:
            kept.append(initializer)
            continue
        name = initializer.name
        if storage == "float16":
            kept.append(numpy_helper.from_array(values.astype(np.float16), f"{name}_float16"))
            decoders.append(onnx.helper.make_node("Cast", [f"{name}_float16"], [name], to=onnx.TensorProto.FLOAT))
            continue
        integers, scales = _quantized(values)
        kept += [numpy_helper.from_array(integers, f"{name}_int8"), numpy_helper.from_array(scales, f"{name}_scale")]
        decoders.append(onnx.helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [name], axis=0))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # The decoders first: each node must come after what it reads.
    nodes = decoders + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def _quantized(values):
    """(int8 values, float32 scale per slice along axis 0): symmetric, values = integers * scale."""
    largest = np.abs(values.reshape(values.shape[0], -1)).max(axis=1)
    # An all-zero slice keeps a scale of 1: its integers are 0 whatever the scale.
    scales = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (values.ndim - 1)
    integers = np.clip(np.round(values / scales.reshape(shape)), -127, 127).astype(np.int8)
    return integers, scales


def with_metadata(content, entries):
    """The serialized ONNX model with `entries` (a dict of str) set in its metadata_props.

    Args:
        content: a serialized ONNX model (bytes).
        entries: {key: value}; values are written with str().
    """
    onnx, _ = _onnx()
    model = onnx.load_from_string(content)
    _set_props(model, entries)
    return model.SerializeToString()


def _set_props(model, entries):
    """Sets entries (values written with str()) in a loaded model's metadata_props, keeping the others."""
    _onnx()[0].helper.set_model_props(model, {**{prop.key: prop.value for prop in model.metadata_props},
                                               **{key: str(value) for key, value in entries.items()}})


def metadata(content):
    """The metadata_props of a serialized ONNX model, as a dict.

    Args:
        content: a serialized ONNX model (bytes).
    """
    onnx, _ = _onnx()
    return {prop.key: prop.value for prop in onnx.load_from_string(content).metadata_props}
