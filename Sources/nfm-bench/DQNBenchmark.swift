import Envs
import NFMNN
import NFMOptimizers
import NFMTensor

/// MinAtar's DQN network (Young & Tian 2019, `examples/dqn.py`): Conv2d(channels → 16, 3×3, stride 1)
/// → ReLU → Linear(16·8·8 → 128) → ReLU → Linear(128 → actions).
final class MinAtarQNetwork: Module {
    let conv: Conv2d
    let hidden: Linear
    let output: Linear

    init(channels: Int, actions: Int, using generator: inout SeededGenerator) {
        conv = Conv2d(channels, 16, kernelSize: 3, using: &generator)
        hidden = Linear(16 * 8 * 8, 128, using: &generator)
        output = Linear(128, actions, using: &generator)
        super.init()
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        output(relu(hidden(relu(conv(x)).flattened())))
    }
}

/// DQN training frames per second: each frame plays one ε-greedy step of Breakout (a forward pass of
/// the Q-network on the current state), stores the transition, and runs one update on a batch of 32
/// (target network forward, Q-network forward and backward, smooth-L1 loss, centered RMSprop), as
/// MinAtar's `dqn.py` does once its replay memory is past the start size.
struct DQNResult: Codable, Sendable {
    var game: String
    var batch: Int
    var framesPerSecond: Summary
}

/// Times `framesPerIteration` training frames per iteration, after filling the replay memory.
func runDQNBenchmark(framesPerIteration: Int, warmup: Int, iterations: Int) throws -> DQNResult {
    let game = "breakout", batch = 32, capacity = 10_000, replayStart = 1_000
    var environment = try Environment(game: game, seed: 0)
    var generator = SeededGenerator(seed: 9)
    let channels = environment.channelCount, observationCount = environment.observationCount
    let actions = Environment.actionCount
    let network = MinAtarQNetwork(channels: channels, actions: actions, using: &generator)
    let target = MinAtarQNetwork(channels: channels, actions: actions, using: &generator)
    target.update(parameters: Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.name, $0.tensor) }))
    // MinAtar dqn.py: RMSprop(lr 0.00025, alpha 0.95, centered, eps 0.01), γ 0.99, ε 0.1 after the ramp.
    let optimizer = RMSprop(learningRate: 2.5e-4, alpha: 0.95, epsilon: 0.01, centered: true)
    let gamma: Float = 0.99, epsilon: Float = 0.1

    var states = [Float](repeating: 0, count: capacity * observationCount)
    var nextStates = [Float](repeating: 0, count: capacity * observationCount)
    var storedActions = [Int](repeating: 0, count: capacity)
    var rewards = [Float](repeating: 0, count: capacity)
    var terminals = [Bool](repeating: false, count: capacity)
    var stored = 0, cursor = 0, updates = 0
    var state = environment.observation()

    func playFrame(train: Bool) {
        var action = Int(generator.next() % UInt64(actions))
        if generator.nextUniform() >= epsilon {
            let values = withoutGradient { network(Tensor(shape: [1, channels, 10, 10], scalars: state)) }.scalars
            action = values.indices.max { values[$0] < values[$1] }!
        }
        let (reward, terminal) = environment.act(action)
        let next = environment.observation()
        states.replaceSubrange(cursor * observationCount..<(cursor + 1) * observationCount, with: state)
        nextStates.replaceSubrange(cursor * observationCount..<(cursor + 1) * observationCount, with: next)
        (storedActions[cursor], rewards[cursor], terminals[cursor]) = (action, reward, terminal)
        cursor = (cursor + 1) % capacity
        stored = Swift.min(stored + 1, capacity)
        if terminal {
            environment.reset()
            state = environment.observation()
        } else {
            state = next
        }
        guard train else { return }

        // One update on a uniformly sampled batch.
        let picks = (0..<batch).map { _ in Int(generator.next() % UInt64(stored)) }
        var batchStates = [Float](), batchNext = [Float]()
        batchStates.reserveCapacity(batch * observationCount)
        batchNext.reserveCapacity(batch * observationCount)
        for index in picks {
            batchStates += states[index * observationCount..<(index + 1) * observationCount]
            batchNext += nextStates[index * observationCount..<(index + 1) * observationCount]
        }
        let nextValues = withoutGradient { target(Tensor(shape: [batch, channels, 10, 10], scalars: batchNext)) }.scalars
        let targets = picks.enumerated().map { row, index -> Float in
            let best = nextValues[row * actions..<(row + 1) * actions].max()!
            return rewards[index] + (terminals[index] ? 0 : gamma * best)
        }
        let input = Tensor(shape: [batch, channels, 10, 10], scalars: batchStates)
        let chosen = Tensor(shape: [batch, 1], scalars: picks.map { Float(storedActions[$0]) })
        let (_, gradients) = valueAndGrad(model: network) { network in
            smoothL1Loss(network(input).gathering(alongAxis: 1, indices: chosen), Tensor(shape: [batch, 1], scalars: targets))
        }
        optimizer.update(model: network, gradients: gradients)
        updates += 1
        if updates % 1000 == 0 {
            target.update(parameters: Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.name, $0.tensor) }))
        }
    }

    for _ in 0..<replayStart { playFrame(train: false) }
    let times = timeMilliseconds(warmup: warmup, iterations: iterations) {
        for _ in 0..<framesPerIteration { playFrame(train: true) }
    }
    return DQNResult(
        game: game, batch: batch,
        framesPerSecond: Summary(times, unit: "ms").rate(amount: Double(framesPerIteration), unit: "frames/s"))
}
