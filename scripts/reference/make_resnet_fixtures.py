#!/usr/bin/env python3
"""Parity fixtures for PreActResNet with and without NFM (NFMModels/PreActResNet.swift).

Pinned: torch==2.13.0+cpu, numpy, safetensors (install as in make_model_fixtures.py). Run from the
repository root:
    .venv-ref/bin/python scripts/reference/make_resnet_fixtures.py
It writes Tests/NFMLayersTests/Fixtures/NAME.model.safetensors (the state_dict) and
NAME.expected.safetensors with the same keys as make_model_fixtures.py's, except the inputs:
    input.images [3, 1, 16, 16], input.labels [3] (float)
    eval.log_probs, train.log_probs [3, classes], train.loss, grad.<parameter>, after.<buffer>
and metadata "config" (JSON). The network is PreActResNet (He et al. 2016) as the common PyTorch
`PreActBlock`/`PreActResNet`, with a final BN → ReLU before the global average pool, one pass per
set of weights (later passes under `pass2.`), and the NFM layers of nfm_reference.py after every
block: pass 1 writes, pass 2 reads and writes. Results are computed in float64, and a seed is
accepted only if the train-mode forward stays clear of ReLU kinks and top-k ties (the margins of
make_model_fixtures.py). CI never runs Python; the files are committed.
"""
import copy
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures  # noqa: E402
import nfm_reference  # noqa: E402

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
BATCH, SIZE, CLASSES = 3, 16, 5
CONFIGURATIONS = {
    "preact_baseline": dict(kind="baseline", widths=(4, 6, 8, 10), blocks=(1, 1, 1, 1)),
    "preact_nfm": dict(kind="nfm", widths=(4, 6, 8, 10), blocks=(1, 1, 1, 1), heads=2, key_size=3, value_size=3,
                       top_k=3, sharpness=3),
}


class PreActBlock(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inputs)
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False))

    def forward(self, x):
        activated = F.relu(self.bn1(x))
        skip = self.shortcut(activated) if hasattr(self, "shortcut") else x
        return self.conv2(F.relu(self.bn2(self.conv1(activated)))) + skip


class Pass(nn.Module):
    def __init__(self, channels, widths, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, widths[0], 3, padding=1, bias=False)
        inputs = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks)):
            layer = []
            for index in range(count):
                layer.append(PreActBlock(inputs, width, 2 if stage > 0 and index == 0 else 1))
                inputs = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))

    def blocks(self):
        return [block for stage in range(4) for block in getattr(self, f"layer{stage + 1}")]


class PreActResNet(nn.Module):
    def __init__(self, widths, blocks, nfm=None, channels=1, classes=CLASSES, passes=2):
        super().__init__()
        passes = passes if nfm else 1
        first = Pass(channels, widths, blocks)
        # Pass 1 under the usual names, later passes under pass2, pass3, ...
        for name, module in first.named_children():
            setattr(self, name, module)
        self.passes = [first]
        for index in range(1, passes):
            setattr(self, f"pass{index + 1}", Pass(channels, widths, blocks))
            self.passes.append(getattr(self, f"pass{index + 1}"))
        self.bn = nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], classes)
        slots = [w for w, count in zip(widths, blocks) for _ in range(count)]
        if nfm:
            self.ad = nfm_reference.NeuralFunctionModules(slots * passes, **nfm)

    def forward(self, images):
        memory = []
        for index, network in enumerate(self.passes):
            x = network.conv1(images)
            for block, module in enumerate(network.blocks()):
                x = module(x)
                if hasattr(self, "ad"):
                    x = self.ad(x, index * len(network.blocks()) + block, read=index > 0, write=True, memory=memory)
        return F.log_softmax(self.linear(F.relu(self.bn(x)).mean(dim=(2, 3))), dim=1)


def build(configuration):
    c = configuration
    nfm = None if c["kind"] == "baseline" else dict(
        heads=c["heads"], key_size=c["key_size"], value_size=c["value_size"], top_k=c["top_k"])
    return PreActResNet(c["widths"], c["blocks"], nfm)


def results(model, images, labels):
    model = copy.deepcopy(model).double()
    images = images.double()
    model.eval()
    with torch.no_grad():
        eval_log_probs = model(images)
    ad = getattr(model, "ad", None)
    if ad is not None:
        ad.margins = []
    model.train()
    with make_model_fixtures.ReLUMargin() as relu:
        train_log_probs = model(images)
    loss = F.nll_loss(train_log_probs, labels)
    loss.backward()
    gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    margins = dict(relu=relu.margin, top_k_score_gap=float("inf"), top_k_kept_mass=float("inf"))
    if ad is not None:
        margins["top_k_score_gap"] = min(gap for gap, _ in ad.margins)
        margins["top_k_kept_mass"] = min(mass for _, mass in ad.margins)
    return eval_log_probs, train_log_probs.detach(), loss.detach(), gradients, dict(model.named_buffers()), margins


def make(name, configuration):
    for attempt in range(100):
        seed = 20240101 + 1000 * attempt + sum(map(ord, name))
        torch.manual_seed(seed)
        model = build(configuration)
        generator = torch.Generator().manual_seed(seed)
        make_model_fixtures.perturb(model, generator, configuration.get("sharpness", 1))
        images = torch.rand(BATCH, 1, SIZE, SIZE, generator=generator)
        labels = torch.randint(CLASSES, (BATCH,), generator=generator)
        eval_log_probs, train_log_probs, loss, gradients, buffers, margins = results(model, images, labels)
        if all(margins[key] > minimum for key, minimum in make_model_fixtures.MARGINS.items()):
            break
    else:
        raise RuntimeError(f"{name}: no seed keeps the train-mode forward clear of the margins")
    fixtures = make_model_fixtures.FIXTURES
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(fixtures, f"{name}.model.safetensors"), metadata={"format": "pt"})
    expected = {"input.images": images, "input.labels": labels.float(), "eval.log_probs": eval_log_probs,
                "train.log_probs": train_log_probs, "train.loss": loss}
    expected.update({"grad." + k: v for k, v in gradients.items()})
    expected.update({"after." + k: v for k, v in buffers.items()})
    expected = {k: (v if v.dtype == torch.int64 else v.float()).contiguous() for k, v in expected.items()}
    config = dict(configuration, widths=list(configuration["widths"]), blocks=list(configuration["blocks"]),
                  classes=CLASSES, seed=seed, margins={k: (v if math.isfinite(v) else None) for k, v in margins.items()})
    save_file(expected, os.path.join(fixtures, f"{name}.expected.safetensors"), metadata={"config": json.dumps(config)})
    print(f"{name}: seed {seed}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(gradients)} with gradients, loss {loss.item():.6f}, margins "
          + ", ".join(f"{k} {v:.3g}" for k, v in margins.items()))


if __name__ == "__main__":
    for name, configuration in CONFIGURATIONS.items():
        make(name, configuration)
