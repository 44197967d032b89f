import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// A directory laid out like a mounted Kubernetes ConfigMap volume, updated the way the kubelet
/// does it: files in a timestamped directory, `..data` a symlink to it, each key a symlink into
/// `..data`, and an update a new timestamped directory swapped in by renaming a new `..data`
/// symlink over the old one.
final class ConfigMapVolume {
    let directory: TemporaryDirectory
    private var generation = 0
    private var current: String?

    init(files: [String: [UInt8]]) throws {
        directory = try TemporaryDirectory()
        try update(files)
        for key in files.keys {
            try FileManager.default.createSymbolicLink(
                atPath: directory.file(key), withDestinationPath: "..data/\(key)")
        }
    }

    func path(_ key: String) -> String { directory.file(key) }

    /// Publishes new contents atomically, as the kubelet's atomic writer does.
    func update(_ files: [String: [UInt8]]) throws {
        generation += 1
        let timestamped = "..2024_01_01_00_00_0\(generation).\(generation)"
        try FileManager.default.createDirectory(atPath: directory.file(timestamped), withIntermediateDirectories: false)
        for (key, bytes) in files {
            try directory.write("\(timestamped)/\(key)", bytes)
        }
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("..data_tmp"), withDestinationPath: timestamped)
        guard rename(directory.file("..data_tmp"), directory.file("..data")) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        if let current { try FileManager.default.removeItem(atPath: directory.file(current)) }
        current = timestamped
    }
}

@Suite struct ReloadTests {
    @Test func configMapSwapReloadsWhileInFlightCallsFinishOnTheOldModule() async throws {
        let spin = try ExampleModules.bytes("probes/spin.wasm")
        let enrich = try ExampleModules.bytes("enrich-c/enrich.wasm")
        let volume = try ConfigMapVolume(files: ["enrich.wasm": spin])
        let executor = WasmExecutor(threadCount: 4, name: "reload")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: volume.path("enrich.wasm"), configuration: .testing(), executor: executor)
        let first = transformer.version
        #expect(first.generation == 1)
        #expect(first.resolvedPath.contains("..2024_01_01_00_00_01.1/enrich.wasm"))

        // A call that is still running when the file changes.
        let inFlight = Task { try await transformer.transform(WasmTransformInput(payload: ["spin_ms": 1500])) }
        #expect(try await waitUntil(limit: .seconds(30)) { transformer.concurrency.running == 1 } != nil)

        try volume.update(["enrich.wasm": enrich])
        let result = try await transformer.reload()
        guard case .reloaded(let from, let to) = result else {
            Issue.record("expected a reload, got \(result)")
            return
        }
        #expect(from == first)
        #expect(to.generation == 2)
        #expect(to.contentHash != first.contentHash)
        #expect(to.resolvedPath.contains("..2024_01_01_00_00_02.2/enrich.wasm"))
        #expect(transformer.version == to)

        // New calls run the new module…
        let fresh = try await transformer.transform(GuideExample.transformInput)
        #expect(fresh.payload["processed_by"] == "wasm-module")
        #expect(fresh.version == to)
        // …while the call that started before the swap finishes on the old one.
        let old = try await inFlight.value
        #expect(old.payload["module"] == "spin")
        #expect(old.version == first)

        #expect(try await transformer.reload() == .unchanged)
    }

    @Test func brokenOrMissingUpdateKeepsTheCurrentModule() async throws {
        let enrich = try ExampleModules.bytes("enrich-c/enrich.wasm")
        let volume = try ConfigMapVolume(files: ["enrich.wasm": enrich])
        let executor = WasmExecutor(threadCount: 2, name: "reload-broken")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: volume.path("enrich.wasm"), configuration: .testing(), executor: executor)
        let original = transformer.version

        // Not WebAssembly: refused, the old version keeps serving.
        try volume.update(["enrich.wasm": Array("not a module".utf8)])
        await #expect {
            try await transformer.reload()
        } throws: { error in
            (error as? WasmError)?.reason == .invalidModule
        }
        #expect(transformer.version == original)
        #expect(try await transformer.transform(GuideExample.transformInput).payload["processed_by"] == "wasm-module")

        // A module that compiles but cannot run as a command: refused too.
        try volume.update(["enrich.wasm": TestModules.reactor])
        await #expect(throws: WasmError.self) { try await transformer.reload() }
        #expect(transformer.version == original)

        // The key removed from the ConfigMap: module_not_found, old version kept.
        try volume.update(["other.wasm": enrich])
        await #expect {
            try await transformer.reload()
        } throws: { error in
            (error as? WasmError)?.reason == .moduleNotFound
        }
        #expect(try await transformer.transform(GuideExample.transformInput).payload["processed_by"] == "wasm-module")

        // The same content published again (a new file, a new inode): nothing to compile.
        try volume.update(["enrich.wasm": enrich])
        #expect(try await transformer.reload() == .unchanged)
        #expect(transformer.version == original)

        // The same module, now gzip-compressed: same content hash, nothing to compile.
        try volume.update(["enrich.wasm": try ExampleModules.bytes("enrich-c/enrich.wasm.gz")])
        #expect(try await transformer.reload() == .unchanged)

        // A real change after the failures is picked up.
        try volume.update(["enrich.wasm": try ExampleModules.bytes("enrich-zig/enrich.wasm")])
        guard case .reloaded(_, let to) = try await transformer.reload() else {
            Issue.record("expected a reload")
            return
        }
        #expect(to.generation == 2)
    }

    /// Calls keep flowing while the module is swapped back and forth: none fails.
    @Test func reloadUnderLoadLosesNoCall() async throws {
        let builds = [
            try ExampleModules.bytes("enrich-c/enrich.wasm"),
            try ExampleModules.bytes("enrich-zig/enrich.wasm"),
        ]
        let volume = try ConfigMapVolume(files: ["enrich.wasm": builds[0]])
        let executor = WasmExecutor(threadCount: 4, name: "reload-load")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: volume.path("enrich.wasm"),
            configuration: .testing(maxConcurrency: 4),
            executor: executor
        )
        let callers = 4
        let callsPerCaller = 25
        async let outputs = withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var succeeded = 0
                    for index in 0..<callsPerCaller {
                        let output = try await transformer.transform(
                            WasmTransformInput(payload: ["caller": .int(Int64(caller)), "n": .int(Int64(index))])
                        )
                        if output.payload["n"] == .int(Int64(index)), output.headers["X-WASM-Processed"] == "true" {
                            succeeded += 1
                        }
                    }
                    return succeeded
                }
            }
            var total = 0
            for try await count in group { total += count }
            return total
        }
        var reloads = 0
        for swap in 1...6 {
            try await Task.sleep(for: .milliseconds(20))
            try volume.update(["enrich.wasm": builds[swap % 2]])
            if case .reloaded = try await transformer.reload() { reloads += 1 }
        }
        #expect(try await outputs == callers * callsPerCaller)
        #expect(reloads == 6)
        #expect(transformer.version.generation == 7)
    }

    /// A plain file rewritten in place (no symlinks) is a change too.
    @Test func plainFileRewrittenInPlace() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("module.wasm")
        try directory.write("module.wasm", try ExampleModules.bytes("enrich-c/enrich.wasm"))
        let handle = try await Blocking.run { try WasmModuleHandle(path: path, engine: WasmKitEngine.shared) }
        #expect(try await Blocking.run { try handle.reloadIfChanged() } == .unchanged)
        try directory.write("module.wasm", try ExampleModules.bytes("faults/exit-1.wasm"))
        guard case .reloaded(_, let to) = try await Blocking.run({ try handle.reloadIfChanged() }) else {
            Issue.record("expected a reload")
            return
        }
        #expect(to.moduleSize == (try ExampleModules.bytes("faults/exit-1.wasm")).count)
    }
}
