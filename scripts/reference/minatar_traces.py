#!/usr/bin/env python3
"""Record step-by-step reference traces of the five MinAtar games for the Swift parity tests.

Pinned reference: minatar==1.0.15 with numpy==2.4.6 (Python 3.11). The traces depend only on
numpy's legacy RandomState (MT19937), whose stream is frozen across numpy versions, but pin both
anyway. Run it in a throw-away virtual environment from the repository root:

    python3 -m venv .venv-minatar
    .venv-minatar/bin/pip install minatar==1.0.15 numpy==2.4.6
    .venv-minatar/bin/python scripts/reference/minatar_traces.py

It rewrites Tests/EnvsTests/Fixtures/<game>.trace for asterix, breakout, freeway, seaquest and
space_invaders and prints coverage statistics (episodes, rewards, difficulty reached).

Every trace drives `minatar.Environment(game, sticky_action_prob=0.1)` exactly as a user would:
`env.seed(seed); env.reset()` (the seeded equivalent of the Swift `Environment(game:seed:)`), then
`act` for a fixed number of steps, calling `env.reset()` after every terminal step. Actions come from
generators separate from the environment's stream, so they are recorded:
  * policy 0, "random": uniform over all six actions from RandomState(action_seed).
  * policy 1, "lookahead": with probability 0.2 a uniform random action, otherwise the action whose
    short simulated futures (deep copies of the environment, random stream included, so the real
    stream is untouched) score best. It survives longer than random play, so difficulty ramping,
    brick refills, wave clears and Seaquest's six-diver surfacing get exercised too.

File format (little endian), decoded by Tests/EnvsTests/TraceFixture.swift:
    magic  b"MINATAR1"
    u8     channel count C;  u8 name length;  name bytes (ASCII)
    u8     trace count
    per trace:
        u32 seed;  u32 action seed;  u32 step count;  u8 policy;  u8 difficulty ramping (0/1)
        f64 sticky action probability
        B bytes: the observation after reset, packed (B = ceil(C*100/8))
        per step:
            u8  flags: bits 0-2 requested action, bits 3-5 executed action (after sticky actions),
                bit 6 terminal
            i8  reward
            delta: u8 n, then n pairs (u8 byte index, u8 xor): the observation after the step,
                as the bytes that changed from the previous observation in the file
            if terminal, a second delta: the observation after env.reset()
An observation is packed channel-first (CHW): bit i = channel*100 + row*10 + column lives in byte
i // 8 at bit i % 8 (numpy packbits, bitorder "little"). MinAtar's state() is HWC; it is transposed.
"""
import copy
import os
import struct
import sys

import numpy as np
from minatar import Environment

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]
STICKY = 0.1
EPSILON = 0.2
HORIZON = 8
ROLLOUTS = 2
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "EnvsTests", "Fixtures")

# (seed, policy, difficulty ramping, steps); Freeway episodes last 2501 steps, so its traces are longer.
def plan(game):
    steps = 5200 if game == "freeway" else 2000
    traces = [(1, 0, True, steps), (2, 1, True, steps), (3, 1, True, steps)]
    if game in ("asterix", "seaquest", "space_invaders"):  # the games whose difficulty ramps
        traces.append((4, 1, False, 1500))
    return traces


def pack(state):
    """HWC bool state -> CHW bits, little bit order."""
    chw = np.transpose(state.astype(np.uint8), (2, 0, 1)).reshape(-1)
    return np.packbits(chw, bitorder="little").tobytes()


def delta(previous, current):
    pairs = [(i, a ^ b) for i, (a, b) in enumerate(zip(previous, current)) if a != b]
    out = bytearray([len(pairs)])
    for i, x in pairs:
        out += bytes([i, x])
    return bytes(out)


def shaping(game, g):
    """Small terms that steer the lookahead towards deeper game states."""
    if game == "breakout":
        return -0.1 * abs(g.pos - g.ball_x)
    if game == "freeway":
        return -0.1 * g.pos
    if game == "seaquest":
        value = 0.5 * g.diver_count
        if g.diver_count > 0 and (g.diver_count >= 6 or g.oxygen < 60):
            value -= 0.3 * g.sub_y
        return value
    if game == "space_invaders":
        columns = np.nonzero(g.alien_map.sum(axis=0))[0]
        return -0.05 * min(abs(g.pos - c) for c in columns) if len(columns) else 0.0
    return 0.0


def continuation(game, g, rollout_rng):
    """The action a simulated future takes after the candidate: Breakout follows the ball, the
    rest act at random."""
    if game == "breakout":
        return 1 if g.pos > g.ball_x else 3 if g.pos < g.ball_x else 0
    return int(rollout_rng.randint(6))


def breakout_target(g):
    """Column where the ball will sit on row 8 before it falls to the paddle row (bricks included)."""
    g = copy.deepcopy(g)
    for _ in range(40):
        if g.terminal:
            break
        if g.ball_y == 8 and g.ball_dir in (2, 3):
            return g.ball_x
        g.act(0)
    return g.ball_x


def lookahead(game, env, rollout_rng):
    if game == "breakout":
        target = breakout_target(env.env)
        pos = env.env.pos
        return [1] if pos > target else [3] if pos < target else [0]
    values = []
    for action in range(6):
        total = 0.0
        for _ in range(ROLLOUTS):
            sim = copy.deepcopy(env)
            reward, terminal = sim.act(action)
            value = float(reward)
            for _ in range(HORIZON - 1):
                if terminal:
                    break
                reward, terminal = sim.act(continuation(game, sim.env, rollout_rng))
                value += float(reward)
            total += value - 100.0 * terminal + shaping(game, sim.env)
        values.append(total)
    best = max(values)
    return [a for a in range(6) if values[a] >= best - 1e-9]


def record(game, seed, policy, ramping, steps, stats):
    env = Environment(game, sticky_action_prob=STICKY, difficulty_ramping=ramping)
    env.seed(seed)
    env.reset()
    action_seed = 1000 + seed
    action_rng = np.random.RandomState(action_seed)
    rollout_rng = np.random.RandomState(2000 + seed)
    channels = env.state_shape()[2]
    out = bytearray(struct.pack("<IIIBBd", seed, action_seed, steps, policy, int(ramping), STICKY))
    previous = pack(env.state())
    out += previous
    observations = [previous]
    episode_return = 0
    for _ in range(steps):
        if policy == 0 or action_rng.rand() < EPSILON:
            action = int(action_rng.randint(6))
        else:
            best = lookahead(game, env, rollout_rng)
            action = best[int(action_rng.randint(len(best)))]
        bricks_before = np.count_nonzero(env.env.brick_map) if game == "breakout" else None
        reward, terminal = env.act(action)
        if bricks_before == 0 and np.count_nonzero(env.env.brick_map) == 30:
            stats["brick_refills"] += 1
        executed = env.last_action
        reward = int(reward)
        assert -128 <= reward <= 127
        stats["reward"] += reward
        stats["max_step_reward"] = max(stats["max_step_reward"], reward)
        episode_return += reward
        ramp = env.env.difficulty_ramp()
        if ramp is not None:
            stats["max_ramp"] = max(stats["max_ramp"], ramp)
        if game == "seaquest":
            stats["max_divers"] = max(stats["max_divers"], env.env.diver_count)
        if game == "space_invaders" and reward > 0 and np.count_nonzero(env.env.alien_map) == 24:
            stats["waves_cleared"] += 1
        out += struct.pack("<Bb", action | (executed << 3) | (int(terminal) << 6), reward)
        current = pack(env.state())
        out += delta(previous, current)
        observations.append(current)
        previous = current
        if terminal:
            stats["episodes"] += 1
            stats["best_return"] = max(stats["best_return"], episode_return)
            episode_return = 0
            env.reset()
            current = pack(env.state())
            out += delta(previous, current)
            observations.append(current)
            previous = current
    return channels, bytes(out), observations


def decode(data):
    """Read a file back into per-trace observation lists, so the format is checked to round-trip."""
    assert data[:8] == b"MINATAR1"
    channels, name_length = data[8], data[9]
    at = 10 + name_length
    count = data[at]
    at += 1
    size = (channels * 100 + 7) // 8
    traces = []
    for _ in range(count):
        _, _, steps, _, _, _ = struct.unpack_from("<IIIBBd", data, at)
        at += struct.calcsize("<IIIBBd")
        observation = bytearray(data[at:at + size])
        at += size
        observations = [bytes(observation)]

        def apply(at):
            n = data[at]
            for k in range(n):
                observation[data[at + 1 + 2 * k]] ^= data[at + 2 + 2 * k]
            observations.append(bytes(observation))
            return at + 1 + 2 * n

        for _ in range(steps):
            flags = data[at]
            at = apply(at + 2)
            if flags & 64:
                at = apply(at)
        traces.append(observations)
    assert at == len(data)
    return traces


def main():
    games = sys.argv[1:] or GAMES
    os.makedirs(OUT_DIR, exist_ok=True)
    for game in games:
        stats = dict(reward=0, episodes=0, best_return=0, max_ramp=0, max_divers=0, waves_cleared=0,
                     max_step_reward=0, brick_refills=0)
        traces = []
        recorded = []
        channels = None
        for seed, policy, ramping, steps in plan(game):
            channels, blob, observations = record(game, seed, policy, ramping, steps, stats)
            traces.append(blob)
            recorded.append(observations)
        name = game.encode("ascii")
        data = b"MINATAR1" + bytes([channels, len(name)]) + name + bytes([len(traces)]) + b"".join(traces)
        assert decode(data) == recorded, "the trace format does not round-trip"
        path = os.path.join(OUT_DIR, game + ".trace")
        with open(path, "wb") as handle:
            handle.write(data)
        total_steps = sum(p[3] for p in plan(game))
        print(f"{game}: {len(data)} bytes, {total_steps} steps, {stats}")


if __name__ == "__main__":
    main()
