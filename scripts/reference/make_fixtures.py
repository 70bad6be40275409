#!/usr/bin/env python3
"""Reference values for every NFMTensor op, computed with PyTorch.

Pinned: torch==2.13.0+cpu, numpy. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy
Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_fixtures.py
It writes Tests/NFMTensorTests/Fixtures/ops.json. CI never runs Python; the JSON is committed.

Each case: an op name (the Swift test maps it to our op), float32 inputs, parameters, the forward
output, a random upstream gradient `seed`, and the input gradients of sum(output * seed), all
computed in float64 from the float32 inputs so that the reference itself adds no rounding error.
The NFM attention's reference (nfm_attention_reference.py, beside this script) is shared with
make_attention_fixtures.py, which writes the attention's own multi-layer fixtures.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from nfm_attention_reference import nfm_attention, query_away_from_ties

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
rng = np.random.default_rng(20210301)
cases = []


def f32(a):
    return np.asarray(a, dtype=np.float32)


def packed(a):
    """Float32 values as JSON numbers with 9 significant digits, enough to round-trip exactly."""
    return [float(f"{v:.9g}") for v in f32(a).ravel()]


def normal(*shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def positive(*shape):
    return f32(rng.uniform(0.5, 2.0, shape))


def away_from_zero(*shape, gap=0.1):
    x = rng.standard_normal(shape)
    return f32(np.sign(x) * (np.abs(x) + gap))


def distinct(*shape):
    """Values that differ by at least 0.05 so max/top-k/max-pool have no near-ties (finite differences stay valid)."""
    n = int(np.prod(shape))
    return f32(rng.permutation(n).reshape(shape) * 0.05 - n * 0.025)


def residual_away_from(prediction, target, threshold):
    """Shifts `prediction` so that no |prediction - target| lies within 0.05 of the loss's kink."""
    d = prediction - target
    near = np.abs(np.abs(d) - threshold) < 0.05
    return f32(np.where(near, prediction + 0.2 * np.sign(d), prediction))


def add(op, name, inputs, fn, params=None, differentiable=None, seed=True):
    """Records one case. `fn` maps float64 torch tensors to the output (or a tuple whose first item is it)."""
    params = params or {}
    differentiable = differentiable if differentiable is not None else [True] * len(inputs)
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=d) for x, d in zip(inputs, differentiable)]
    out = fn(*tensors)
    if isinstance(out, tuple):
        out = out[0]
    case = {"op": op, "name": name, "params": params,
            "inputs": [{"shape": list(x.shape), "data": packed(x)} for x in inputs],
            "output": {"shape": list(out.shape), "data": packed(out.detach().numpy())}}
    if seed and out.requires_grad:
        upstream = normal(*out.shape) if out.dim() > 0 else f32(rng.standard_normal())
        (out * torch.tensor(upstream, dtype=torch.float64)).sum().backward()
        case["seed"] = {"shape": list(out.shape), "data": packed(upstream)}
        case["gradients"] = [
            {"shape": list(t.shape), "data": packed(t.grad.numpy())}
            if t.grad is not None else None for t in tensors]
    cases.append(case)


# Elementwise arithmetic with broadcasting
add("add", "add_broadcast", [normal(2, 3, 4), normal(3, 1)], lambda a, b: a + b)
add("subtract", "subtract_broadcast", [normal(2, 1, 4), normal(3, 4)], lambda a, b: a - b)
add("multiply", "multiply_broadcast", [normal(2, 3, 4), normal(4)], lambda a, b: a * b)
add("divide", "divide_broadcast", [normal(2, 3), positive(2, 1)], lambda a, b: a / b)
add("negate", "negate", [normal(3, 4)], lambda a: -a)
add("exp", "exp", [normal(3, 4)], torch.exp)
add("log", "log", [positive(3, 4)], torch.log)
add("sqrt", "sqrt", [positive(3, 4)], torch.sqrt)
add("pow", "pow_scalar3", [normal(3, 4)], lambda a: a ** 3, {"exponent": 3.0})
add("pow", "pow_scalar_half", [positive(3, 4)], lambda a: a ** 0.5, {"exponent": 0.5})
add("powTensor", "pow_tensor", [positive(3, 4), normal(4)], lambda a, b: a ** b)
add("abs", "abs", [away_from_zero(3, 4)], torch.abs)
clamp_input = rng.uniform(-1, 1, (4, 5))
clamp_input[np.abs(np.abs(clamp_input) - 0.5) < 0.05] = 0.0  # keep finite differences off the kinks
add("clamp", "clamp", [f32(clamp_input)], lambda a: torch.clamp(a, -0.5, 0.5), {"min": -0.5, "max": 0.5})
add("relu", "relu", [away_from_zero(3, 5)], F.relu)
add("leakyRelu", "leaky_relu", [away_from_zero(3, 5)], lambda a: F.leaky_relu(a, 0.1), {"slope": 0.1})
add("sigmoid", "sigmoid", [normal(3, 5, scale=3)], torch.sigmoid)
add("tanh", "tanh", [normal(3, 5)], torch.tanh)
add("softplus", "softplus", [normal(3, 5, scale=3)], F.softplus, {"beta": 1.0, "threshold": 20.0})
add("softplus", "softplus_beta2_threshold", [normal(3, 5, scale=3)], lambda a: F.softplus(a, beta=2.0, threshold=3.0), {"beta": 2.0, "threshold": 3.0})
mask = f32(rng.integers(0, 2, (3, 4)))
add("where", "where_broadcast", [mask, normal(3, 4), normal(4)], lambda c, a, b: torch.where(c != 0, a, b), differentiable=[False, True, True])
add("maximum", "maximum", [distinct(3, 4), distinct(3, 4) + 0.025], torch.maximum)
add("minimum", "minimum", [distinct(3, 4), distinct(3, 4) + 0.025], torch.minimum)

# Reductions
add("sum", "sum_axes_keepdims", [normal(2, 3, 4)], lambda a: a.sum(dim=(0, 2), keepdim=True), {"axes": [0, 2], "keepDims": True})
add("sum", "sum_all", [normal(2, 3, 4)], lambda a: a.sum(), {"axes": None, "keepDims": False})
add("mean", "mean_axis", [normal(2, 3, 4)], lambda a: a.mean(dim=1), {"axes": [1], "keepDims": False})
add("max", "max_axis", [distinct(3, 4, 5)], lambda a: a.max(dim=1).values, {"axis": 1, "keepDims": False})
add("max", "max_last_keepdims", [distinct(3, 4)], lambda a: a.max(dim=-1, keepdim=True).values, {"axis": -1, "keepDims": True})
add("argmax", "argmax", [distinct(3, 4, 5)], lambda a: a.argmax(dim=2).double(), {"axis": 2}, differentiable=[False])
add("variance", "variance_unbiased", [normal(3, 4, 5)], lambda a: a.var(dim=(0, 2)), {"axes": [0, 2], "correction": 1})
add("variance", "variance_biased_keepdims", [normal(3, 4)], lambda a: a.var(dim=1, correction=0, keepdim=True), {"axes": [1], "correction": 0, "keepDims": True})

# Shape ops
add("reshape", "reshape", [normal(2, 3, 4)], lambda a: a.reshape(4, -1), {"shape": [4, -1]})
add("permute", "permute", [normal(2, 3, 4, 5)], lambda a: a.permute(2, 0, 3, 1), {"axes": [2, 0, 3, 1]})
add("transpose", "transpose", [normal(2, 3, 4)], lambda a: a.transpose(0, 2), {"first": 0, "second": 2})
add("squeeze", "squeeze", [normal(2, 1, 4)], lambda a: a.squeeze(1), {"axis": 1})
add("unsqueeze", "unsqueeze", [normal(2, 4)], lambda a: a.unsqueeze(-1), {"axis": -1})
add("expand", "expand", [normal(3, 1)], lambda a: a.expand(2, 3, 4), {"shape": [2, 3, 4]})
add("flatten", "flatten", [normal(2, 3, 2, 2)], lambda a: a.flatten(1), {"axis": 1})
add("concatenate", "concatenate_axis1", [normal(2, 3, 2), normal(2, 1, 2), normal(2, 2, 2)], lambda a, b, c: torch.cat([a, b, c], 1), {"axis": 1})
add("stack", "stack_axis0", [normal(3, 2), normal(3, 2)], lambda a, b: torch.stack([a, b], 0), {"axis": 0})
add("slice", "slice_step2", [normal(3, 7, 2)], lambda a: a[:, 1:6:2], {"axis": 1, "start": 1, "end": 6, "step": 2})
add("indexSelect", "index_select_repeat", [normal(4, 3)], lambda a: a.index_select(0, torch.tensor([2, 0, 2])), {"axis": 0, "indices": [2, 0, 2]})
gather_index = rng.integers(0, 4, (3, 2))
add("gather", "gather_axis1", [normal(3, 4)], lambda a: a.gather(1, torch.tensor(gather_index)), {"axis": 1, "indices": gather_index.ravel().tolist(), "indexShape": [3, 2]})
add("pad", "pad_constant", [normal(2, 3, 4)], lambda a: F.pad(a, (2, 1, 0, 0, 1, 0), value=0.5), {"padding": [[1, 0], [0, 0], [2, 1]], "value": 0.5})

# Linear algebra
add("matmul", "matmul_2d", [normal(3, 5), normal(5, 4)], torch.matmul)
add("matmul", "matmul_batched", [normal(2, 3, 5), normal(2, 5, 4)], torch.matmul)
add("matmul", "matmul_shared_right", [normal(2, 3, 5), normal(5, 4)], torch.matmul)
add("linear", "linear_bias", [normal(4, 5), normal(3, 5), normal(3)], F.linear)
add("linear", "linear_rank3_nobias", [normal(2, 4, 5), normal(3, 5)], F.linear)

# Network ops
add("conv2d", "conv2d_stride2_pad1_bias", [normal(2, 3, 7, 6), normal(5, 3, 3, 3), normal(5)],
    lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), {"stride": 2, "padding": 1})
add("conv2d", "conv2d_1x1_nobias_batch1", [normal(1, 7, 5, 5), normal(4, 7, 1, 1)],
    lambda x, w: F.conv2d(x, w), {"stride": 1, "padding": 0})
add("convTranspose2d", "conv_transpose2d_stride2_outpad1", [normal(2, 3, 4, 5), normal(3, 5, 3, 3), normal(5)],
    lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), {"stride": 2, "padding": 1, "outputPadding": 1})
add("convTranspose2d", "conv_transpose2d_4x4_nobias", [normal(1, 4, 3, 3), normal(4, 2, 4, 4)],
    lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), {"stride": 2, "padding": 1, "outputPadding": 0})
add("maxPool2d", "max_pool2d_pad1", [distinct(2, 3, 7, 6)], lambda x: F.max_pool2d(x, 3, 2, 1), {"kernel": 3, "stride": 2, "padding": 1})
add("avgPool2d", "avg_pool2d_include_pad", [normal(2, 3, 7, 6)], lambda x: F.avg_pool2d(x, 3, 2, 1), {"kernel": 3, "stride": 2, "padding": 1, "countIncludePadding": True})
add("avgPool2d", "avg_pool2d_exclude_pad", [normal(2, 3, 7, 6)], lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), {"kernel": 3, "stride": 2, "padding": 1, "countIncludePadding": False})
add("avgPool2d", "avg_pool2d_4", [normal(2, 3, 8, 8)], lambda x: F.avg_pool2d(x, 4), {"kernel": 4, "stride": 4, "padding": 0, "countIncludePadding": True})
add("resizeNearest", "resize_nearest_down_38_to_5", [normal(1, 2, 38, 38)], lambda x: F.interpolate(x, size=(5, 5), mode="nearest"), {"height": 5, "width": 5})
add("resizeNearest", "resize_nearest_up_5_to_19", [normal(2, 2, 5, 5)], lambda x: F.interpolate(x, size=(19, 19), mode="nearest"), {"height": 19, "width": 19})
add("resizeNearest", "resize_nearest_10_to_38x19", [normal(1, 3, 10, 10)], lambda x: F.interpolate(x, size=(38, 19), mode="nearest"), {"height": 38, "width": 19})
add("batchNorm", "batch_norm_train_2d", [normal(4, 3, 5, 5, scale=2), normal(3), normal(3)],
    lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5), {"epsilon": 1e-5})
add("batchNorm", "batch_norm_train_1d", [normal(6, 5), normal(5), normal(5)],
    lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5), {"epsilon": 1e-5})
running_mean, running_var = normal(3), positive(3)
add("batchNormInference", "batch_norm_eval", [normal(2, 3, 4, 4), normal(3), normal(3), running_mean, running_var],
    lambda x, w, b, m, v: F.batch_norm(x, m, v, w, b, training=False, eps=1e-5), {"epsilon": 1e-5},
    differentiable=[True, True, True, False, False])
add("softmax", "softmax_axis1", [normal(2, 5, 3, scale=2)], lambda x: F.softmax(x, dim=1), {"axis": 1})
add("logSoftmax", "log_softmax_last", [normal(4, 6, scale=3)], lambda x: F.log_softmax(x, dim=-1), {"axis": -1})
add("topK", "topk_last", [distinct(3, 6)], lambda x: torch.topk(x, 3, dim=-1).values, {"k": 3, "axis": -1})
add("topK", "topk_axis0", [distinct(5, 2, 3)], lambda x: torch.topk(x, 2, dim=0).values, {"k": 2, "axis": 0})
add("oneHot", "one_hot", [f32([3, 0, 2, 2])], lambda x: F.one_hot(x.long(), 5).double(), {"depth": 5}, differentiable=[False])

# Losses
targets = [1, 0, 3, 2]
add("nllLoss", "nll_loss", [F.log_softmax(torch.tensor(normal(4, 5)), 1).numpy()], lambda x: F.nll_loss(x, torch.tensor(targets)), {"targets": targets})
add("crossEntropy", "cross_entropy", [normal(4, 5, scale=2)], lambda x: F.cross_entropy(x, torch.tensor(targets)), {"targets": targets})
add("crossEntropy", "cross_entropy_sum", [normal(4, 5, scale=2)], lambda x: F.cross_entropy(x, torch.tensor(targets), reduction="sum"), {"targets": targets, "reduction": "sum"})
add("mseLoss", "mse_loss", [normal(3, 4), normal(3, 4)], F.mse_loss)
add("binaryCrossEntropyWithLogits", "bce_with_logits", [normal(3, 4, scale=3), f32(rng.uniform(0, 1, (3, 4)))],
    F.binary_cross_entropy_with_logits)
huber_target = normal(3, 4)
add("huberLoss", "huber_loss_delta", [residual_away_from(normal(3, 4, scale=2), huber_target, 0.7), huber_target], lambda a, b: F.huber_loss(a, b, delta=0.7), {"delta": 0.7})
smooth_target = normal(3, 4)
add("smoothL1Loss", "smooth_l1_loss_beta", [residual_away_from(normal(3, 4, scale=2), smooth_target, 0.5), smooth_target], lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), {"beta": 0.5})
add("smoothL1Loss", "smooth_l1_loss_none", [residual_away_from(normal(3, 4, scale=2), smooth_target, 1.0), smooth_target], lambda a, b: F.smooth_l1_loss(a, b, reduction="none"), {"beta": 1.0, "reduction": "none"})

# The NFM attention core (DESIGN.md §2 steps 2–5); inputs are [query, key_1, value_1, key_2, value_2, …].
# The query is redrawn near top-k ties, so that a finite-difference step of 5e-3 keeps the same slots.
def add_nfm_attention(name, batch, heads, key_size, value_size, size, entry_sizes, top_k, temperature):
    keys = [normal(batch, heads * key_size, h, w) for h, w in entry_sizes]
    values = [normal(batch, heads * value_size, h, w) for h, w in entry_sizes]
    tau = temperature if temperature is not None else key_size ** 0.5
    query = query_away_from_ties(lambda shape: normal(*shape), keys, heads, key_size, top_k, tau, 0.03,
                                 (batch, heads * key_size, size[0], size[1]))
    inputs = [query] + [x for pair in zip(keys, values) for x in pair]

    def fn(q, *memory):
        return nfm_attention(q, list(memory[0::2]), list(memory[1::2]), heads, key_size, value_size, top_k, tau)
    add("nfmAttention", name, inputs, fn,
        {"heads": heads, "keySize": key_size, "valueSize": value_size, "topK": top_k, "temperature": temperature})


add_nfm_attention("nfm_attention_top1_mixed_sizes", 2, 2, 2, 3, (3, 4), [(3, 4), (2, 2), (5, 6), (1, 3)], 1, 0.9)
add_nfm_attention("nfm_attention_top2_upsampled", 1, 1, 3, 2, (4, 4), [(2, 2), (3, 1), (4, 4), (1, 1)], 2, None)
add_nfm_attention("nfm_attention_dense_default_tau", 1, 1, 3, 2, (2, 3), [(4, 5), (2, 3)], 3, None)

out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "NFMTensorTests", "Fixtures", "ops.json")
with open(out, "w") as f:
    json.dump({"generator": "scripts/reference/make_fixtures.py", "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")
