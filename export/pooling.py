"""Average pooling as a depthwise convolution, so INT8 graphs keep their fast kernel.

onnxruntime fuses a quantized AveragePool into QLinearAveragePool, a scalar kernel: on
InceptionV3 its nine 3x3 pools took 18% of the INT8 time against 1% in FP32, and held INT8 at
1.58x FP32. A 3x3 average is a depthwise convolution with weights 1/9; where the pool leaves
padding out of the count (Keras' 'same' pooling), a constant per-position map rescales the
border outputs by 9 / (real taps). Both quantize to QLinearConv / QLinearMul, and in FP32 the
rewrite equals the pool to rounding (InceptionV3's features: relative difference 1.6e-7).
"""

from __future__ import annotations

import numpy as np


def pools_as_convolutions(model):  # onnx.ModelProto -> the same, rewritten in place
    """Rewrite every 2-D AveragePool whose shapes are known; leave any other pool as it is.

    Needs the value_info shapes that onnxruntime's quant_pre_process adds."""
    from onnx import helper

    known = [*model.graph.input, *model.graph.value_info, *model.graph.output]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in known}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        in_shape, out_shape = shapes.get(node.input[0], []), shapes.get(node.output[0], [])
        if node.op_type == "AveragePool" and _rewritable(attrs, in_shape, out_shape):
            nodes += _depthwise(model, node, attrs, in_shape, out_shape)
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _rewritable(attrs: dict, in_shape: list[int], out_shape: list[int]) -> bool:
    return (len(attrs.get("kernel_shape", [])) == 2 and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and not attrs.get("ceil_mode", 0) and all(d == 1 for d in attrs.get("dilations", [1, 1]))
            and len(in_shape) == 4 and all(in_shape[1:]) and len(out_shape) == 4 and all(out_shape[1:]))


def _depthwise(model, node, attrs: dict, in_shape: list[int], out_shape: list[int]) -> list:
    from onnx import helper, numpy_helper

    (kh, kw), strides, pads = attrs["kernel_shape"], list(attrs.get("strides", [1, 1])), list(attrs.get("pads", [0, 0, 0, 0]))
    channels, base = in_shape[1], node.output[0]  # output names are unique; node names may be empty
    kernel = numpy_helper.from_array(np.full((channels, 1, kh, kw), 1.0 / (kh * kw), np.float32), f"{base}/kernel")
    model.graph.initializer.append(kernel)
    exact = attrs.get("count_include_pad", 0) or not any(pads)  # every window counts kh * kw taps
    conv_out = base if exact else f"{base}/sum"
    conv = helper.make_node("Conv", [node.input[0], kernel.name], [conv_out], name=f"{base}/depthwise", group=channels,
                            kernel_shape=[kh, kw], pads=pads, strides=strides)
    if exact:
        return [conv]
    scale = numpy_helper.from_array(_border_scale(in_shape[2:], out_shape[2:], (kh, kw), strides, pads), f"{base}/border")
    model.graph.initializer.append(scale)
    return [conv, helper.make_node("Mul", [conv_out, scale.name], [base], name=f"{base}/border")]


def _border_scale(size: list[int], out: list[int], kernel: tuple[int, int], strides: list[int], pads: list[int]) -> np.ndarray:
    """(kh * kw) / real taps of each output window, as a 1 x 1 x H_out x W_out map."""
    (kh, kw), (sh, sw) = kernel, strides
    real = np.pad(np.ones(size, np.float32), ((pads[0], pads[2]), (pads[1], pads[3])))
    taps = np.array([[real[i * sh : i * sh + kh, j * sw : j * sw + kw].sum() for j in range(out[1])] for i in range(out[0])])
    return ((kh * kw) / taps).reshape(1, 1, *out).astype(np.float32)
