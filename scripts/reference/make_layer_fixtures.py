#!/usr/bin/env python3
"""Reference values for every NFMNN layer and for PyTorch's state_dict key names, computed with PyTorch.

Pinned: torch==2.13.0+cpu, numpy. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy
Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_layer_fixtures.py
It writes Tests/NFMNNTests/Fixtures/layers.json and module_keys.json. CI never runs Python; the JSON
is committed.

layers.json holds one case per layer configuration: the torch module's state_dict (keys in torch's
order, shapes, values), its named_parameters() order, the inputs of one or two forward calls in
train or eval mode, each output, a random upstream gradient `seed` for the last output, the
gradients of sum(output * seed) with respect to the last input and every parameter (keyed
"input" and by parameter name), and, for modules with buffers, the state_dict after the calls
(running statistics and num_batches_tracked for batch norm). Modules run in float64 on float32 values, so that the
reference itself adds no rounding error.

module_keys.json records the key order of a small nested module: state_dict() keys and shapes,
named_parameters() and named_buffers() order, and every submodule's training flag after eval().
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
rng = np.random.default_rng(20210302)
torch.manual_seed(20210302)
fixtures = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "NFMNNTests", "Fixtures")


def f32(a):
    return np.asarray(a, dtype=np.float32)


def packed(a):
    """Float32 values as JSON numbers with 9 significant digits, enough to round-trip exactly."""
    return [float(f"{v:.9g}") for v in f32(a).ravel()]


def tensor_json(t):
    array = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    return {"shape": list(array.shape), "data": packed(array)}


def normal(*shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def state_json(module):
    """state_dict() in torch's order; int64 counters keep their dtype so the Swift side can tell them apart."""
    entries = []
    for key, value in module.state_dict().items():
        if value.dtype == torch.int64:
            entries.append({"key": key, "dtype": "int64", "shape": list(value.shape), "value": int(value)})
        else:
            entries.append({"key": key, "dtype": "float32", **tensor_json(value)})
    return entries


def randomise(module):
    """Replaces every parameter and buffer with float32-representable random values (variances positive)."""
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.dtype == torch.int64:  # num_batches_tracked: a non-zero start tests loading counters
                value.fill_(3)
                continue
            if key.endswith("running_var"):
                value.copy_(torch.tensor(f32(rng.uniform(0.5, 2.0, value.shape)), dtype=torch.float64))
            elif key.endswith("running_mean"):
                value.copy_(torch.tensor(normal(*value.shape, scale=0.5), dtype=torch.float64))
            elif key.endswith("weight") and value.dim() == 1:  # batch norm γ: keep away from 0
                value.copy_(torch.tensor(f32(rng.uniform(0.5, 1.5, value.shape)), dtype=torch.float64))
            else:
                value.copy_(torch.tensor(normal(*value.shape, scale=0.5), dtype=torch.float64))


cases = []


def add(name, layer, config, module, input_shapes, training, randomise_state=True):
    """Runs `module` (float64) on one random input per shape and records one case."""
    module = module.double()
    if randomise_state:
        randomise(module)
    module.train(training)
    case = {"name": name, "layer": layer, "config": config, "training": training,
            "state_dict": state_json(module),
            "named_parameters": [key for key, _ in module.named_parameters()]}
    inputs, outputs = [], []
    for index, shape in enumerate(input_shapes):
        x = normal(*shape)
        last = index == len(input_shapes) - 1
        x64 = torch.tensor(x, dtype=torch.float64, requires_grad=last)
        if last:
            module.zero_grad()
        out = module(x64)
        inputs.append(tensor_json(x))
        outputs.append(tensor_json(out))
        if last:
            seed = normal(*out.shape)
            (out * torch.tensor(seed, dtype=torch.float64)).sum().backward()
            case["seed"] = tensor_json(seed)
            gradients = {"input": tensor_json(x64.grad)}
            for key, parameter in module.named_parameters():
                gradients[key] = tensor_json(parameter.grad)
            case["gradients"] = gradients
    case["inputs"] = inputs
    case["outputs"] = outputs
    if any(True for _ in module.buffers()):  # without buffers the state cannot change
        case["state_after"] = state_json(module)
    cases.append(case)


add("linear", "Linear", {"inputFeatures": 5, "outputFeatures": 3, "bias": True},
    nn.Linear(5, 3), [(4, 5)], training=True)
add("linear_no_bias_rank3", "Linear", {"inputFeatures": 5, "outputFeatures": 3, "bias": False},
    nn.Linear(5, 3, bias=False), [(2, 3, 5)], training=True)
add("conv2d_stride2_padding1", "Conv2d",
    {"inputChannels": 3, "outputChannels": 5, "kernelSize": 3, "stride": 2, "padding": 1, "bias": True},
    nn.Conv2d(3, 5, 3, stride=2, padding=1), [(2, 3, 5, 5)], training=True)
add("conv_transpose2d_stride2_padding1_output_padding1", "ConvTranspose2d",
    {"inputChannels": 3, "outputChannels": 5, "kernelSize": 3, "stride": 2, "padding": 1, "outputPadding": 1,
     "bias": True},
    nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1, output_padding=1), [(2, 3, 3, 3)], training=True)
add("conv2d_no_bias", "Conv2d",
    {"inputChannels": 3, "outputChannels": 5, "kernelSize": 3, "stride": 1, "padding": 0, "bias": False},
    nn.Conv2d(3, 5, 3, bias=False), [(1, 3, 4, 4)], training=True)
add("conv_transpose2d_no_bias", "ConvTranspose2d",
    {"inputChannels": 3, "outputChannels": 5, "kernelSize": 3, "stride": 2, "padding": 0, "outputPadding": 1,
     "bias": False},
    nn.ConvTranspose2d(3, 5, 3, stride=2, output_padding=1, bias=False), [(1, 3, 2, 2)], training=True)
# Training mode: two forward calls update the running statistics twice; the gradient is of the second.
add("batch_norm1d_train", "BatchNorm1d", {"channels": 5, "epsilon": 1e-5, "momentum": 0.1},
    nn.BatchNorm1d(5), [(6, 5), (6, 5)], training=True)
add("batch_norm2d_train", "BatchNorm2d", {"channels": 3, "epsilon": 1e-5, "momentum": 0.1},
    nn.BatchNorm2d(3), [(2, 3, 3, 4), (2, 3, 3, 4)], training=True)
# Eval mode with non-trivial running statistics (randomise sets them); they must not change.
add("batch_norm1d_eval", "BatchNorm1d", {"channels": 5, "epsilon": 1e-5, "momentum": 0.1},
    nn.BatchNorm1d(5), [(6, 5)], training=False)
add("batch_norm2d_eval", "BatchNorm2d", {"channels": 3, "epsilon": 1e-5, "momentum": 0.1},
    nn.BatchNorm2d(3), [(2, 3, 3, 4)], training=False)
add("dropout_eval", "Dropout", {"probability": 0.5}, nn.Dropout(0.5), [(3, 4)], training=False)
add("sequential_train", "Sequential",
    {"inputChannels": 3, "channels": 3, "kernelSize": 3, "stride": 2, "padding": 1, "outputFeatures": 2},
    nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                  nn.Linear(27, 2)),
    [(2, 3, 5, 5)], training=True)
add("sequential_eval", "Sequential",
    {"inputChannels": 3, "channels": 3, "kernelSize": 3, "stride": 2, "padding": 1, "outputFeatures": 2},
    nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                  nn.Linear(27, 2)),
    [(2, 3, 5, 5)], training=False)


# A nested module. Registration order is deliberately not "parameters first": torch's state_dict
# still lists a module's own parameters, then its own buffers, then its children in order.
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.gate = nn.Parameter(torch.ones(3))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 3), nn.Linear(3, 3, bias=False)])
        self.scale = nn.Parameter(torch.ones(3))
        self.block = Block()
        self.register_buffer("offset", torch.zeros(3))
        self.extras = nn.ParameterList([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, 3))])


nested = Nested()
nested.eval()
module_keys = {
    "state_dict": [{"key": key, "shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
                   for key, value in nested.state_dict().items()],
    "named_parameters": [key for key, _ in nested.named_parameters()],
    "named_buffers": [key for key, _ in nested.named_buffers()],
    "training_after_eval": {name or "": module.training for name, module in nested.named_modules()},
}

os.makedirs(fixtures, exist_ok=True)
with open(os.path.join(fixtures, "layers.json"), "w") as file:
    json.dump({"torch": torch.__version__, "cases": cases}, file, separators=(",", ":"))
with open(os.path.join(fixtures, "module_keys.json"), "w") as file:
    json.dump({"torch": torch.__version__, **module_keys}, file, separators=(",", ":"))
print(f"wrote {len(cases)} layer cases and the nested module's keys to {os.path.normpath(fixtures)}")
