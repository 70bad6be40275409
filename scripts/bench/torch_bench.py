"""The PyTorch and MinAtar side of `scripts/bench/compare.sh`: the same figures as `nfm-bench`, printed as
JSON lines with the same fields, so the two can be compared ratio by ratio.

    torch_bench.py model --model nfm --batch 64 [--iterations 20 --warmup 3]   train step, inference, peak RSS
    torch_bench.py games [--steps 20000]                                         MinAtar env steps/s, all five games
    torch_bench.py dqn [--frames 100] [--threads 1]                             DQN training frames/s (MinAtar's network)

Each figure is the median over the timed iterations after the warm-up, with the spread, in the
units nfm-bench uses (ms, steps/s, frames/s). The Sort-of-CLEVR models come from the reference
implementation, `scripts/reference/nfm_reference.py` (build_model, build_optimizer, train_step).

Pinned: torch==2.13.0+cpu (from pip's local wheel folder), numpy, minatar==1.0.15:
    python3 -m venv .venv-bench && .venv-bench/bin/pip install "torch==2.13.0+cpu" numpy minatar==1.0.15
"""
import argparse
import json
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.environ.get("NFM_REFERENCE_DIR", os.path.join(REPOSITORY, "scripts", "reference")))

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]


def summary(values, unit):
    """Median, min, max and quartiles, as nfm-bench's Summary."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "median": float(np.percentile(values, 50)), "minimum": float(values.min()), "maximum": float(values.max()),
        "lowerQuartile": float(np.percentile(values, 25)), "upperQuartile": float(np.percentile(values, 75)),
        "iterations": int(values.size), "unit": unit,
    }


def rate(times_ms, amount, unit):
    """Milliseconds per iteration → `amount` per second (the spread inverts: the slowest is the minimum)."""
    return summary([amount / t * 1e3 for t in times_ms], unit)


def time_ms(warmup, iterations, body):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        body()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def peak_resident_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def model_benchmark(args):
    import nfm_reference
    torch.manual_seed(7)
    model = nfm_reference.build_model(args.model, widths=(48, 96, 192, 384), heads=4, key_size=16, value_size=16,
                                      top_k=3)
    optimizer = nfm_reference.build_optimizer(model)
    batch = args.batch
    images = torch.rand(batch, 3, 75, 75)
    questions = torch.zeros(batch, 11)
    questions[torch.arange(batch), torch.randint(0, 6, (batch,))] = 1
    questions[torch.arange(batch), 6 + torch.randint(0, 2, (batch,))] = 1
    questions[torch.arange(batch), 8 + torch.randint(0, 3, (batch,))] = 1
    answers = torch.randint(0, 10, (batch,))

    train = time_ms(args.warmup, args.iterations, lambda: nfm_reference.train_step(model, optimizer, images, questions, answers))
    model.eval()

    def infer():
        with torch.no_grad():
            model(images, questions)

    inference = time_ms(args.warmup, args.iterations, infer)
    print(json.dumps({
        "model": args.model, "batch": batch, "trainStep": summary(train, "ms"), "inference": summary(inference, "ms"),
        "peakResidentBytes": peak_resident_bytes(), "torch": torch.__version__, "threads": torch.get_num_threads(),
    }, sort_keys=True), flush=True)


def games_benchmark(args):
    from minatar import Environment
    for game in GAMES:
        environment = Environment(game)
        environment.seed(0)
        environment.reset()
        generator = np.random.RandomState(5)
        actions = generator.randint(0, 6, size=4096).tolist()
        step = [0]

        def run():
            for _ in range(args.steps):
                _, terminal = environment.act(actions[step[0] & 4095])
                environment.state()
                if terminal:
                    environment.reset()
                step[0] += 1

        times = time_ms(args.warmup, args.iterations, run)
        print(json.dumps({"game": game, "stepsPerSecond": rate(times, args.steps, "steps/s")}, sort_keys=True), flush=True)


class QNetwork(nn.Module):
    """MinAtar's examples/dqn.py network: Conv(in → 16, 3×3, stride 1) → ReLU → Linear(1024 → 128) → ReLU → Linear(→ actions)."""

    def __init__(self, in_channels, num_actions):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, kernel_size=3, stride=1)
        self.fc_hidden = nn.Linear(16 * 8 * 8, 128)
        self.output = nn.Linear(128, num_actions)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.relu(self.fc_hidden(x.view(x.size(0), -1)))
        return self.output(x)


def dqn_benchmark(args):
    """The training loop of MinAtar's dqn.py past its replay start: each frame one ε-greedy step (a forward
    pass on the state), one stored transition, one update on 32 sampled transitions (target network
    forward, Q forward and backward, smooth-L1, centered RMSprop). The same loop as nfm-bench dqn."""
    from minatar import Environment
    torch.set_num_threads(args.threads)
    torch.manual_seed(9)
    random.seed(9)
    environment = Environment("breakout")
    environment.seed(0)
    environment.reset()
    channels, actions, batch, capacity, replay_start = environment.state_shape()[2], 6, 32, 10_000, 1_000
    gamma, epsilon = 0.99, 0.1
    network, target = QNetwork(channels, actions), QNetwork(channels, actions)
    target.load_state_dict(network.state_dict())
    optimizer = torch.optim.RMSprop(network.parameters(), lr=0.00025, alpha=0.95, centered=True, eps=0.01)

    def observe():
        return torch.tensor(environment.state(), dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)

    memory = []
    position = [0]
    updates = [0]
    state = [observe()]

    def play_frame(train):
        if random.random() < epsilon:
            action = random.randrange(actions)
        else:
            with torch.no_grad():
                action = network(state[0]).max(1)[1].item()
        reward, terminal = environment.act(action)
        next_state = observe()
        transition = (state[0], next_state, action, reward, terminal)
        if len(memory) < capacity:
            memory.append(transition)
        else:
            memory[position[0]] = transition
        position[0] = (position[0] + 1) % capacity
        if terminal:
            environment.reset()
            state[0] = observe()
        else:
            state[0] = next_state
        if not train:
            return
        sample = random.sample(memory, batch)
        states = torch.cat([t[0] for t in sample])
        next_states = torch.cat([t[1] for t in sample])
        chosen = torch.tensor([[t[2]] for t in sample])
        rewards = torch.tensor([[float(t[3])] for t in sample])
        terminals = torch.tensor([[float(t[4])] for t in sample])
        q_values = network(states).gather(1, chosen)
        with torch.no_grad():
            next_values = target(next_states).max(1)[0].unsqueeze(1)
        targets = rewards + gamma * (1 - terminals) * next_values
        loss = F.smooth_l1_loss(q_values, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        updates[0] += 1
        if updates[0] % 1000 == 0:
            target.load_state_dict(network.state_dict())

    for _ in range(replay_start):
        play_frame(False)

    def run():
        for _ in range(args.frames):
            play_frame(True)

    times = time_ms(args.warmup, args.iterations, run)
    print(json.dumps({"game": "breakout", "batch": batch, "framesPerSecond": rate(times, args.frames, "frames/s")},
                     sort_keys=True), flush=True)


def main():
    assert torch.__version__.startswith("2.13.0"), f"pinned torch 2.13.0, found {torch.__version__}"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function in [("model", model_benchmark), ("games", games_benchmark), ("dqn", dqn_benchmark)]:
        command = commands.add_parser(name)
        command.set_defaults(function=function)
        command.add_argument("--quick", action="store_true", help="5 timed iterations after 1 warm-up")
        command.add_argument("--iterations", type=int)
        command.add_argument("--warmup", type=int)
        if name == "model":
            command.add_argument("--model", choices=["baseline", "nfm"], default="nfm")
            command.add_argument("--batch", type=int, default=64)
        if name == "games":
            command.add_argument("--steps", type=int, default=20_000)
        if name == "dqn":
            command.add_argument("--frames", type=int, default=100)
            command.add_argument("--threads", type=int, default=1, help="torch threads (1 is MinAtar's best here)")
    args = parser.parse_args()
    args.iterations = args.iterations or (5 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.function(args)


if __name__ == "__main__":
    main()
