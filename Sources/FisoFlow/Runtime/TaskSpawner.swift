import DequeModule
import NIOConcurrencyHelpers

/// Hands work to a task group from code that does not hold the group, so long-lived tasks started
/// on demand (listeners, flows after a reload) stay children of the runtime's structured task tree.
///
/// Accepted work always runs, even once the group is cancelled (it then starts cancelled): callers
/// wait for what they spawned to report back (a source that started, a listener that bound), and a
/// dropped task would leave them waiting forever.
public final class TaskSpawner: Sendable {
    public typealias Work = @Sendable () async -> Void

    private struct State {
        var pending: Deque<Work> = []
        /// The group's loop, waiting for work.
        var waiter: CheckedContinuation<Work?, Never>?
        /// Accepted work that has not finished yet, pending or running.
        var unfinished = 0
        var bodyFinished = false
        /// No more work is accepted: the body and everything spawned have finished.
        var closed = false

        /// Nothing can spawn any more: the body and all accepted work have finished.
        var isDone: Bool { bodyFinished && unfinished == 0 }

        /// Closes once nothing can spawn any more; returns the waiter to release, if any.
        mutating func closeIfDone() -> CheckedContinuation<Work?, Never>? {
            guard isDone, !closed else { return nil }
            closed = true
            defer { waiter = nil }
            return waiter
        }
    }

    private let state = NIOLockedValueBox(State())

    private init() {}

    /// Schedules `work` as a child task of the group running ``run(_:)``. Returns false, and drops
    /// `work`, only when that group has already ended.
    @discardableResult
    public func spawn(_ work: @escaping Work) -> Bool {
        let accepted: (Bool, CheckedContinuation<Work?, Never>?) = state.withLockedValue { state in
            guard !state.closed else { return (false, nil) }
            state.unfinished += 1
            if let waiter = state.waiter {
                state.waiter = nil
                return (true, waiter)
            }
            state.pending.append(work)
            return (true, nil)
        }
        accepted.1?.resume(returning: work)
        return accepted.0
    }

    /// The next work to start; nil once the spawner is closed. Not cancellable on purpose (see the
    /// type's comment).
    private func next() async -> Work? {
        await withCheckedContinuation { continuation in
            let immediate: Work?? = state.withLockedValue { state in
                if !state.pending.isEmpty { return .some(state.pending.removeFirst()) }
                if state.isDone {
                    state.closed = true
                    return .some(nil)
                }
                state.waiter = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    private func finishedOne() {
        state.withLockedValue { state in
            state.unfinished -= 1
            return state.closeIfDone()
        }?.resume(returning: nil)
    }

    private func bodyFinished() {
        state.withLockedValue { state in
            state.bodyFinished = true
            return state.closeIfDone()
        }?.resume(returning: nil)
    }

    /// Runs `body` with a spawner whose work runs in a discarding task group; returns when `body`
    /// returned and every spawned task finished. When `body` throws, the spawned tasks are
    /// cancelled and awaited before the error is rethrown.
    public static func run<Value: Sendable>(
        _ body: @escaping @Sendable (TaskSpawner) async throws -> Value
    ) async throws -> Value {
        let spawner = TaskSpawner()
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                defer { spawner.bodyFinished() }
                return try await body(spawner)
            }
            group.addTask {
                await withDiscardingTaskGroup { children in
                    while let work = await spawner.next() {
                        children.addTask {
                            await work()
                            spawner.finishedOne()
                        }
                    }
                }
                return nil
            }
            var result: Value?
            do {
                while let next = try await group.next() {
                    if let next { result = next }
                }
            } catch {
                group.cancelAll()
                throw error
            }
            guard let result else { throw CancellationError() }
            return result
        }
    }
}
