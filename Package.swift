// swift-tools-version:6.0
// NFM-Swift: Neural Function Modules (Lamb et al., AISTATS 2021) in Swift, on oneDNN.
// The folders are the architecture (see ../shared/DESIGN.md §1); dependencies point one way:
// C shims → NFMKernels → NFMTensor → NFMNN → NFMOptimizers / NFMLayers → NFMTraining → programs.
import PackageDescription

let package = Package(
    name: "NFM",
    targets: [
        // C libraries from Debian -dev packages (scripts/setup.sh installs them).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // The only module that touches oneDNN: fast kernels behind one backend interface,
        // with plain reference loops beside them.
        .target(name: "NFMKernels", dependencies: ["CDNNL"]),
        // Tensor, ops and define-by-run reverse-mode autodiff.
        .target(name: "NFMTensor", dependencies: ["NFMKernels"]),
        // safetensors, PNG, gzip, image grids. Works on raw buffers, so it needs no Tensor.
        .target(name: "NFMIO", dependencies: ["CPNG", "CZlib"]),
        // Progress, metrics (CSV/JSONL) and learning-curve PNGs.
        .target(name: "NFMLog", dependencies: ["NFMIO"]),
        // MinAtar-faithful gridworld games; no dependencies.
        .target(name: "Envs", path: "envs", exclude: ["README.md"]),

        .testTarget(name: "NFMKernelsTests", dependencies: ["NFMKernels"]),
        .testTarget(name: "NFMTensorTests", dependencies: ["NFMTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NFMIOTests", dependencies: ["NFMIO"]),
        .testTarget(name: "NFMLogTests", dependencies: ["NFMLog"]),
        .testTarget(name: "EnvsTests", dependencies: ["Envs"], resources: [.copy("Fixtures")]),
    ]
)
