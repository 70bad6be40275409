// What the trainer checkpoints of a DQN agent beside its networks and optimizer. The games' state is
// not serialisable, but it is a pure function of the seed and the actions requested of the game, so
// the agent logs every action and a resume rebuilds the environment by replaying the log.

import Envs
import NFMTensor
import NFMTraining

extension DQNAgent {
    /// The replay buffer (`replay.*`), the environment as the list of actions requested of it
    /// (`environment.actions`), and the agent's counters and running sums (`agent.*`), all in
    /// `PackedState`'s exact encoding.
    public var programState: ProgramState {
        ProgramState(
            save: { [unowned self] in
                var state = replay.checkpointState(prefix: "replay.")
                state["environment.actions"] = PackedState.tensor(bytes: actionLog)
                state["agent.counters"] = PackedState.tensor(integers: [actionLog.count, progress.episodes, updates, progress.lossCount])
                state["agent.sums"] = PackedState.tensor(doubles: [progress.episodeReturn, progress.lossSum])
                state["agent.recent_returns"] = PackedState.tensor(doubles: progress.recentReturns)
                return state
            },
            restore: { [unowned self] state in try restore(from: state) })
    }

    private func restore(from state: [String: Tensor]) throws {
        guard let countersTensor = state["agent.counters"], let sumsTensor = state["agent.sums"],
            let recentTensor = state["agent.recent_returns"], let actionsTensor = state["environment.actions"]
        else { throw PackedState.DecodingError.corrupt("the checkpoint has no DQN agent state (agent.*, environment.actions)") }
        let counters = try PackedState.integers(countersTensor)
        let sums = try PackedState.doubles(sumsTensor)
        guard counters.count == 4, sums.count == 2 else { throw PackedState.DecodingError.corrupt("agent counters \(counters) or sums \(sums)") }
        let actions = try PackedState.bytes(actionsTensor, count: counters[0])
        try replay.restore(from: state, prefix: "replay.")

        // Rebuild the environment by replaying every requested action, resetting where episodes ended.
        environment = try Environment(
            game: configuration.game, seed: RunSeeds.environment(configuration.seed),
            stickyActionProbability: configuration.stickyActionProbability)
        for action in actions {
            guard Int(action) < actionCount else { throw PackedState.DecodingError.corrupt("logged action \(action) is not a MinAtar action") }
            if environment.act(Int(action)).terminal { environment.reset() }
        }
        observation.withUnsafeMutableBufferPointer { environment.observation(into: $0) }
        actionLog = actions
        updates = counters[2]
        progress.episodes = counters[1]
        progress.lossCount = counters[3]
        (progress.episodeReturn, progress.lossSum) = (sums[0], sums[1])
        progress.recentReturns = try PackedState.doubles(recentTensor)
        progress.restartWindow(frame: actionLog.count)
    }
}
