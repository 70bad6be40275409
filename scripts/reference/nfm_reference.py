"""Neural Function Modules (Lamb et al., AISTATS 2021) and the Sort-of-CLEVR models, in plain PyTorch.

This is the independent reference for DESIGN.md §2, written from the text: the NFM layer (1×1 key,
query and value convolutions; every written entry resized to the reader's H×W by nearest
interpolation; a null slot; softmax with τ = d_k^0.5; top-k sparsity; out block
Conv3×3 → BatchNorm2d → ReLU → Conv3×3; a gate γ initialised to 0) and the two reference models,
`CNN_MLP` (the baseline) and `CNN_MLP_NFL` (two-pass NFM). Their `state_dict()` keys are exactly those
of `reference/sort_of_clevr_nfm_state_dict.tsv`, so a checkpoint written by NFM-Swift loads here and
the other way round.

Used by `make_model_fixtures.py` (the Swift parity fixtures) and by the benchmark comparison. API:

    model = build_model("nfm", widths=(48, 96, 192, 384), heads=4, key_size=16, value_size=16, top_k=3)
    optimizer = build_optimizer(model)              # Adam, lr 1e-4 (the reference's)
    loss = train_step(model, optimizer, images, questions, answers)
    log_probs = model(images, questions)            # [N, 10]

Differences from the authors' code, on purpose (DESIGN.md §2): k is a real parameter (the authors'
code asks for 5 and runs with 3, so 3 is the default), and the head's dropout is off in eval mode.

Pinned: torch==2.13.0+cpu, numpy. Install offline from pip's local wheel folder:
    python3 -m venv .venv-ref && .venv-ref/bin/pip install "torch==2.13.0+cpu" numpy safetensors
Run from the repository root to check the key names against the TSV:
    .venv-ref/bin/python scripts/reference/nfm_reference.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

# The additive constant of the top-k shift and of the renormalisation (the authors' eps = 10e-8).
EPSILON = 1e-7
# The Sort-of-CLEVR question vector (6 colours, 2 types, 3 subtypes) and the 10 answers.
QUESTION_SIZE = 11
ANSWERS = 10
REFERENCE_WIDTHS = (48, 96, 192, 384)
TSV = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "NFMLayersTests", "Fixtures",
    "sort_of_clevr_nfm_state_dict.tsv")


def sparse_top_k(weights, top_k, dim):
    """Top-k sparsity of Sparse Attentive Backtracking (Ke et al. 2018), as DESIGN.md §2 step 4.

    Applied after the softmax over `dim`. With more than k+1 slots, δ is the (k+1)-th largest weight
    + 1e-7, a' = max(a − δ, 0) and a'' = a' / (Σ a' + 1e-7): the k largest weights survive, shifted
    and renormalised, and the gradient flows through them and through δ. With at most k+1 slots the
    weights are returned unchanged, as in the authors' `Sparse_attention` (it stores k+1 as its
    `top_k` and returns early when `time_step <= top_k`).
    """
    slots = weights.shape[dim]
    if slots <= top_k + 1:
        return weights
    delta = weights.topk(top_k + 1, dim=dim).values.narrow(dim, top_k, 1) + EPSILON
    kept = torch.clamp(weights - delta, min=0)
    return kept / (kept.sum(dim=dim, keepdim=True) + EPSILON)


class NeuralFunctionModules(nn.Module):
    """The NFM layers of a network: one set of per-slot layers for every (pass, position) slot.

    Keys as the authors' module (`query_layers.s`, `key_layers.s`, `val_layers.s`,
    `out_layers.s.{0,1,3}`, `gammas.s`). Slots that never read keep their query and out layers (the
    authors' model has them); they get no gradient.
    """

    def __init__(self, slot_channels, heads, key_size, value_size, top_k, temperature=None):
        super().__init__()
        self.heads, self.key_size, self.value_size, self.top_k = heads, key_size, value_size, top_k
        # τ = d_k^0.5 (the authors' `concentration` = 0.5).
        self.temperature = key_size ** 0.5 if temperature is None else temperature
        self.query_layers = nn.ModuleList([nn.Conv2d(c, heads * key_size, 1) for c in slot_channels])
        self.key_layers = nn.ModuleList([nn.Conv2d(c, heads * key_size, 1) for c in slot_channels])
        self.val_layers = nn.ModuleList([nn.Conv2d(c, heads * value_size, 1) for c in slot_channels])
        self.out_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(heads * value_size, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1))
            for c in slot_channels])
        # γ starts at 0, so that a fresh model computes exactly its baseline.
        self.gammas = nn.ParameterList([nn.Parameter(torch.zeros(())) for _ in slot_channels])
        # Diagnostics for fixtures: when a list, each read appends its `top_k_margins`.
        self.margins = None

    def forward(self, x, slot, read, write, memory):
        """Slot `slot` on x [N, C_s, H, W]. `memory` is a list of (key, value) pairs that starts empty
        for each batch; with `write` this slot's key and value are appended first, so a read sees
        every slot written so far, this one included. Returns x + γ_s · out_s(attention) after a
        read, x otherwise."""
        if write:
            memory.append((self.key_layers[slot](x), self.val_layers[slot](x)))
        if not read or not memory:
            return x
        attended = self.attend(self.query_layers[slot](x), memory)
        return x + self.gammas[slot] * self.out_layers[slot](attended)

    def attend(self, query, memory):
        """DESIGN.md §2 steps 2–5 for query [N, heads·dk, H, W]; returns [N, heads·dv, H, W]."""
        n, _, height, width = query.shape
        heads, dk, dv = self.heads, self.key_size, self.value_size
        # Step 2: every entry resized to H×W (nearest), then the null slot: a zero key and value.
        keys = [F.interpolate(k, size=(height, width), mode="nearest") for k, _ in memory]
        values = [F.interpolate(v, size=(height, width), mode="nearest") for _, v in memory]
        keys.append(query.new_zeros(n, heads * dk, height, width))
        values.append(query.new_zeros(n, heads * dv, height, width))
        slots = len(keys)
        keys = torch.stack(keys, dim=1).reshape(n, slots, heads, dk, height, width)
        values = torch.stack(values, dim=1).reshape(n, slots, heads, dv, height, width)
        q = query.reshape(n, heads, dk, height, width)
        # Step 3: scores q·k_j / τ, softmax over the M+1 slots.
        scores = torch.einsum("nhdyx,nshdyx->nshyx", q, keys) / self.temperature
        weights = torch.softmax(scores, dim=1)
        if self.margins is not None:
            self.margins.append(top_k_margins(scores, weights, self.top_k))
        # Step 4: top-k sparsity.
        weights = sparse_top_k(weights, self.top_k, dim=1)
        # Step 5: o = Σ_j a''_j v_j per head, heads concatenated.
        output = torch.einsum("nshyx,nshdyx->nhdyx", weights, values)
        return output.reshape(n, heads * dv, height, width)


def top_k_margins(scores, weights, top_k):
    """How far one read is from the places where top-k sparsity is steep or jumps, over every image,
    head and pixel: (score gap, kept mass).

    The score gap is the smallest difference between the scores ranked k and k+1 and between those
    ranked k+1 and k+2 (1-based), i.e. log a_(k) − log a_(k+1) and so on. Where it is near 0, float
    rounding can change which slots top-k keeps, and the gradient jumps.

    The kept mass is the smallest Σ a' = Σ_kept (a_j − δ). The renormalisation a' / (Σ a' + 1e-7) is
    steep where it is small (with k = 1, a''_1 = a'_1 / (a'_1 + 1e-7) is a smoothed step), so float32
    cannot compute its gradient accurately there.

    Both are infinite when top-k does not apply. Fixtures keep them clear of 0."""
    slots = scores.shape[1]
    if slots <= top_k + 1:
        return float("inf"), float("inf")
    ranked = scores.detach().sort(dim=1, descending=True).values
    gaps = torch.stack([ranked[:, top_k - 1] - ranked[:, top_k], ranked[:, top_k] - ranked[:, top_k + 1]])
    weights = weights.detach()
    delta = weights.topk(top_k + 1, dim=1).values.narrow(1, top_k, 1) + EPSILON
    kept = torch.clamp(weights - delta, min=0).sum(dim=1)
    return gaps.min().item(), kept.min().item()


def _pass_suffix(index):
    """The authors' layer names: conv1 … for pass 1, conv1b … for pass 2, then c, d, …"""
    return "" if index == 0 else chr(ord("a") + index)


class ConvInputModel(nn.Module):
    """The convolutional trunk (the authors' `ConvInputModel`, and with NFM `ConvInputModelNFL`).

    Each pass has its own Conv3×3 (stride 2, padding 1) → ReLU → BatchNorm2d per layer, all on the
    image. With NFM, pass 1 writes only and every later pass reads what every slot wrote, then writes.
    """

    def __init__(self, widths, passes=1, heads=None, key_size=None, value_size=None, top_k=None):
        super().__init__()
        self.widths, self.passes = list(widths), passes
        for p in range(passes):
            channels = 3
            for layer, width in enumerate(widths):
                setattr(self, f"conv{layer + 1}{_pass_suffix(p)}", nn.Conv2d(channels, width, 3, stride=2, padding=1))
                setattr(self, f"batchNorm{layer + 1}{_pass_suffix(p)}", nn.BatchNorm2d(width))
                channels = width
        self.ad = None
        if heads is not None:
            self.ad = NeuralFunctionModules(list(widths) * passes, heads, key_size, value_size, top_k)
        else:
            assert passes == 1, "several passes need NFM layers to connect them"

    def forward(self, images):
        memory = []
        x = images
        for p in range(self.passes):
            x = images
            for layer in range(len(self.widths)):
                conv = getattr(self, f"conv{layer + 1}{_pass_suffix(p)}")
                norm = getattr(self, f"batchNorm{layer + 1}{_pass_suffix(p)}")
                x = norm(F.relu(conv(x)))
                if self.ad is not None:
                    x = self.ad(x, p * len(self.widths) + layer, read=p > 0, write=True, memory=memory)
        return x


class FCOutputModel(nn.Module):
    """fc2 → ReLU → dropout → fc3 → log-softmax (the authors' `FCOutputModel`). Dropout follows the
    module's mode; the authors' code leaves it on in eval mode, a bug (DESIGN.md §2)."""

    def __init__(self, hidden_size, answers, dropout):
        super().__init__()
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, answers)
        self.dropout = dropout

    def forward(self, x):
        x = F.dropout(F.relu(self.fc2(x)), p=self.dropout, training=self.training)
        return F.log_softmax(self.fc3(x), dim=1)


class CNN_MLP(nn.Module):
    """The Sort-of-CLEVR model: trunk, avg-pool 4, nearest-resize to 5×5, 1×1 `conv1`, flatten,
    concatenate the question, `fc1` → ReLU → `fcout`. Without NFM this is the authors' `CNN_MLP`;
    `CNN_MLP_NFL` below adds the NFM passes."""

    def __init__(self, trunk, head_channels=64, hidden_size=256, question_size=QUESTION_SIZE,
                 answers=ANSWERS, dropout=0.5):
        super().__init__()
        self.conv = trunk
        self.conv1 = nn.Conv2d(trunk.widths[-1], head_channels, 1)
        self.fc1 = nn.Linear(head_channels * 5 * 5 + question_size, hidden_size)
        self.fcout = FCOutputModel(hidden_size, answers, dropout)

    def forward(self, images, questions):
        x = self.conv(images)
        x = F.interpolate(F.avg_pool2d(x, 4), size=(5, 5), mode="nearest")
        x = self.conv1(x).flatten(1)
        x = F.relu(self.fc1(torch.cat([x, questions], dim=1)))
        return self.fcout(x)


class CNN_MLP_NFL(CNN_MLP):
    """The two-pass NFM model (the authors' `CNN_MLP_NFL`); same head as `CNN_MLP`."""


def build_model(kind="nfm", widths=REFERENCE_WIDTHS, heads=4, key_size=16, value_size=16, top_k=3, *,
                passes=2, head_channels=64, hidden_size=256, dropout=0.5):
    """`kind` "nfm" gives `CNN_MLP_NFL` (`passes` passes with NFM), "baseline" gives `CNN_MLP` (one
    pass, no NFM; the NFM arguments are ignored). The defaults are the reference model's; the head
    sizes (`head_channels`, `hidden_size`) and `dropout` are the authors' 64, 256 and 0.5."""
    head = dict(head_channels=head_channels, hidden_size=hidden_size, dropout=dropout)
    if kind == "nfm":
        return CNN_MLP_NFL(ConvInputModel(widths, passes, heads, key_size, value_size, top_k), **head)
    if kind == "baseline":
        return CNN_MLP(ConvInputModel(widths), **head)
    raise ValueError(f"unknown model kind {kind!r}; expected 'nfm' or 'baseline'")


def build_optimizer(model, learning_rate=1e-4):
    """Adam with the reference's learning rate."""
    return torch.optim.Adam(model.parameters(), lr=learning_rate)


def train_step(model, optimizer, images, questions, answers):
    """One optimisation step (NLL of the log-probabilities, batch mean) in train mode; returns the
    loss as a float. images [N, 3, 75, 75], questions [N, 11], answers [N] (int64 class indices)."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.nll_loss(model(images, questions), answers)
    loss.backward()
    optimizer.step()
    return loss.item()


def read_tsv(path=TSV):
    """The reference keys with their shapes and dtypes, in order: [(key, shape, dtype)]."""
    entries = []
    with open(path) as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(fields) != 3 or fields[0] == "key":
                continue
            shape = [int(s) for s in fields[1].strip("[]").split(",") if s.strip()]
            entries.append((fields[0], shape, fields[2]))
    return entries


def check_against_tsv(model, path=TSV):
    """Asserts that `model.state_dict()` has exactly the TSV's keys, order, shapes and dtypes."""
    expected = read_tsv(path)
    state = model.state_dict()
    assert list(state.keys()) == [key for key, _, _ in expected], "state_dict keys differ from the TSV"
    for key, shape, dtype in expected:
        assert list(state[key].shape) == shape, f"{key}: shape {list(state[key].shape)}, TSV {shape}"
        assert str(state[key].dtype) == f"torch.{dtype}", f"{key}: dtype {state[key].dtype}, TSV {dtype}"
    return len(expected), sum(v.numel() for v in state.values())


if __name__ == "__main__":
    assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
    torch.manual_seed(0)
    keys, values = check_against_tsv(build_model("nfm"))
    assert (keys, values) == (192, 6_898_530), (keys, values)
    baseline = build_model("baseline").state_dict()
    assert not any(".ad." in key or "conv1b" in key for key in baseline), "the baseline has NFM keys"
    print(f"CNN_MLP_NFL matches the TSV: {keys} keys, {values:,} values; CNN_MLP has {len(baseline)} keys")
