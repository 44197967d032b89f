import FisoFlow
import Synchronization
import Testing

/// The runtime starts listeners and flow sources through a ``TaskSpawner`` and then waits for them
/// to report back, so work it accepted must run even when the runtime is being cancelled.
@Suite(.timeLimit(.minutes(1))) struct TaskSpawnerTests {
    @Test func workSpawnedAfterTheRunWasCancelledStillRunsCancelled() async throws {
        let cancelled = TestGate()
        let sawCancellation = Mutex<Bool?>(nil)
        let task = Task {
            try await TaskSpawner.run { spawner -> Bool in
                await cancelled.wait()
                let done = TestGate()
                let accepted = spawner.spawn {
                    sawCancellation.withLock { $0 = Task.isCancelled }
                    done.open()
                }
                await done.wait()
                return accepted
            }
        }
        task.cancel()
        cancelled.open()
        #expect(try await task.value == true)
        #expect(sawCancellation.withLock { $0 } == true)
    }

    @Test func runReturnsOnlyAfterEverySpawnedTaskFinished() async throws {
        let finished = Mutex(0)
        _ = try await TaskSpawner.run { spawner in
            spawner.spawn {
                // Work spawned by spawned work counts too.
                spawner.spawn {
                    try? await Task.sleep(for: .milliseconds(50))
                    finished.withLock { $0 += 1 }
                }
                finished.withLock { $0 += 1 }
            }
        }
        #expect(finished.withLock { $0 } == 2)
    }

    @Test func aBodyErrorCancelsTheSpawnedTasksAndIsRethrown() async throws {
        struct BodyFailed: Error {}
        let stopped = Mutex(false)
        await #expect(throws: BodyFailed.self) {
            try await TaskSpawner.run { spawner -> Int in
                let running = TestGate()
                spawner.spawn {
                    running.open()
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
                    stopped.withLock { $0 = true }
                }
                await running.wait()
                throw BodyFailed()
            }
        }
        #expect(stopped.withLock { $0 })
    }

    @Test func spawningAfterTheRunEndedIsRefused() async throws {
        let spawner = try await TaskSpawner.run { $0 }
        #expect(spawner.spawn {} == false)
    }
}
