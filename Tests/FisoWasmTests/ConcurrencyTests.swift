import FisoJSON
import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

@Suite struct ConcurrencyTests {
    /// 16 concurrent calls: all succeed with their own output, at most `maxConcurrency` at a time
    /// (the rest wait in line), on one shared parsed module.
    @Test func sixteenConcurrentCalls() async throws {
        let executor = WasmExecutor(threadCount: 4, name: "sixteen")
        defer { executor.shutdown() }
        let transformer = try await WasmTransformer.load(
            path: ExampleModules.path("enrich-c/enrich.wasm"),
            configuration: .testing(maxConcurrency: 3),
            executor: executor
        )
        let highestRunning = HighWaterMark()
        let outputs = try await withThrowingTaskGroup(of: (Int, WasmTransformOutput).self) { group in
            for index in 0..<16 {
                group.addTask {
                    let input = WasmTransformInput(
                        payload: ["order_id": .string("order-\(index)"), "index": .int(Int64(index))],
                        headers: ["X-Request": "\(index)"]
                    )
                    highestRunning.record(transformer.concurrency.running)
                    let output = try await transformer.transform(input)
                    highestRunning.record(transformer.concurrency.running)
                    return (index, output)
                }
            }
            var outputs: [Int: WasmTransformOutput] = [:]
            for try await (index, output) in group { outputs[index] = output }
            return outputs
        }
        #expect(outputs.count == 16)
        for (index, output) in outputs {
            #expect(output.payload["order_id"] == .string("order-\(index)"))
            #expect(output.payload["index"] == .int(Int64(index)))
            #expect(output.headers == ["X-Request": "\(index)", "X-WASM-Processed": "true"])
        }
        #expect(highestRunning.value <= 3)
        #expect((1...3).contains(transformer.peakConcurrency))
        #expect(transformer.concurrency.running == 0)
        #expect(transformer.concurrency.waiting == 0)
    }

    /// A looping module, a memory bomb and a failing module running at the same time as a healthy
    /// one: every healthy call still succeeds with the right output.
    @Test func failingModulesDoNotAffectOthers() async throws {
        let executor = WasmExecutor(threadCount: 4, name: "isolation")
        defer { executor.shutdown() }
        func load(_ module: String, _ configuration: WasmModuleConfiguration) async throws -> WasmTransformer {
            try await WasmTransformer.load(
                path: ExampleModules.path(module), configuration: configuration, executor: executor)
        }
        let loop = try await load(
            "faults/infinite-loop.wasm", WasmModuleConfiguration(timeout: .milliseconds(300), maxConcurrency: 1))
        // Generous timeouts: under ThreadSanitizer filling even 8 MiB takes the interpreter a while.
        let bomb = try await load(
            "faults/memory-bomb.wasm",
            WasmModuleConfiguration(timeout: .seconds(600), memoryLimitBytes: 8 << 20, maxConcurrency: 1)
        )
        let trap = try await load(
            "faults/trap.wasm", WasmModuleConfiguration(timeout: .seconds(600), maxConcurrency: 1))
        let healthy = try await load("enrich-c/enrich.wasm", .testing(maxConcurrency: 2))

        let reasons = try await withThrowingTaskGroup(of: [WasmError.Reason?].self) { group in
            for (transformer, count) in [(loop, 3), (bomb, 3), (trap, 3)] {
                group.addTask {
                    var reasons: [WasmError.Reason?] = []
                    for _ in 0..<count {
                        do {
                            _ = try await transformer.transform(GuideExample.transformInput)
                            reasons.append(nil)
                        } catch let error as WasmError {
                            reasons.append(error.reason)
                        }
                    }
                    return reasons
                }
            }
            for index in 0..<12 {
                group.addTask {
                    let output = try await healthy.transform(WasmTransformInput(payload: ["n": .int(Int64(index))]))
                    #expect(output.payload["n"] == .int(Int64(index)))
                    #expect(output.payload["processed_by"] == "wasm-module")
                    return []
                }
            }
            var reasons: [WasmError.Reason?] = []
            for try await part in group { reasons.append(contentsOf: part) }
            return reasons
        }
        #expect(reasons.filter { $0 == .timeout }.count == 3)
        #expect(reasons.filter { $0 == .outOfMemory }.count == 3)
        #expect(reasons.filter { $0 == .trap }.count == 3)
        #expect(!reasons.contains(nil))
        _ = try await waitUntil(limit: .seconds(60)) { executor.busyThreads == 0 }
    }

    /// A caller cancelled while waiting for its turn leaves the line; its module never runs.
    @Test func cancelledCallLeavesTheQueue() async throws {
        let executor = WasmExecutor(threadCount: 2, name: "cancel")
        defer { executor.shutdown() }
        let spin = try await WasmTransformer.load(
            path: ExampleModules.path("probes/spin.wasm"),
            configuration: .testing(maxConcurrency: 1),
            executor: executor
        )
        let first = Task { try await spin.transform(WasmTransformInput(payload: ["spin_ms": 3000])) }
        try #require(try await waitUntil(limit: .seconds(30)) { spin.concurrency.running == 1 } != nil)
        let second = Task { try await spin.transform(WasmTransformInput(payload: ["spin_ms": 3000])) }
        try #require(try await waitUntil(limit: .seconds(30)) { spin.concurrency.waiting == 1 } != nil)
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        #expect(spin.concurrency.waiting == 0)
        let output = try await first.value
        #expect(output.payload["module"] == "spin")
        #expect(spin.concurrency.running == 0)
    }
}

/// The highest value recorded, from any task.
final class HighWaterMark: @unchecked Sendable {
    // @unchecked: `highest` is only touched under `lock`.
    private let lock = NSLock()
    private var highest = 0

    func record(_ value: Int) {
        lock.lock()
        highest = max(highest, value)
        lock.unlock()
    }

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return highest
    }
}
