"""Bias correction for static QDQ INT8 graphs (Nagel et al. 2019, "Data-Free Quantization Through Weight
Equalization and Bias Correction", sec. 4.2), data-driven form.

Quantizing a conv's weights W -> W_q shifts its output by (W_q - W) x, whose mean over the data,
(W_q - W) E[x], is a per-output-channel constant. In BN-folded MobileNetV2 that constant is large
(block_1_expand has |bias| up to 1.7e3 and pre-activations that nearly cancel before ReLU6), and it
is most of the INT8 error. Subtracting it from each conv's bias removes it; E[x] (per input channel)
comes from the FP32 graph run on the calibration frames. The INT8 graph's int32 biases are rewritten
in place, on their existing scales (input scale x weight scale), so weights, activation ranges and the
graph stay exactly as quantize_static made them: no second calibration, no speed change.
"""

from __future__ import annotations

import copy

import numpy as np


def conv_input_means(fp32, calib: np.ndarray, input_name: str, step: int = 8) -> dict[str, np.ndarray]:
    """Per-channel mean (over frames, height, width) of every Conv input of the FP32 graph `fp32`
    (onnx.ModelProto) on the calibration frames; `step` frames per run (a static-batch graph's batch)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = copy.deepcopy(fp32)
    tensors = list(dict.fromkeys(n.input[0] for n in model.graph.node if n.op_type == "Conv"))
    outputs = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in tensors if t not in outputs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for i in range(0, len(calib) - step + 1, step):
        for name, value in zip(tensors, session.run(tensors, {input_name: calib[i : i + step]})):
            sums[name] = sums.get(name, 0.0) + value.sum(axis=(0, *range(2, value.ndim)), dtype=np.float64)
            counts[name] = counts.get(name, 0) + value.size // value.shape[1]
    return {name: total / counts[name] for name, total in sums.items()}


def correct_biases(fp32, int8, calib: np.ndarray, input_name: str, step: int = 8) -> int:
    """Rewrite, in place, the int32 bias of every INT8 conv of `int8` (onnx.ModelProto from quantize_static,
    QDQ format) so that its expected output equals the FP32 conv's: b <- b - sum_kh,kw (W_q - W) E[x].
    `fp32` is the graph quantize_static was given (after quant_pre_process: BN folded, same node names).
    Convs left FP32 (no DequantizeLinear weight) are skipped. Returns how many convs were corrected."""
    from onnx import numpy_helper

    fp32_convs = {n.name: n for n in fp32.graph.node if n.op_type == "Conv"}
    fp32_init = {i.name: i for i in fp32.graph.initializer}
    init = {i.name: i for i in int8.graph.initializer}
    producer = {o: n for n in int8.graph.node for o in n.output}
    means = conv_input_means(fp32, calib, input_name, step)

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(init[name]).astype(np.float64)

    corrected = 0
    for node in int8.graph.node:
        ref = fp32_convs.get(node.name)
        if node.op_type != "Conv" or ref is None or len(node.input) < 3 or not node.input[2]:
            continue  # a conv without bias is left as it is (BN-folded convs all have one)
        w_dq, b_dq = producer.get(node.input[1]), producer.get(node.input[2])
        if not (w_dq and b_dq and w_dq.op_type == b_dq.op_type == "DequantizeLinear"):
            continue  # left FP32 (keep_fp32)
        w = numpy_helper.to_array(fp32_init[ref.input[1]]).astype(np.float64)
        scale = array(w_dq.input[1]).reshape(-1, *[1] * (w.ndim - 1))
        zero = array(w_dq.input[2]).reshape(scale.shape) if len(w_dq.input) > 2 else 0.0
        delta = ((array(w_dq.input[0]) - zero) * scale - w).sum(axis=tuple(range(2, w.ndim)))  # O x C/group
        groups = next((a.i for a in ref.attribute if a.name == "group"), 1) or 1
        mean = means[ref.input[0]].reshape(groups, -1)  # G x C/group
        shift = (delta * mean[np.arange(len(delta)) // (len(delta) // groups)]).sum(axis=1)
        q_bias, b_scale = array(b_dq.input[0]), array(b_dq.input[1])
        new = np.clip(np.round(q_bias - shift / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
        init[b_dq.input[0]].CopyFrom(numpy_helper.from_array(new, b_dq.input[0]))
        corrected += 1
    return corrected
