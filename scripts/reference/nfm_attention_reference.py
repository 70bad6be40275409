"""The NFM attention core of DESIGN.md §2 (steps 2–5), written plainly in PyTorch.

Shared by make_fixtures.py (ops.json) and make_attention_fixtures.py (attention.json); it is the
independent reference the fused Swift kernel is checked against, so it follows the text step by
step with ordinary tensor ops: resize, concatenate, null slot, softmax, top-k, weighted sum.

Pinned: torch==2.13.0+cpu, numpy (see make_fixtures.py for the install line).
"""
import numpy as np
import torch
import torch.nn.functional as F

EPSILON = 1e-7  # the reference's eps = 10e-8


def nfm_attention(query, keys, values, heads, key_size, value_size, top_k, temperature):
    """query [N, heads*dk, H, W]; keys[j] [N, heads*dk, Hj, Wj]; values[j] [N, heads*dv, Hj, Wj].

    Returns the output [N, heads*dv, H, W] and the final weights [N, heads, M+1, H, W]
    (memory order, the null slot last).
    """
    n, _, height, width = query.shape
    # Step 2: every entry resized to H×W by nearest interpolation, then a null slot of zeros.
    resized_keys = [F.interpolate(k, size=(height, width), mode="nearest") for k in keys]
    resized_values = [F.interpolate(v, size=(height, width), mode="nearest") for v in values]
    null_key = torch.zeros(n, heads * key_size, height, width, dtype=query.dtype)
    null_value = torch.zeros(n, heads * value_size, height, width, dtype=query.dtype)
    all_keys = torch.cat([k.unsqueeze(1) for k in resized_keys + [null_key]], dim=1)  # N, M+1, heads*dk, H, W
    all_values = torch.cat([v.unsqueeze(1) for v in resized_values + [null_value]], dim=1)
    slots = all_keys.shape[1]
    all_keys = all_keys.reshape(n, slots, heads, key_size, height, width)
    all_values = all_values.reshape(n, slots, heads, value_size, height, width)
    q = query.reshape(n, 1, heads, key_size, height, width)
    # Step 3: scores q·k_j / τ and a softmax over the M+1 slots.
    scores = (q * all_keys).sum(dim=3) / temperature  # N, M+1, heads, H, W
    weights = torch.softmax(scores, dim=1)
    # Step 4: top-k as the reference's Sparse_attention (Ke et al. 2018), which stores k+1 and
    # leaves the weights unchanged when there are at most k+1 slots.
    if slots > top_k + 1:
        delta = torch.topk(weights, top_k + 1, dim=1).values[:, -1:] + EPSILON
        weights = torch.clamp(weights - delta, min=0)
        weights = weights / (weights.sum(dim=1, keepdim=True) + EPSILON)
    # Step 5: o = Σ_j a''_j v_j per head, heads concatenated.
    output = (weights.unsqueeze(3) * all_values).sum(dim=1)  # N, heads, dv, H, W
    return output.reshape(n, heads * value_size, height, width), weights.permute(0, 2, 1, 3, 4)


def softmax_weights(query, keys, heads, key_size, temperature):
    """The softmax weights a [N, M+1, heads, H, W] before top-k, in float64 (for margin checks)."""
    n, _, height, width = query.shape
    q = torch.tensor(query, dtype=torch.float64).reshape(n, 1, heads, key_size, height, width)
    ks = [F.interpolate(torch.tensor(k, dtype=torch.float64), size=(height, width), mode="nearest") for k in keys]
    ks = torch.stack(ks + [torch.zeros(n, heads * key_size, height, width, dtype=torch.float64)], dim=1)
    ks = ks.reshape(n, len(keys) + 1, heads, key_size, height, width)
    return torch.softmax((q * ks).sum(dim=3) / temperature, dim=1).numpy()


def top_k_margin_violations(query, keys, heads, key_size, top_k, temperature, margin):
    """A mask [N, heads, H, W] of the pixels whose weights are within `margin` of the top-k boundary:
    the k-th, (k+1)-th and (k+2)-th largest weights must differ by more than `margin`, so that a
    float32 evaluation (or a finite-difference step) selects the same slots, and the kept mass
    Σ a' stays well away from 0."""
    a = softmax_weights(query, keys, heads, key_size, temperature)
    slots = a.shape[1]
    if slots <= top_k + 1:
        return np.zeros((a.shape[0], a.shape[2], a.shape[3], a.shape[4]), dtype=bool)
    ranked = -np.sort(-a, axis=1)
    return (ranked[:, top_k - 1] - ranked[:, top_k] <= margin) | (ranked[:, top_k] - ranked[:, top_k + 1] <= margin)


def query_away_from_ties(draw, keys, heads, key_size, top_k, temperature, margin, shape):
    """Draws a query with `draw(shape)` and redraws the (image, head, pixel) positions that sit near
    a top-k tie (see top_k_margin_violations) until none does."""
    query = draw(shape)
    for _ in range(1000):
        bad = top_k_margin_violations(query, keys, heads, key_size, top_k, temperature, margin)
        if not bad.any():
            return query
        fresh = draw(shape).reshape(shape[0], heads, key_size, shape[2], shape[3])
        q = query.reshape(shape[0], heads, key_size, shape[2], shape[3])
        mask = np.broadcast_to(bad[:, :, None], q.shape)
        query = np.where(mask, fresh, q).reshape(shape).astype(np.float32)
    raise RuntimeError("could not draw a query away from top-k ties")
