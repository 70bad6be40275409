#!/usr/bin/env python3
"""Reference values for GenerateKit (nfm-generate), computed with PyTorch and NumPy.

Pinned: torch==2.13.0+cpu, numpy. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy
Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_generate_fixtures.py
It writes two files under Tests/GenerateKitTests/Fixtures/. CI never runs Python; the JSON is committed.

spectral_norm.json: torch.nn.utils.spectral_norm (one power iteration, eps 1e-12) on Conv2d and
Linear layers. Each case holds the module's state_dict right after spectral_norm (keys in torch's
order: bias, weight_orig, weight_u, weight_v), then three training-mode forward calls (the input,
the output, and weight_u / weight_v after the call: one power iteration per call), the gradients of
sum(output * seed) for the last training call with respect to the input and to every parameter,
and one eval-mode call (no power iteration) with its output. Modules run in float64 on values
that are exact in float32, so that the reference adds no rounding error of its own.

frechet.json: the Fréchet distance between Gaussians, ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2),
with tr sqrt(S1 S2) taken as the sum of the square roots of the eigenvalues of the (non-symmetric)
product S1 S2 from LAPACK's general eigensolver, an algorithm independent of the symmetric Jacobi
route the Swift code takes. Cases: full covariances given directly, and sample statistics of two
feature matrices (mean, covariance with N - 1, distance), as FID computes them with np.cov.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
torch.manual_seed(20210302)
rng = np.random.default_rng(20210302)
root = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "GenerateKitTests", "Fixtures")


def as_f32_exact(t):
    """Rounds a tensor to float32 values, kept in float64."""
    return t.detach().float().double()


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def tensor_json(t):
    return {"shape": list(t.shape), "values": flat(t)}


def spectral_case(name, module, input_shape):
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(as_f32_exact(p))
    module = nn.utils.spectral_norm(module)
    with torch.no_grad():
        module.weight_u.copy_(as_f32_exact(module.weight_u))
        module.weight_v.copy_(as_f32_exact(module.weight_v))
    state = module.state_dict()
    case = {
        "name": name,
        "kind": type(module).__name__,
        "state_dict": [{"key": k, **tensor_json(v)} for k, v in state.items()],
        "config": {},
        "train_calls": [],
    }
    if isinstance(module, nn.Conv2d):
        case["config"] = {
            "in_channels": module.in_channels, "out_channels": module.out_channels,
            "kernel_size": module.kernel_size[0], "stride": module.stride[0], "padding": module.padding[0],
        }
    else:
        case["config"] = {"in_features": module.in_features, "out_features": module.out_features}
    module.train()
    for call in range(3):
        x = as_f32_exact(torch.randn(*input_shape, dtype=torch.float64)).requires_grad_(True)
        out = module(x)
        entry = {"input": tensor_json(x), "output": tensor_json(out),
                 "weight_u": tensor_json(module.weight_u), "weight_v": tensor_json(module.weight_v)}
        if call == 2:
            seed = as_f32_exact(torch.randn_like(out))
            (out * seed).sum().backward()
            entry["seed"] = tensor_json(seed)
            entry["gradients"] = {"input": tensor_json(x.grad)}
            for pname, p in module.named_parameters():
                entry["gradients"][pname] = tensor_json(p.grad)
        case["train_calls"].append(entry)
    module.eval()
    x = as_f32_exact(torch.randn(*input_shape, dtype=torch.float64))
    with torch.no_grad():
        out = module(x)
    case["eval_call"] = {"input": tensor_json(x), "output": tensor_json(out),
                         "weight_u": tensor_json(module.weight_u), "weight_v": tensor_json(module.weight_v)}
    return case


cases = [
    spectral_case("conv3x3", nn.Conv2d(3, 4, 3, stride=1, padding=1), (2, 3, 5, 5)),
    spectral_case("conv4x4_stride2", nn.Conv2d(2, 5, 4, stride=2, padding=1), (2, 2, 6, 6)),
    spectral_case("linear_wide", nn.Linear(6, 3), (4, 6)),
    spectral_case("linear_tall", nn.Linear(3, 8), (4, 3)),
]
with open(os.path.join(root, "spectral_norm.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)


def random_spd(d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def frechet(mu1, s1, mu2, s2):
    eig = np.linalg.eigvals(s1 @ s2)
    trace_sqrt = np.sum(np.sqrt(np.maximum(eig.real, 0)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


gaussians = []
for d in (2, 5, 12):
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(d), random_spd(d)
    gaussians.append({"dimension": d, "mean1": mu1.tolist(), "covariance1": s1.reshape(-1).tolist(),
                      "mean2": mu2.tolist(), "covariance2": s2.reshape(-1).tolist(),
                      "distance": frechet(mu1, s1, mu2, s2)})

samples = []
for n1, n2, d in ((50, 60, 4), (150, 120, 8)):
    x = rng.standard_normal((n1, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    y = rng.standard_normal((n2, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    x, y = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    m1, m2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    samples.append({"dimension": d, "features1": x.reshape(-1).tolist(), "count1": n1,
                    "features2": y.reshape(-1).tolist(), "count2": n2,
                    "mean1": m1.tolist(), "covariance1": c1.reshape(-1).tolist(),
                    "distance": frechet(m1, c1, m2, c2)})

with open(os.path.join(root, "frechet.json"), "w") as f:
    json.dump({"numpy": np.__version__, "gaussians": gaussians, "samples": samples}, f)
print("wrote", os.path.normpath(root))
