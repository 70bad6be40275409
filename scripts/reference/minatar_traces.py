#!/usr/bin/env python3
"""Record step-by-step reference traces of the five MinAtar games for the Swift parity tests.

Pinned reference: minatar==1.0.15 with numpy==2.4.6 (Python 3.11). The traces depend only on
numpy's legacy RandomState (MT19937), whose stream is frozen across numpy versions, but pin both
anyway. Run it in a throw-away virtual environment from the repository root:

    python3 -m venv .venv-minatar
    .venv-minatar/bin/pip install minatar==1.0.15 numpy==2.4.6
    .venv-minatar/bin/python scripts/reference/minatar_traces.py

It rewrites Tests/EnvsTests/Fixtures/<game>.trace for asterix, breakout, freeway, seaquest and
space_invaders (plus the scenario_*.trace files) and prints coverage statistics (episodes, rewards,
difficulty reached, and how often each listed quirk was exercised). It takes a few minutes per game.

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
import importlib
import inspect
import os
import re
import struct
import sys
import textwrap

import numpy as np
from minatar import Environment

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]
STICKY = 0.1
EPSILON = 0.2
HORIZON = 8
ROLLOUTS = 2
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "EnvsTests", "Fixtures")

# Regular traces: (seed, policy, difficulty ramping, steps). Freeway episodes last 2501 steps, so its
# traces are longer.
def plan(game):
    steps = 5200 if game == "freeway" else 2000
    traces = [(1, 0, True, steps), (2, 1, True, steps), (3, 1, True, steps)]
    if game in ("asterix", "seaquest", "space_invaders"):  # the games whose difficulty ramps
        traces.append((4, 1, False, 1500))
    return traces


# Hunts for rare quirks: (quirk, policy, difficulty ramping, first seed, seeds to try, most steps per seed).
HUNTS = {
    "asterix": [("spawning draws twice even when every row is taken", 1, True, 10, 10, 3000)],
}
HUNT_TAIL = 30  # steps recorded after the hunted quirk shows up

# Scenarios for quirks too rare to hunt: right after `env.seed(seed); env.reset()` the game is put into a
# chosen state (the Swift test, ParityTests.swift, builds the same state), then played with scripted
# actions and recorded like any other trace (policy 3). Later resets are ordinary.
def torpedoed_sub_setup(g):
    """A torpedo at (row 3, column 4) heading right, and an enemy sub at column 6 heading left that moves
    and fires this frame: it moves onto the torpedo's new cell, is destroyed, and still fires."""
    g.sub_x, g.sub_y, g.sub_or, g.surface = 2, 3, True, False
    g.e_spawn_timer, g.d_spawn_timer, g.shot_timer = 50, 50, 5
    g.e_subs = [[6, 3, False, 0, 0]]
    g.f_bullets = [[4, 3, True]]


def wave_wrap_setup(g):
    """Aliens on rows 8 and 9 at the left edge, marching left, about to move: the step down is fatal and
    np.roll wraps row 9 round to row 0."""
    g.alien_map = np.zeros((10, 10))
    g.alien_map[8, 0:3] = 1
    g.alien_map[9, 0:2] = 1
    g.alien_dir, g.alien_move_timer, g.pos = -1, 2, 6


SCENARIOS = {
    "seaquest": [("torpedoed_sub_fires", 5, torpedoed_sub_setup, [0] * 12)],
    "space_invaders": [("wave_wraps", 5, wave_wrap_setup, [0] * 12)],
}

# Quirks: (name, method, MinAtar source text, replacement that removes the quirk, required).
QUIRKS = {
    "asterix": [
        ("spawning draws twice even when every row is taken", "_spawn_entity",
         "        lr = self.random.rand() < 1/2\n",
         "        if all(e is not None for e in self.entities):\n            return\n"
         "        lr = self.random.rand() < 1/2\n", True),
        ("the ramp reaches spawning every other frame", "act",
         "                if(self.spawn_speed>1):", "                if(self.spawn_speed>2):", True),
    ],
    "breakout": [
        ("the strike flag lets the ball into a second brick", "act",
         "            if(not self.strike):", "            if(True):", True),
        ("the wall refills when the ball reaches the bottom", "act",
         "                self.brick_map[1:4,:] = 1", "                pass", True),
    ],
    "freeway": [
        ("a car hits the chicken before moving", "act",
         "            if(car[0:2]==[4,self.pos]):\n                self.pos = 9\n            if(car[2]==0):",
         "            if(car[2]==0):", True),
        ("scoring re-draws the car speeds", "act",
         "            self._randomize_cars(initialize=False)", "            pass", True),
        ("the episode ends after 2501 frames", "act",
         "        if(self.terminate_timer<0):", "        if(self.terminate_timer<-1):", True),
    ],
    "seaquest": [
        ("a torpedoed enemy sub still fires that frame", "act",
         "                            self.e_subs.remove(sub)\n                            self.f_bullets.remove(x)\n"
         "                            r+=1\n",
         "                            self.e_subs.remove(sub)\n                            self.f_bullets.remove(x)\n"
         "                            r+=1\n                            sub[4] = -1\n", True),
        ("surfacing with six divers pays oxygen*10//200", "_surface",
         "            r = self.oxygen*10//max_oxygen", "            r = 0", True),
        ("surfacing always drops a diver, leaving -1 after six", "_surface",
         "        self.diver_count -= 1", "        self.diver_count = max(0, self.diver_count - 1)", True),
        ("list.remove takes the first equal object, not the same one", "act", "IDENTITY", "", False),
    ],
    "space_invaders": [
        ("a fatal step down from row 9 wraps the wave to row 0", "act",
         "                self.alien_map = np.roll(self.alien_map, 1, axis=0)",
         "                self.alien_map = np.roll(self.alien_map, 1, axis=0); self.alien_map[0, :] = 0", True),
        ("the nearest alien breaks distance ties to the left", "_nearest_alien",
         "        search_order.sort(key=lambda x: abs(x-pos))",
         "        search_order.sort(key=lambda x: (abs(x-pos), -x))", True),
        ("a cleared wave makes the next one faster", "act",
         "                self.enemy_move_interval-=1", "                pass", True),
    ],
}


def _remove_identity(items, item):
    """list.remove by identity: what a naive port would do."""
    for index, candidate in enumerate(items):
        if candidate is item:
            del items[index]
            return
    raise ValueError("not in list")


def mutant_class(game, method, old, new):
    """MinAtar's Env class for `game` with one method's source edited."""
    module = importlib.import_module("minatar.environments." + game)
    source = inspect.getsource(getattr(module.Env, method))
    if old == "IDENTITY":
        edited = re.sub(r"self\.(\w+)\.remove\((\w+)\)", r"_remove_identity(self.\1, \2)", source)
        assert edited != source
    else:
        assert source.count(old) == 1, (game, method, old)
        edited = source.replace(old, new)
    namespace = {}
    scope = dict(module.__dict__, _remove_identity=_remove_identity)
    exec(textwrap.dedent(edited), scope, namespace)
    return type("Mutant", (module.Env,), {method: namespace[method]})


def same_game(a, b):
    """Whether two games' attributes (random stream aside) are equal, hidden counters included."""
    for key, value in vars(a).items():
        if key == "random":
            continue
        other = vars(b)[key]
        if isinstance(value, np.ndarray):
            if not np.array_equal(value, other):
                return False
        elif value != other:
            return False
    return True


def diverges(before, env, action, mutant, reward, terminal):
    """Whether the mutant, replaying this step from a copy of `before`, ends up anywhere else."""
    copy_ = copy.deepcopy(before)
    copy_.env.__class__ = mutant
    copy_.random.rand()  # the sticky-action draw, already resolved into `action`
    mutant_reward, mutant_terminal = copy_.env.act(action)
    if mutant_reward != reward or mutant_terminal != terminal:
        return True
    if not np.array_equal(copy_.env.state(), env.env.state()):
        return True
    if not same_game(copy_.env, env.env):
        return True
    mine, theirs = copy_.random.get_state(), env.random.get_state()
    return mine[2] != theirs[2] or not np.array_equal(mine[1], theirs[1])


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
    """The action a simulated future takes after the candidate: Breakout follows the ball, a Seaquest
    submarine with six divers (or little air and some divers) heads up, the rest act at random."""
    if game == "breakout":
        return 1 if g.pos > g.ball_x else 3 if g.pos < g.ball_x else 0
    if game == "seaquest" and g.diver_count > 0 and (g.diver_count >= 6 or g.oxygen < 30):
        return 2
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


def lookahead(game, env, rollout_rng, choices=6):
    if game == "breakout":
        target = breakout_target(env.env)
        pos = env.env.pos
        return [1] if pos > target else [3] if pos < target else [0]
    values = []
    for action in range(choices):
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
    return [a for a in range(choices) if values[a] >= best - 1e-9]


def record(game, seed, policy, ramping, steps, stats, hits, hunted=None, setup=None, script=None):
    """Plays one trace. With `hunted`, gives up (returns None) unless that quirk shows up within `steps`,
    and stops HUNT_TAIL steps after it does."""
    mutants = [(q[0], mutant_class(game, q[1], q[2], q[3])) for q in QUIRKS[game]]
    trace_hits = {name: 0 for name, _ in mutants}
    stop_at = None
    env = Environment(game, sticky_action_prob=STICKY, difficulty_ramping=ramping)
    env.seed(seed)
    env.reset()
    if setup is not None:
        setup(env.env)
    action_seed = 1000 + seed
    action_rng = np.random.RandomState(action_seed)
    rollout_rng = np.random.RandomState(2000 + seed)
    channels = env.state_shape()[2]
    out = bytearray()
    previous = pack(env.state())
    out += previous
    observations = [previous]
    outer_stats, stats = stats, dict.fromkeys(stats, 0)
    episode_return = 0
    recorded_steps = 0
    for step in range(steps):
        if stop_at is not None and step >= stop_at:
            break
        choices = 5 if policy == 2 else 6
        if script is not None:
            action = script[step]
        elif policy == 0 or action_rng.rand() < EPSILON:
            action = int(action_rng.randint(choices))
        else:
            best = lookahead(game, env, rollout_rng, choices)
            action = best[int(action_rng.randint(len(best)))]
        before = copy.deepcopy(env)
        bricks_before = np.count_nonzero(env.env.brick_map) if game == "breakout" else None
        reward, terminal = env.act(action)
        if bricks_before == 0 and np.count_nonzero(env.env.brick_map) == 30:
            stats["brick_refills"] += 1
        executed = env.last_action
        for name, mutant in mutants:
            if diverges(before, env, executed, mutant, reward, terminal):
                trace_hits[name] += 1
        if hunted is not None and stop_at is None and trace_hits[hunted] > 0:
            stop_at = step + 1 + HUNT_TAIL
        recorded_steps += 1
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
            stats["min_divers"] = min(stats["min_divers"], env.env.diver_count)
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
    if hunted is not None and stop_at is None:
        return None
    for key, value in stats.items():
        if key.startswith("max") or key == "best_return":
            outer_stats[key] = max(outer_stats[key], value)
        elif key.startswith("min"):
            outer_stats[key] = min(outer_stats[key], value)
        else:
            outer_stats[key] += value
    for name, count in trace_hits.items():
        hits[name] += count
    header = struct.pack("<IIIBBd", seed, action_seed, recorded_steps, policy, int(ramping), STICKY)
    return channels, header + bytes(out), observations


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


def write(game, filename, channels, traces, recorded):
    name = game.encode("ascii")
    data = b"MINATAR1" + bytes([channels, len(name)]) + name + bytes([len(traces)]) + b"".join(traces)
    assert decode(data) == recorded, "the trace format does not round-trip"
    with open(os.path.join(OUT_DIR, filename), "wb") as handle:
        handle.write(data)
    print(f"  wrote {filename}: {len(data)} bytes")


def main():
    games = sys.argv[1:] or GAMES
    os.makedirs(OUT_DIR, exist_ok=True)
    missing = []
    for game in games:
        stats = dict(reward=0, episodes=0, best_return=0, max_ramp=0, max_divers=0, min_divers=0,
                     waves_cleared=0, max_step_reward=0, brick_refills=0)
        hits = {q[0]: 0 for q in QUIRKS[game]}
        traces = []
        recorded = []
        channels = None
        total_steps = 0
        for seed, policy, ramping, steps in plan(game):
            channels, blob, observations = record(game, seed, policy, ramping, steps, stats, hits)
            traces.append(blob)
            recorded.append(observations)
            total_steps += struct.unpack_from("<I", blob, 8)[0]
        for quirk, policy, ramping, first_seed, tries, steps in HUNTS.get(game, []):
            for seed in range(first_seed, first_seed + tries):
                result = record(game, seed, policy, ramping, steps, stats, hits, hunted=quirk)
                if result is not None:
                    channels, blob, observations = result
                    traces.append(blob)
                    recorded.append(observations)
                    total_steps += struct.unpack_from("<I", blob, 8)[0]
                    print(f"  {game}: hunt for '{quirk}' succeeded with seed {seed}")
                    break
        write(game, game + ".trace", channels, traces, recorded)
        for scenario, seed, setup, script in SCENARIOS.get(game, []):
            channels, blob, observations = record(game, seed, 3, True, len(script), stats, hits,
                                                  setup=setup, script=script)
            write(game, f"scenario_{game}_{scenario}.trace", channels, [blob], [observations])
            total_steps += len(script)
        print(f"{game}: {len(traces)} traces and {len(SCENARIOS.get(game, []))} scenarios, {total_steps} steps, {stats}")
        for quirk, *_, required in QUIRKS[game]:
            print(f"    quirk exercised on {hits[quirk]:5d} steps: {quirk}")
            if required and hits[quirk] == 0:
                missing.append(f"{game}: {quirk}")
        sys.stdout.flush()
    if missing:
        sys.exit("required quirks never exercised:\n  " + "\n  ".join(missing))


if __name__ == "__main__":
    main()
