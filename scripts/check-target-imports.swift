// Checks that every target of Package.swift declares exactly the package modules its sources import:
// nothing imported without being declared, nothing declared without being imported.
//
// Why not only `swift build --explicit-target-dependency-import-check error`: SwiftPM compares a
// target's imports with its *transitive* dependencies (`targetDependencyMap` in the build
// description), so a target that imports a module it reaches only through another dependency
// passes. Here the direct declarations must match. Run from the repository root:
//
//     swift scripts/check-target-imports.swift
//
// It reads the manifest through `swift package dump-package` and the imports with a line scan of each
// target's Swift files (`import M`, `@testable import M`, `import struct M.T`, …), counting only
// modules that this package or its dependencies' products provide (system modules such as Glibc or
// Foundation are not declared in a manifest).

import Foundation

struct Failure: Error, CustomStringConvertible {
    let description: String
}

func run(_ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) failed") }
    return data
}

/// The module names a Swift file imports.
func imports(ofFile path: String) throws -> Set<String> {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let attributes = #/^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+)*import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?([A-Za-z_][A-Za-z0-9_]*)/#
    var modules = Set<String>()
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if let match = line.firstMatch(of: attributes) { modules.insert(String(match.1)) }
    }
    return modules
}

/// The dependency names of one target entry of `dump-package`'s JSON.
func declaredDependencies(_ target: [String: Any]) -> Set<String> {
    var names = Set<String>()
    for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
        // Each entry is {"byName": [name, condition]}, {"target": [...]} or {"product": [name, package, …]}.
        for kind in ["byName", "target", "product"] {
            if let entry = dependency[kind] as? [Any], let name = entry.first as? String { names.insert(name) }
        }
    }
    return names
}

do {
    let manifest = try JSONSerialization.jsonObject(with: try run(["swift", "package", "dump-package"])) as? [String: Any] ?? [:]
    let targets = manifest["targets"] as? [[String: Any]] ?? []
    // Modules a target could import and so must declare: the package's own targets, and every product
    // it depends on by name (ArgumentParser).
    var packageModules = Set(targets.compactMap { $0["name"] as? String })
    for target in targets {
        for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
            if let product = dependency["product"] as? [Any], let name = product.first as? String { packageModules.insert(name) }
        }
    }
    var problems: [String] = []
    for target in targets {
        guard let name = target["name"] as? String, let type = target["type"] as? String, type != "system" else { continue }
        let directory = target["path"] as? String ?? (type == "test" ? "Tests/\(name)" : "Sources/\(name)")
        guard let files = FileManager.default.enumerator(atPath: directory) else {
            problems.append("\(name): no source directory \(directory)")
            continue
        }
        var imported = Set<String>()
        for case let file as String in files where file.hasSuffix(".swift") {
            imported.formUnion(try imports(ofFile: directory + "/" + file))
        }
        imported.formIntersection(packageModules)
        let declared = declaredDependencies(target)
        let missing = imported.subtracting(declared).sorted()
        let unused = declared.subtracting(imported).sorted()
        if !missing.isEmpty { problems.append("\(name) imports \(missing.joined(separator: ", ")) without declaring them in Package.swift") }
        if !unused.isEmpty { problems.append("\(name) declares \(unused.joined(separator: ", ")) but does not import them") }
    }
    if problems.isEmpty {
        print("check-target-imports: every target declares exactly what it imports (\(targets.count) targets)")
    } else {
        for problem in problems { print("check-target-imports: \(problem)") }
        exit(1)
    }
} catch {
    print("check-target-imports: \(error)")
    exit(2)
}
