#!/usr/bin/env python3
"""Reference values for NFMOptimizers, computed with torch.optim.

Pinned: torch==2.13.0+cpu, numpy. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy
Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_optimizer_fixtures.py
It writes Tests/NFMOptimizersTests/Fixtures/{optimizers,clip_grad_norm,lr_schedules}.json.
CI never runs Python; the JSON is committed.

optimizers.json: three float32 parameters in a fixed order ("layer.weight" [3, 4], "layer.bias" [4],
"frozen.scale" [2]) and 20 steps of given gradients. "layer.bias" has no gradient (grad None) on
steps 1, 4, 5 and 11, so its state starts late and its step count lags; "frozen.scale" never has
one, so it must never change and never get state, whatever the weight decay. For each optimizer
configuration: the parameters after every step, and the flattened state dict after step 10
(`state.<index>.<name>`, as torch's optimizer.state_dict()["state"] numbers it). Every optimizer
runs torch's single-tensor implementation (foreach=False), the one NFMOptimizers mirrors.
"""
import json
import math
import os

import numpy as np
import torch

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
rng = np.random.default_rng(20130616)
OUT = "Tests/NFMOptimizersTests/Fixtures"


def f32(a):
    return np.asarray(a, dtype=np.float32)


def packed(a):
    """A float32 tensor as JSON: its shape and its values with 9 significant digits (exact round trip)."""
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "data": [float(f"{v:.9g}") for v in a.ravel()]}


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({"torch": torch.__version__, **payload}, f, separators=(",", ":"))
    print(f"wrote {OUT}/{name}")


# MARK: optimizers

STEPS = 20
STATE_STEP = 10
ORDER = ["layer.weight", "layer.bias", "frozen.scale"]
SHAPES = {"layer.weight": (3, 4), "layer.bias": (4,), "frozen.scale": (2,)}
BIAS_SKIPPED = {1, 4, 5, 11}

initial = {name: f32(rng.standard_normal(shape) * 0.5) for name, shape in SHAPES.items()}
gradients = []
for step in range(1, STEPS + 1):
    # Large gradients first, small later: the second moment then falls, so AMSGrad's running
    # maximum differs from exp_avg_sq and the test can tell them apart.
    scale = 2.0 if step <= 8 else 0.3
    step_gradients = {"layer.weight": f32(rng.standard_normal((3, 4)) * scale)}
    if step not in BIAS_SKIPPED:
        step_gradients["layer.bias"] = f32(rng.standard_normal(4) * scale)
    gradients.append(step_gradients)

CONFIGS = [
    ("sgd_plain", "SGD", dict(lr=0.1)),
    ("sgd_momentum_dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd_nesterov_weight_decay", "SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("adam", "Adam", dict(lr=1e-2)),
    ("adam_amsgrad_weight_decay", "Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    ("adamw", "AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("adamw_amsgrad", "AdamW", dict(lr=2e-2, betas=(0.85, 0.995), amsgrad=True)),
    ("rmsprop_plain", "RMSprop", dict(lr=1e-2)),
    ("rmsprop_centered_momentum", "RMSprop", dict(lr=1e-2, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    # The DQN baseline's optimizer (Mnih et al. 2015 / MinAtar): centered, ε outside the root.
    ("rmsprop_dqn", "RMSprop", dict(lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)),
]


def flat_state(optimizer):
    """torch's optimizer.state_dict()["state"] as flat `state.<index>.<name>` float32 tensors."""
    flat = {}
    for index, entries in optimizer.state_dict()["state"].items():
        for name, value in entries.items():
            flat[f"state.{index}.{name}"] = packed(value.detach().to(torch.float32).numpy())
    return flat


cases = []
for case_name, kind, hyperparameters in CONFIGS:
    params = [torch.tensor(initial[name], requires_grad=True) for name in ORDER]
    optimizer = getattr(torch.optim, kind)(params, foreach=False, **hyperparameters)
    trajectory, state_at_step = [], None
    for step, step_gradients in enumerate(gradients, start=1):
        for name, p in zip(ORDER, params):
            p.grad = torch.tensor(step_gradients[name]) if name in step_gradients else None
        optimizer.step()
        trajectory.append({name: packed(p.detach().numpy()) for name, p in zip(ORDER, params)})
        if step == STATE_STEP:
            state_at_step = flat_state(optimizer)
    cases.append(
        {
            "name": case_name,
            "optimizer": kind,
            "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in hyperparameters.items()},
            "trajectory": trajectory,
            "stateStep": STATE_STEP,
            "state": state_at_step,
        }
    )

write(
    "optimizers.json",
    {
        "parameterOrder": ORDER,
        "initialParameters": {name: packed(initial[name]) for name in ORDER},
        "gradients": [{name: packed(g) for name, g in step.items()} for step in gradients],
        "cases": cases,
    },
)

# MARK: clip_grad_norm_


def clip_case(name, shapes, scale, max_norm):
    grads = [f32(rng.standard_normal(shape) * scale) for shape in shapes]
    params = [torch.zeros(shape, requires_grad=True) for shape in shapes]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    # A parameter without a gradient is skipped, as in a model with frozen parts.
    params.append(torch.zeros(3, requires_grad=True))
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return {
        "name": name,
        "maxNorm": max_norm,
        "gradients": [packed(g) for g in grads],
        "totalNorm": float(total),
        "clipped": [packed(p.grad.numpy()) for p in params[:-1]],
    }


write(
    "clip_grad_norm.json",
    {
        "cases": [
            clip_case("clips", [(3, 4), (4,), (2, 2, 2)], 1.0, 1.0),
            clip_case("below_max_unchanged", [(3, 4), (4,)], 0.1, 10.0),
            clip_case("large_values", [(64, 32), (32,)], 1e3, 0.5),
            # A norm of the order of the 1e-6 in max_norm / (total + 1e-6), so a formula without it fails.
            clip_case("tiny_norm", [(3, 4), (4,)], 1e-6, 1e-6),
        ]
    },
)

# MARK: learning-rate schedules


def warmup_then_decay(epoch):
    """The LambdaLR factor the Swift test also defines: 4 steps of linear warm-up, then 0.9 per step."""
    return min(1.0, (epoch + 1) / 4) * 0.9 ** max(0, epoch - 3)


def schedule_case(name, base_lr, make, count, parameters):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = make(optimizer)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(count):
        optimizer.step()  # no gradients: a no-op, but keeps the scheduler's call-order check quiet
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    return {"name": name, "baseLearningRate": base_lr, "parameters": parameters, "learningRates": rates}


S = torch.optim.lr_scheduler
write(
    "lr_schedules.json",
    {
        "cases": [
            schedule_case("StepLR", 0.1, lambda o: S.StepLR(o, step_size=3, gamma=0.5), 20, {"stepSize": 3, "gamma": 0.5}),
            schedule_case(
                "CosineAnnealingLR", 0.1, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3), 25,
                {"annealingSteps": 10, "minimumLearningRate": 1e-3},
            ),
            schedule_case(
                "LinearLR", 0.01, lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5), 10,
                {"startFactor": 0.1, "endFactor": 1.0, "totalSteps": 5},
            ),
            schedule_case("LinearLR", 0.05, lambda o: S.LinearLR(o), 8, {}),
            schedule_case("LambdaLR", 0.2, lambda o: S.LambdaLR(o, warmup_then_decay), 12, {}),
        ]
    },
)
