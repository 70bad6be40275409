// The running statistics behind nfm-rl's metrics, kept apart from the DQN algorithm (DQN.swift):
// returns per episode and their 100-episode average, and the losses and frames of each log window.

import Foundation

/// Episode returns and update losses as the agent plays, turned into metric rows.
struct TrainingProgress {
    /// Episodes finished so far.
    var episodes = 0
    /// The return of the episode being played.
    var episodeReturn = 0.0
    /// The last (up to) 100 returns, a ring indexed by `episodes % 100`.
    var recentReturns: [Double] = []
    /// Losses of the updates since the last training row, summed, and their count.
    var lossSum = 0.0
    var lossCount = 0
    /// When the current log window started: its wall-clock time and its first frame.
    var windowStartTime = TrainingProgress.now()
    var windowStartFrame = 0

    /// The mean of the last (up to) 100 episode returns; 0 before the first episode ends.
    var averageReturn: Double {
        recentReturns.isEmpty ? 0 : recentReturns.reduce(0, +) / Double(recentReturns.count)
    }

    /// Adds one update's loss to the window.
    mutating func add(loss: Double) {
        lossSum += loss
        lossCount += 1
    }

    /// Adds one frame's reward; when `terminal`, ends the episode and returns `rollout/episodic_return`
    /// and `rollout/average_return_100`, otherwise no metrics.
    mutating func add(reward: Double, terminal: Bool) -> [String: Double] {
        episodeReturn += reward
        guard terminal else { return [:] }
        if recentReturns.count < 100 { recentReturns.append(episodeReturn) } else { recentReturns[episodes % 100] = episodeReturn }
        episodes += 1
        let metrics = ["rollout/episodic_return": episodeReturn, "rollout/average_return_100": averageReturn]
        episodeReturn = 0
        return metrics
    }

    /// The training row closing the window at 0-based frame `frame`: `train/loss` (mean over the
    /// window's updates, if any), `train/epsilon` and `train/frames_per_second`; starts the next window.
    mutating func trainingRow(frame: Int, epsilon: Double) -> [String: Double] {
        var metrics: [String: Double] = [:]
        if lossCount > 0 { metrics["train/loss"] = lossSum / Double(lossCount) }
        metrics["train/epsilon"] = epsilon
        let now = TrainingProgress.now()
        metrics["train/frames_per_second"] = Double(frame + 1 - windowStartFrame) / Swift.max(now - windowStartTime, 1e-9)
        (lossSum, lossCount, windowStartTime, windowStartFrame) = (0, 0, now, frame + 1)
        return metrics
    }

    /// Starts a new log window at `frame` (after a resume).
    mutating func restartWindow(frame: Int) {
        windowStartFrame = frame
        windowStartTime = TrainingProgress.now()
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}
