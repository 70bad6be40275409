"""Cross-check of the Sort-of-CLEVR baseline's learning in PyTorch (issue 11, results/README.md).

The medium pilots plateau at about 77% on non-relational questions, with questions about the two held-out
colours (one shape each in training) answered almost perfectly and the other four colours near 60–70%.
This trains the same baseline (the quick widths 24-48-96-192, Conv3×3/2 → ReLU → BatchNorm per layer, the
unpooled 5×5 map through the 1×1 conv to 64 channels, fc1 → ReLU → fc2 → ReLU → dropout 0.5 → fc3) the
same way (16 whole images with their 20 questions per step, Adam lr 1e-3) on the same data exported by
`nfm-classify generate`, and prints the in-distribution accuracy by colour every 1,000 steps, so that the
engine can be told apart from the model and the data.

    .build/release/nfm-classify generate --out /tmp/soc --train-images 9800 --test-images 500 --ood-images 10 --seed 1
    .venv-ref/bin/python scripts/results/torch_sort_of_clevr_baseline.py /tmp/soc 3000 [threads]

Its own initialisation and batch order, so it compares curves, not numbers.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

COLORS = ["red", "green", "blue", "orange", "gray", "yellow"]
NON_RELATIONAL = ["shape", "is_left", "is_top"]


def load(root, split):
    images = np.fromfile(f"{root}/{split}/images.u8", dtype=np.uint8).reshape(-1, 75, 75, 3)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    vectors, answers, kinds, colors = [], [], [], []
    for line in open(f"{root}/{split}/scenes.jsonl"):
        questions = json.loads(line)["questions"]
        vectors.append([q["vector"] for q in questions])
        answers.append([q["answer"] for q in questions])
        kinds.append([q["kind"] for q in questions])
        colors.append([q["color"] for q in questions])
    return images, torch.tensor(vectors).float(), torch.tensor(answers), np.array(kinds), np.array(colors)


class Baseline(nn.Module):
    def __init__(self, widths=(24, 48, 96, 192)):
        super().__init__()
        layers, channels = [], 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(width)]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(channels, 64, 1)
        self.fc1 = nn.Linear(64 * 5 * 5 + 11, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, images, questions, rows):
        features = self.conv1(self.trunk(images)).flatten(1)[rows]
        hidden = F.relu(self.fc1(torch.cat([features, questions], 1)))
        return F.log_softmax(self.fc3(F.dropout(F.relu(self.fc2(hidden)), 0.5, self.training)), 1)


def evaluate(model, test):
    images, vectors, answers, kinds, colors = test
    model.eval()
    correct = []
    with torch.no_grad():
        for start in range(0, len(images), 50):
            count = min(50, len(images) - start)
            rows = torch.arange(count).repeat_interleave(20)
            predicted = model(images[start:start + count], vectors[start:start + count].reshape(-1, 11), rows).argmax(1)
            correct.append((predicted == answers[start:start + count].reshape(-1)).numpy())
    model.train()
    correct, kinds, colors = np.concatenate(correct), kinds.reshape(-1), colors.reshape(-1)
    non_relational = np.isin(kinds, NON_RELATIONAL)
    result = {"all": correct.mean(), "non-relational": correct[non_relational].mean(), "relational": correct[~non_relational].mean()}
    for color in COLORS:
        result[f"non-relational {color}"] = correct[non_relational & (colors == color)].mean()
    return result


def main():
    root, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    torch.manual_seed(1)
    order = np.random.default_rng(1)
    train, test = load(root, "train"), load(root, "test")
    model = Baseline()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    permutation, position = order.permutation(len(train[0])), 0
    for step in range(1, steps + 1):
        if position + 16 > len(permutation):
            permutation, position = order.permutation(len(train[0])), 0
        batch = torch.from_numpy(permutation[position:position + 16])
        position += 16
        rows = torch.arange(16).repeat_interleave(20)
        loss = F.nll_loss(model(train[0][batch], train[1][batch].reshape(-1, 11), rows), train[2][batch].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 1000 == 0:
            print(step, ", ".join(f"{name} {value:.1%}" for name, value in evaluate(model, test).items()), flush=True)


if __name__ == "__main__":
    main()
