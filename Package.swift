// swift-tools-version:6.0
// NFM-Swift: Neural Function Modules (Lamb et al., AISTATS 2021) in Swift, on oneDNN.
// The folders are the architecture (see ../shared/DESIGN.md §1); dependencies point one way:
// C shims → NFMKernels → NFMTensor → NFMNN → NFMOptimizers / NFMLayers → NFMTraining → programs.
import PackageDescription

let package = Package(
    name: "NFM",
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian -dev packages (scripts/setup.sh installs them).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // The only module that touches oneDNN: fast kernels behind one backend interface,
        // with plain reference loops beside them.
        .target(name: "NFMKernels", dependencies: ["CDNNL", "CVectorKernels"]),
        // The hot loops of NFMKernels' Swift kernels in C, compiled for AVX2 and for AVX-512 and chosen
        // at run time (NFM_ISA; issue 13, item 4). Optimised in debug builds too, as the Swift library
        // targets are below: at -O0 clang does not vectorise, and these loops exist to be vectorised.
        .target(name: "CVectorKernels", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        // Tensor, ops and define-by-run reverse-mode autodiff.
        .target(name: "NFMTensor", dependencies: ["NFMKernels"]),
        // Module, parameters and buffers keyed as in PyTorch, layers, initialisers.
        .target(name: "NFMNN", dependencies: ["NFMTensor", "NFMIO"]),
        // safetensors, PNG, gzip, image grids. Works on raw buffers, so it needs no Tensor.
        .target(name: "NFMIO", dependencies: ["CPNG", "CZlib"]),
        // Progress, metrics (CSV/JSONL) and learning-curve PNGs.
        .target(name: "NFMLog", dependencies: ["NFMIO"]),
        // SGD, Adam, AdamW, RMSprop, clipping and schedules with torch.optim semantics.
        .target(name: "NFMOptimizers", dependencies: ["NFMKernels", "NFMTensor", "NFMNN"]),
        // The paper: NFM layers (attention over every slot written so far, gated residual) and their memory.
        .target(name: "NFMLayers", dependencies: ["NFMTensor", "NFMNN"]),
        // Reference models shared by the programs and the benchmark (Sort-of-CLEVR CNN-MLP, with and without NFM).
        .target(name: "NFMModels", dependencies: ["NFMTensor", "NFMNN", "NFMLayers"]),
        // The trainer: checkpoints, resume, NaN stop, Ctrl-C, progress and metrics around a program's step.
        // Data-parallel training over a process group (NFMDistributed) lives here too.
        .target(name: "NFMTraining", dependencies: ["NFMTensor", "NFMNN", "NFMOptimizers", "NFMLog", "NFMIO", "NFMDistributed"]),
        // Comparisons over seeds: one run per seed and model (child processes), the summary with
        // confidence intervals and paired differences, band plots. Shared by the three programs.
        .target(
            name: "NFMExperiments",
            dependencies: [
                "NFMTraining", "NFMKernels", "NFMLog", "NFMIO", "NFMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Process groups for training over several processes: Open MPI, loaded with dlopen only when
        // started under mpirun (no build or run-time dependency otherwise), or this process alone.
        .target(name: "NFMDistributed"),
        // MinAtar-faithful gridworld games; no dependencies.
        .target(name: "Envs", path: "envs", exclude: ["README.md"]),
        // Sort-of-CLEVR generation, IDX (Fashion-MNIST) parsing and deterministic batching.
        .target(name: "NFMData", dependencies: ["NFMTensor"]),

        // The DQN agent of nfm-rl (MinAtar's baseline, or an NFM encoder): replay buffer, Q-networks,
        // the training loop around the trainer, evaluation, filmstrips and terminal play.
        .target(
            name: "RLKit",
            dependencies: [
                "Envs", "NFMKernels", "NFMTensor", "NFMNN", "NFMOptimizers", "NFMLayers", "NFMTraining", "NFMIO", "NFMLog",
            ]),

        // Programs: each a thin @main folder with its flags and its own models.
        .executableTarget(
            name: "nfm-rl",
            dependencies: [
                "RLKit", "Envs", "NFMKernels", "NFMTensor", "NFMTraining", "NFMLog", "NFMExperiments", "NFMDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // nfm-generate's models, losses, metrics and training runs (a library, so that tests can reach them).
        .target(
            name: "GenerateKit",
            dependencies: [
                "NFMTensor", "NFMNN", "NFMOptimizers", "NFMLayers", "NFMModels", "NFMTraining", "NFMData", "NFMIO", "NFMLog",
            ]),
        // A VAE and a GAN with NFM, writing PNG samples, scored against a capacity-matched baseline.
        .executableTarget(
            name: "nfm-generate",
            dependencies: [
                "GenerateKit", "NFMKernels", "NFMData", "NFMLog", "NFMExperiments", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // nfm-classify's models, training, evaluation, accuracy tables and attention maps (testable; the program is its flags).
        .target(
            name: "ClassifyKit",
            dependencies: [
                "NFMTensor", "NFMNN", "NFMOptimizers", "NFMLayers", "NFMModels", "NFMTraining", "NFMData", "NFMIO", "NFMLog",
            ]),
        .executableTarget(
            name: "nfm-classify",
            dependencies: [
                "ClassifyKit", "NFMKernels", "NFMModels", "NFMData", "NFMLog", "NFMTraining", "NFMExperiments", "NFMDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Speed and memory benchmarks (issue 7); scripts/bench/compare.sh runs it beside PyTorch.
        .executableTarget(
            name: "nfm-bench",
            dependencies: [
                "NFMKernels", "NFMTensor", "NFMNN", "NFMOptimizers", "NFMLayers", "NFMModels", "Envs", "RLKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "NFMKernelsTests", dependencies: ["NFMKernels"]),
        .testTarget(name: "NFMTensorTests", dependencies: ["NFMKernels", "NFMTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NFMNNTests", dependencies: ["NFMTensor", "NFMNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NFMIOTests", dependencies: ["NFMIO"]),
        .testTarget(name: "NFMLogTests", dependencies: ["NFMIO", "NFMLog"]),
        .testTarget(name: "NFMExperimentsTests", dependencies: ["NFMExperiments", "NFMLog"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NFMOptimizersTests", dependencies: ["NFMTensor", "NFMNN", "NFMOptimizers"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "NFMTrainingTests",
            dependencies: ["NFMTensor", "NFMNN", "NFMIO", "NFMOptimizers", "NFMLayers", "NFMModels", "NFMLog", "NFMTraining", "NFMDistributed"]),
        .testTarget(
            name: "NFMLayersTests", dependencies: ["NFMKernels", "NFMTensor", "NFMNN", "NFMLayers", "NFMModels"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "EnvsTests", dependencies: ["Envs"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NFMDataTests", dependencies: ["NFMTensor", "NFMData"]),
        .testTarget(
            name: "RLKitTests",
            dependencies: ["RLKit", "Envs", "NFMKernels", "NFMTensor", "NFMNN", "NFMTraining", "NFMIO", "NFMLog"]),
        .testTarget(
            name: "GenerateKitTests",
            dependencies: ["GenerateKit", "NFMTensor", "NFMNN", "NFMLayers", "NFMModels", "NFMData", "NFMIO", "NFMLog"],
            resources: [.copy("Fixtures")]),
        // Whole models (Sort-of-CLEVR NFM, a DQN update, a GAN step) on oneDNN and on the reference backend.
        .testTarget(
            name: "BackendParityTests",
            dependencies: ["GenerateKit", "NFMKernels", "NFMLayers", "NFMModels", "NFMNN", "NFMOptimizers", "NFMTensor", "RLKit"]),
        .testTarget(
            name: "NFMClassifyTests",
            dependencies: [
                "ClassifyKit", "NFMTensor", "NFMNN", "NFMLayers", "NFMModels", "NFMTraining", "NFMData", "NFMIO", "NFMLog",
            ]),
    ]
)

// Debug builds compile the library targets optimised, so that `swift run nfm-classify` as a user
// types it (without `-c release`) trains at close to release speed: at -Onone the NFM step ran 7.7×
// slower (issue 13; measured figures in BENCHMARKS.md). The programs' thin @main folders and the
// tests stay at -Onone, and `-enable-testing` still applies, so `@testable import` works.
for target in package.targets where target.type == .regular {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
}
