"""Average pooling rewritten as depthwise convolution (for INT8): exact in FP32, for every padding rule."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

onnx = pytest.importorskip("onnx", reason="graph rewriting needs the onnx package (export extra)")
from onnx import TensorProto, helper, shape_inference  # noqa: E402

from edgeft.export.pooling import pools_as_convolutions  # noqa: E402

POOLS = [  # kernel, strides, pads, count_include_pad, input H x W
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, (9, 11)),  # Keras 'same' pooling (InceptionV3): borders average fewer taps
    ((3, 3), (2, 2), (0, 1, 1, 0), 0, (10, 7)),  # asymmetric padding, strided, a window past the last row
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, (8, 8)),  # 'valid' (DenseNet transitions)
    ((3, 3), (1, 1), (1, 1, 1, 1), 1, (6, 6)),  # padding counted as zeros
]


def pool_model(kernel, strides, pads, include_pad, size) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, *size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("AveragePool", ["x"], ["pooled"], kernel_shape=kernel, strides=strides, pads=pads,
                              count_include_pad=include_pad),
             helper.make_node("Relu", ["pooled"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "pool", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return shape_inference.infer_shapes(model)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize(("kernel", "strides", "pads", "include_pad", "size"), POOLS)
def test_rewritten_pool_equals_the_pool(kernel, strides, pads, include_pad, size) -> None:
    model = pool_model(kernel, strides, pads, include_pad, size)
    x = np.random.default_rng(0).normal(size=(2, 5, *size)).astype(np.float32)
    expected = run(model, x)
    rewritten = pools_as_convolutions(pool_model(kernel, strides, pads, include_pad, size))
    ops = [n.op_type for n in rewritten.graph.node]
    assert "AveragePool" not in ops and "Conv" in ops and ("Mul" in ops) == (any(pads) and not include_pad)
    np.testing.assert_allclose(run(rewritten, x), expected, atol=1e-6)


def test_a_pool_of_unknown_shape_is_left_alone() -> None:
    model = pool_model((3, 3), (1, 1), (1, 1, 1, 1), 0, (9, 11))
    del model.graph.value_info[:]
    assert [n.op_type for n in pools_as_convolutions(model).graph.node] == ["AveragePool", "Relu"]
