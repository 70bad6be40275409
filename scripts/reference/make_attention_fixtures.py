#!/usr/bin/env python3
"""Reference values for the fused NFM attention (DESIGN.md §2 steps 2–5), computed with PyTorch.

Pinned: torch==2.13.0+cpu, numpy (install as in make_fixtures.py). Run from the repository root:
    .venv-ref/bin/python scripts/reference/make_attention_fixtures.py
It writes Tests/NFMTensorTests/Fixtures/attention.json. CI never runs Python; the JSON is committed.

Each scenario plays 2 passes over 4 layer positions of different spatial sizes. Every slot writes its
key and value to the memory and then reads it (the paper's pass 1 only writes; reading there too covers
memories of 1 to 8 entries, below and above the top-k threshold). So read r sees entries 0…r, at
resolutions mixed up and down. Scenarios vary heads (1, 2, 4), d_k ≠ d_v, k (1, 2, 3, 5, and one
larger than every memory), τ (default d_k^0.5 or explicit) and the batch.

Recorded per read: the query, the upstream seed, the output and the final weights. Recorded per
scenario: the gradients of Σ_r Σ(output_r · seed_r) with respect to every query, key and value, so
that gradients accumulated over reads are checked too. Everything is computed in float64 from the
float32 inputs; queries are redrawn where a pixel sits within 1e-3 of a top-k tie, so that a float32
evaluation selects the same slots.
"""
import json
import os

import numpy as np
import torch

from nfm_attention_reference import nfm_attention, query_away_from_ties

assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
rng = np.random.default_rng(20210302)
SIZES = [8, 5, 3, 1]  # non-integer ratios and a 1×1 entry exercise the nearest index rule and scatter-adds
PASSES = 2


def packed(a):
    """Float32 values as JSON numbers with 9 significant digits, enough to round-trip exactly."""
    return [float(f"{v:.9g}") for v in np.asarray(a, dtype=np.float32).ravel()]


def tensor(a):
    return {"shape": list(a.shape), "data": packed(a)}


def normal(*shape):
    return np.asarray(rng.standard_normal(shape), dtype=np.float32)


def scenario(name, batch, heads, key_size, value_size, top_k, temperature):
    tau = temperature if temperature is not None else key_size ** 0.5
    keys, values, queries, seeds = [], [], [], []
    for _ in range(PASSES):
        for size in SIZES:
            keys.append(normal(batch, heads * key_size, size, size))
            values.append(normal(batch, heads * value_size, size, size))
            shape = (batch, heads * key_size, size, size)
            queries.append(query_away_from_ties(lambda s: normal(*s), keys, heads, key_size, top_k, tau, 1e-3, shape))
            seeds.append(normal(batch, heads * value_size, size, size))

    as_torch = lambda arrays: [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    key_tensors, value_tensors, query_tensors = as_torch(keys), as_torch(values), as_torch(queries)
    reads, loss = [], 0
    for r, (query, seed) in enumerate(zip(query_tensors, seeds)):
        output, weights = nfm_attention(query, key_tensors[: r + 1], value_tensors[: r + 1],
                                        heads, key_size, value_size, top_k, tau)
        loss = loss + (output * torch.tensor(seed, dtype=torch.float64)).sum()
        reads.append({"query": tensor(queries[r]), "seed": tensor(seed),
                      "output": tensor(output.detach().numpy()), "weights": tensor(weights.detach().numpy())})
    loss.backward()
    return {
        "name": name, "batch": batch, "heads": heads, "keySize": key_size, "valueSize": value_size,
        "topK": top_k, "temperature": temperature,
        "keys": [tensor(k) for k in keys], "values": [tensor(v) for v in values], "reads": reads,
        "gradients": {
            "queries": [tensor(q.grad.numpy()) for q in query_tensors],
            "keys": [tensor(k.grad.numpy()) for k in key_tensors],
            "values": [tensor(v.grad.numpy()) for v in value_tensors],
        },
    }


scenarios = [
    scenario("heads4_top3_default_tau", batch=2, heads=4, key_size=2, value_size=1, top_k=3, temperature=None),
    scenario("heads1_top1_tau0.8", batch=2, heads=1, key_size=3, value_size=2, top_k=1, temperature=0.8),
    scenario("heads2_top2", batch=1, heads=2, key_size=3, value_size=1, top_k=2, temperature=None),
    scenario("heads1_top5", batch=2, heads=1, key_size=2, value_size=3, top_k=5, temperature=1.5),
    scenario("heads2_top12_never_sparse", batch=1, heads=2, key_size=3, value_size=2, top_k=12, temperature=None),
]
out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "NFMTensorTests", "Fixtures", "attention.json")
with open(out, "w") as f:
    json.dump({"generator": "scripts/reference/make_attention_fixtures.py", "torch": torch.__version__,
               "sizes": SIZES, "passes": PASSES, "scenarios": scenarios}, f)
print(f"wrote {len(scenarios)} scenarios ({os.path.getsize(out)} bytes) to {os.path.normpath(out)}")
