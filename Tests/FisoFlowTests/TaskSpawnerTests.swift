import FisoConcurrency
import FisoFlow
import NIOConcurrencyHelpers
import Testing

/// The runtime starts listeners and flow sources through a ``TaskSpawner`` and then waits for them
/// to report back, so work it accepted must run even when the runtime is being cancelled.
@Suite(.timeLimit(.minutes(1))) struct TaskSpawnerTests {
    @Test func workSpawnedAfterTheRunWasCancelledStillRunsCancelled() async throws {
        let cancelled = AsyncSignal<Void>()
        let sawCancellation = NIOLockedValueBox<Bool?>(nil)
        let task = Task {
            try await TaskSpawner.run { spawner -> Bool in
                await cancelled.waitIgnoringCancellation()
                let done = AsyncSignal<Void>()
                let accepted = spawner.spawn {
                    sawCancellation.withLockedValue { $0 = Task.isCancelled }
                    done.fire()
                }
                await done.waitIgnoringCancellation()
                return accepted
            }
        }
        task.cancel()
        cancelled.fire()
        #expect(try await task.value == true)
        #expect(sawCancellation.withLockedValue { $0 } == true)
    }

    @Test func runReturnsOnlyAfterEverySpawnedTaskFinished() async throws {
        let finished = NIOLockedValueBox(0)
        _ = try await TaskSpawner.run { spawner in
            spawner.spawn {
                // Work spawned by spawned work counts too.
                spawner.spawn {
                    try? await Task.sleep(for: .milliseconds(50))
                    finished.withLockedValue { $0 += 1 }
                }
                finished.withLockedValue { $0 += 1 }
            }
        }
        #expect(finished.withLockedValue { $0 } == 2)
    }

    @Test func aBodyErrorCancelsTheSpawnedTasksAndIsRethrown() async throws {
        struct BodyFailed: Error {}
        let stopped = NIOLockedValueBox(false)
        await #expect(throws: BodyFailed.self) {
            try await TaskSpawner.run { spawner -> Int in
                let running = AsyncSignal<Void>()
                spawner.spawn {
                    running.fire()
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
                    stopped.withLockedValue { $0 = true }
                }
                await running.waitIgnoringCancellation()
                throw BodyFailed()
            }
        }
        #expect(stopped.withLockedValue { $0 })
    }

    @Test func spawningAfterTheRunEndedIsRefused() async throws {
        let spawner = try await TaskSpawner.run { $0 }
        #expect(spawner.spawn {} == false)
    }
}
