# Training frames per second of MinAtar's own DQN (examples/dqn.py of MinAtar 1.0.15), for comparison
# with `nfm-rl speed`. Pinned: torch==2.13.0 (CPU), minatar==1.0.15, numpy 2.4.6, Python 3.11.
#
# The network, optimizer, replay buffer (a Python list of transitions, random.sample, torch.cat),
# ε-greedy acting and the update are MinAtar's dqn.py as published; only the frame budget is small.
# Usage: python minatar_dqn_speed.py [game] [threads] [frames after the replay start]
import random, sys, time
from collections import namedtuple

import numpy
import torch
import torch.nn as nn
import torch.nn.functional as f
import torch.optim as optim
from minatar import Environment

game = sys.argv[1] if len(sys.argv) > 1 else "breakout"
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
frames = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
torch.set_num_threads(threads)
device = torch.device("cpu")
BATCH_SIZE, REPLAY_BUFFER_SIZE, TARGET_NETWORK_UPDATE_FREQ = 32, 100000, 1000
REPLAY_START_SIZE, END_EPSILON, FIRST_N_FRAMES, EPSILON = 5000, 0.1, 100000, 1.0
STEP_SIZE, SQUARED_GRAD_MOMENTUM, MIN_SQUARED_GRAD, GAMMA = 0.00025, 0.95, 0.01, 0.99


class QNetwork(nn.Module):
    def __init__(self, in_channels, num_actions):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, kernel_size=3, stride=1)
        self.fc_hidden = nn.Linear(in_features=8 * 8 * 16, out_features=128)
        self.output = nn.Linear(in_features=128, out_features=num_actions)

    def forward(self, x):
        x = f.relu(self.conv(x))
        x = f.relu(self.fc_hidden(x.view(x.size(0), -1)))
        return self.output(x)


transition = namedtuple("transition", "state, next_state, action, reward, is_terminal")


class replay_buffer:
    def __init__(self, buffer_size):
        self.buffer_size, self.location, self.buffer = buffer_size, 0, []

    def add(self, *args):
        if len(self.buffer) < self.buffer_size:
            self.buffer.append(transition(*args))
        else:
            self.buffer[self.location] = transition(*args)
        self.location = (self.location + 1) % self.buffer_size

    def sample(self, batch_size):
        return random.sample(self.buffer, batch_size)


def get_state(s):
    return (torch.tensor(s, device=device).permute(2, 0, 1)).unsqueeze(0).float()


def world_dynamics(t, replay_start_size, num_actions, s, env, policy_net):
    if t < replay_start_size:
        action = torch.tensor([[random.randrange(num_actions)]], device=device)
    else:
        epsilon = END_EPSILON if t - replay_start_size >= FIRST_N_FRAMES \
            else ((END_EPSILON - EPSILON) / FIRST_N_FRAMES) * (t - replay_start_size) + EPSILON
        if numpy.random.binomial(1, epsilon) == 1:
            action = torch.tensor([[random.randrange(num_actions)]], device=device)
        else:
            with torch.no_grad():
                action = policy_net(s).max(1)[1].view(1, 1)
    reward, terminated = env.act(action)
    s_prime = get_state(env.state())
    return s_prime, action, torch.tensor([[reward]], device=device).float(), torch.tensor([[terminated]], device=device)


def train(sample, policy_net, target_net, optimizer):
    batch_samples = transition(*zip(*sample))
    states, next_states = torch.cat(batch_samples.state), torch.cat(batch_samples.next_state)
    actions, rewards = torch.cat(batch_samples.action), torch.cat(batch_samples.reward)
    is_terminal = torch.cat(batch_samples.is_terminal)
    Q_s_a = policy_net(states).gather(1, actions)
    none_terminal_next_state_index = torch.tensor([i for i, is_term in enumerate(is_terminal) if is_term == 0], dtype=torch.int64, device=device)
    none_terminal_next_states = next_states.index_select(0, none_terminal_next_state_index)
    Q_s_prime_a_prime = torch.zeros(len(sample), 1, device=device)
    if len(none_terminal_next_states) != 0:
        Q_s_prime_a_prime[none_terminal_next_state_index] = target_net(none_terminal_next_states).detach().max(1)[0].unsqueeze(1)
    target = rewards + GAMMA * Q_s_prime_a_prime
    loss = f.smooth_l1_loss(target, Q_s_a)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


env = Environment(game)
in_channels, num_actions = env.state_shape()[2], env.num_actions()
policy_net, target_net = QNetwork(in_channels, num_actions), QNetwork(in_channels, num_actions)
target_net.load_state_dict(policy_net.state_dict())
r_buffer = replay_buffer(REPLAY_BUFFER_SIZE)
optimizer = optim.RMSprop(policy_net.parameters(), lr=STEP_SIZE, alpha=SQUARED_GRAD_MOMENTUM, centered=True, eps=MIN_SQUARED_GRAD)
t, updates, total = 0, 0, REPLAY_START_SIZE + 1 + frames
timed_from = None
while t < total:
    env.reset()
    s = get_state(env.state())
    is_terminated = False
    while not is_terminated and t < total:
        if t == REPLAY_START_SIZE + 1:
            timed_from = (t, time.perf_counter(), time.process_time())
        s_prime, action, reward, is_terminated = world_dynamics(t, REPLAY_START_SIZE, num_actions, s, env, policy_net)
        r_buffer.add(s, s_prime, action, reward, is_terminated)
        if t > REPLAY_START_SIZE and len(r_buffer.buffer) >= BATCH_SIZE:
            train(r_buffer.sample(BATCH_SIZE), policy_net, target_net, optimizer)
            updates += 1
            if updates % TARGET_NETWORK_UPDATE_FREQ == 0:
                target_net.load_state_dict(policy_net.state_dict())
        t += 1
        s = s_prime
played = t - timed_from[0]
wall, cpu = time.perf_counter() - timed_from[1], time.process_time() - timed_from[2]
print(f"MinAtar dqn.py (torch {torch.__version__}, {threads} thread(s)), {game}: {played / wall:.0f} training frames/s wall-clock, {played / cpu:.0f} per CPU-second")
