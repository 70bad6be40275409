#!/usr/bin/env python3
"""Full-model parity fixtures: the Sort-of-CLEVR models of nfm_reference.py at small sizes.

Pinned: torch==2.13.0+cpu, numpy, safetensors. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy safetensors
Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_model_fixtures.py
It writes, for each configuration NAME below, into Tests/NFMLayersTests/Fixtures/:
    NAME.model.safetensors     the model's state_dict, exactly as `safetensors.torch.save_file` writes
                               it (float32, num_batches_tracked int64); NFM-Swift loads it strictly
    NAME.expected.safetensors  inputs and reference results, keys:
        input.images [3, 3, 75, 75] in [0, 1], input.questions [3, 11], input.answers [3] (float)
        eval.log_probs [3, 10]      eval mode (running statistics)
        train.log_probs, train.loss train mode, dropout off (p = 0), NLL loss averaged over the batch
        grad.<parameter>            d loss / d parameter, for every parameter that gets a gradient
                                    (torch leaves the others None: pass-1 query and out layers, γ)
        after.<buffer>              every buffer after that one train-mode forward
      and metadata "config" (JSON: the configuration below, the seed, the head sizes and the margins
      of the accepted seed).
CI never runs Python; the files are committed.

The models are made non-trivial before saving: γ_s ≠ 0 so that the NFM path matters, batch-norm
affine parameters and running statistics away from their defaults, num_batches_tracked 7, and the
query and key convolutions scaled up so that attention is peaked and top-k really selects. Results are
computed in float64 on those float32 values, so the reference adds no rounding error of its own. A
seed is accepted only if its train-mode forward stays clear, by `MARGINS`, of the places where the
gradient jumps or is steep: ReLU inputs near 0, top-k score ties, and a small kept mass (see
`results` and `nfm_reference.top_k_margins`). There float32 rounding, on the Swift side or in PyTorch
float32 alike, could move a gradient by far more than its rounding error.

Reverse direction (run by hand, not in CI): `swift test --filter ModelParityTests` with
NFM_PARITY_EXPORT=DIR set writes DIR/NAME.swift.safetensors (the Swift model after its train-mode
forward); then
    .venv-ref/bin/python scripts/reference/make_model_fixtures.py --check-swift DIR
loads each into the PyTorch model with strict=True and compares every entry with the reference.
"""
import argparse
import copy
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nfm_reference  # noqa: E402

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "NFMLayersTests", "Fixtures")
BATCH = 3
# The smallest accepted margins of the train-mode forward (see `results` and
# nfm_reference.top_k_margins): gaps about 10× the float32 error of a score and of a ReLU input here,
# and a kept mass where the top-k renormalisation's slope, 1e-7 / mass², is at most 1.
MARGINS = dict(relu=2e-6, top_k_score_gap=5e-6, top_k_kept_mass=3e-4)

# Small head (conv1 → 4, fc1 → 16) so that the files stay small; the trunk keeps the
# 75 → 38 → 19 → 10 → 5 geometry. `sharpness` multiplies the query and key convolutions.
CONFIGURATIONS = {
    # Mixed widths catch channel mix-ups between slots; k = 3 is the reference's.
    "nfm_k3": dict(kind="nfm", widths=(6, 8, 10, 12), heads=2, key_size=4, value_size=3, top_k=3, sharpness=3),
    # One head, k = 1. With k = 1 the kept mass is a_(1) − a_(2), so attention is made sharper to keep
    # it clear of 0 (see nfm_reference.top_k_margins).
    "nfm_k1_heads1": dict(kind="nfm", widths=(8, 8, 8, 8), heads=1, key_size=4, value_size=3, top_k=1, sharpness=10),
    # k = 5: the first pass-2 read sees exactly k+1 = 6 slots and keeps its softmax unchanged; the
    # later reads (7, 8, 9 slots) apply top-k.
    "nfm_k5": dict(kind="nfm", widths=(8, 8, 8, 8), heads=2, key_size=4, value_size=3, top_k=5, sharpness=3),
    "baseline": dict(kind="baseline", widths=(6, 8, 10, 12)),
}
HEAD = dict(head_channels=4, hidden_size=16)


def build(configuration):
    """The fixture model of a configuration, dropout off."""
    if configuration["kind"] == "baseline":
        return nfm_reference.build_model("baseline", configuration["widths"], dropout=0.0, **HEAD)
    c = configuration
    return nfm_reference.build_model(
        "nfm", c["widths"], c["heads"], c["key_size"], c["value_size"], c["top_k"], dropout=0.0, **HEAD)


def perturb(model, generator, sharpness):
    """Moves every γ, batch-norm parameter and running statistic away from its initial value, and
    sharpens attention by scaling the query and key convolutions by `sharpness`."""
    def uniform(shape, low, high):
        return torch.rand(shape, generator=generator) * (high - low) + low

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(uniform(c, 0.6, 1.4))
                module.bias.copy_(uniform(c, -0.2, 0.2))
                module.running_mean.copy_(uniform(c, -0.3, 0.3))
                module.running_var.copy_(uniform(c, 0.5, 1.5))
                module.num_batches_tracked.fill_(7)
        ad = next((m for m in model.modules() if isinstance(m, nfm_reference.NeuralFunctionModules)), None)
        if ad is not None:
            for s, gamma in enumerate(ad.gammas):
                gamma.fill_((0.5 + 0.1 * (s % 4)) * (1 if s % 2 == 0 else -1))
            for layer in list(ad.query_layers) + list(ad.key_layers):
                layer.weight.mul_(sharpness)


def inputs(generator):
    images = torch.rand(BATCH, 3, 75, 75, generator=generator)
    questions = torch.zeros(BATCH, nfm_reference.QUESTION_SIZE)
    for n in range(BATCH):
        colour, kind, subtype = (torch.randint(high, (1,), generator=generator).item() for high in (6, 2, 3))
        questions[n, colour] = 1
        questions[n, 6 + kind] = 1
        questions[n, 8 + subtype] = 1
    answers = torch.randint(nfm_reference.ANSWERS, (BATCH,), generator=generator)
    return images, questions, answers


def check_nearest_indices_agree_in_float32_and_float64():
    """The Swift side computes nearest-resize source indices with a Float32 scale, as PyTorch does for
    float32 tensors; the reference runs in float64, so check that every size pair used here gives the
    same indices in both dtypes."""
    sizes = [38, 19, 10, 5]
    for source in sizes + [1]:
        for target in sizes:
            ramp = torch.arange(source, dtype=torch.float64).reshape(1, 1, source, 1).expand(1, 1, source, source)
            in64 = F.interpolate(ramp.contiguous(), size=(target, target), mode="nearest")
            in32 = F.interpolate(ramp.float().contiguous(), size=(target, target), mode="nearest")
            assert torch.equal(in64.float(), in32), f"nearest indices differ for {source} → {target}"


class ReLUMargin(TorchFunctionMode):
    """Records the smallest |input| of every ReLU run under it (F.relu and nn.ReLU)."""

    def __init__(self):
        super().__init__()
        self.margin = float("inf")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.relu, torch.relu):
            self.margin = min(self.margin, args[0].detach().abs().min().item())
        return func(*args, **(kwargs or {}))


def results(model, images, questions, answers):
    """Eval log-probs, then (train mode) log-probs, loss, gradients and buffers after the forward,
    all in float64; and the margins of the train-mode forward: the smallest |ReLU input|, and the
    smallest top-k score gap and kept mass. The gradient jumps where a ReLU input or a score gap is 0
    (another ReLU mask, another slot kept) and is steep where the kept mass is near 0, so that float32
    rounding there could move a gradient by far more than its rounding error. The eval forward is
    continuous there and is not checked."""
    model = copy.deepcopy(model).double()
    images, questions = images.double(), questions.double()
    model.eval()
    with torch.no_grad():
        eval_log_probs = model(images, questions)
    ad = getattr(model.conv, "ad", None)
    if ad is not None:
        ad.margins = []
    model.train()
    with ReLUMargin() as relu:
        train_log_probs = model(images, questions)
    loss = F.nll_loss(train_log_probs, answers)
    loss.backward()
    gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    buffers = dict(model.named_buffers())
    margins = dict(relu=relu.margin, top_k_score_gap=float("inf"), top_k_kept_mass=float("inf"))
    if ad is not None:
        margins["top_k_score_gap"] = min(gap for gap, _ in ad.margins)
        margins["top_k_kept_mass"] = min(mass for _, mass in ad.margins)
    return eval_log_probs, train_log_probs.detach(), loss.detach(), gradients, buffers, margins


def make(name, configuration):
    for attempt in range(100):
        seed = 20210302 + 1000 * attempt + sum(map(ord, name))
        torch.manual_seed(seed)
        model = build(configuration)
        generator = torch.Generator().manual_seed(seed)
        perturb(model, generator, configuration.get("sharpness", 1))
        images, questions, answers = inputs(generator)
        eval_log_probs, train_log_probs, loss, gradients, buffers, margins = results(model, images, questions, answers)
        if all(margins[key] > minimum for key, minimum in MARGINS.items()):
            break
    else:
        raise RuntimeError(f"{name}: no seed keeps the train-mode forward clear of {MARGINS}")

    if configuration["kind"] == "nfm":
        tsv_keys = [key for key, _, _ in nfm_reference.read_tsv()]
        assert list(model.state_dict()) == tsv_keys, f"{name}: state_dict keys differ from the TSV's"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(FIXTURES, f"{name}.model.safetensors"), metadata={"format": "pt"})
    expected = {
        "input.images": images, "input.questions": questions, "input.answers": answers.float(),
        "eval.log_probs": eval_log_probs, "train.log_probs": train_log_probs, "train.loss": loss,
    }
    for key, gradient in gradients.items():
        expected["grad." + key] = gradient
    for key, buffer in buffers.items():
        expected["after." + key] = buffer
    expected = {k: (v if v.dtype == torch.int64 else v.float()).contiguous() for k, v in expected.items()}
    config = dict(configuration, widths=list(configuration["widths"]), seed=seed, **HEAD,
                  margins={k: (v if math.isfinite(v) else None) for k, v in margins.items()})
    save_file(expected, os.path.join(FIXTURES, f"{name}.expected.safetensors"), metadata={"config": json.dumps(config)})
    parameters = dict(model.named_parameters())
    print(f"{name}: seed {seed}, {sum(p.numel() for p in parameters.values())} parameters, "
          f"{len(gradients)}/{len(parameters)} with gradients, loss {loss.item():.6f}, margins "
          + ", ".join(f"{k} {v:.3g}" for k, v in margins.items()))


def check_swift(directory):
    """Loads each NAME.swift.safetensors (written by the Swift tests after their train-mode forward)
    into the PyTorch model with strict=True and compares every entry with the reference's."""
    for name, configuration in CONFIGURATIONS.items():
        path = os.path.join(directory, f"{name}.swift.safetensors")
        model = build(configuration)
        model.load_state_dict(load_file(path), strict=True)
        reference = load_file(os.path.join(FIXTURES, f"{name}.model.safetensors"))
        expected = load_file(os.path.join(FIXTURES, f"{name}.expected.safetensors"))
        worst = 0.0
        for key, value in model.state_dict().items():
            target = expected.get("after." + key, reference[key])
            assert value.dtype == target.dtype and value.shape == target.shape, key
            worst = max(worst, (value.double() - target.double()).abs().max().item())
        assert worst < 1e-4, f"{name}: Swift state differs from the reference by {worst}"
        print(f"{name}: the Swift checkpoint loads strictly; worst difference {worst:.3g}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-swift", metavar="DIR", help="check Swift-written checkpoints instead")
    parser.add_argument("--only", metavar="NAME", action="append", choices=sorted(CONFIGURATIONS),
                        help="write only these configurations (repeatable)")
    arguments = parser.parse_args()
    if arguments.check_swift:
        check_swift(arguments.check_swift)
    else:
        torch.manual_seed(0)
        nfm_reference.check_against_tsv(nfm_reference.build_model("nfm"))
        check_nearest_indices_agree_in_float32_and_float64()
        for name, configuration in CONFIGURATIONS.items():
            if not arguments.only or name in arguments.only:
                make(name, configuration)
