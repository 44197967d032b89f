import DequeModule
import NIOConcurrencyHelpers

/// A counting semaphore for tasks: ``acquire()`` suspends (without blocking a thread) while every
/// permit is taken, and waiting tasks get permits first come, first served. Bounds work in
/// progress: a module's concurrent calls, a stream's unacknowledged events, a handler's
/// concurrency.
///
/// Waits follow the toolkit's cancellation rule: a task cancelled while waiting leaves the queue
/// with `CancellationError` and takes no permit.
public final class AsyncSemaphore: Sendable {
    private typealias Waiter = (id: UInt64, continuation: CheckedContinuation<Result<Void, CancellationError>, Never>)

    private struct State {
        var available: Int
        var inUse = 0
        var peakInUse = 0
        var nextWaiterID: UInt64 = 0
        var waiters = Deque<Waiter>()

        mutating func take() {
            available -= 1
            inUse += 1
            peakInUse = max(peakInUse, inUse)
        }
    }

    /// The number of permits.
    public let permits: Int
    private let state: NIOLockedValueBox<State>

    /// A semaphore with `permits` permits (at least one).
    public init(permits: Int) {
        precondition(permits > 0, "a semaphore needs at least one permit")
        self.permits = permits
        state = NIOLockedValueBox(State(available: permits))
    }

    /// Permits taken and not yet released, and tasks waiting for one.
    public var counts: (inUse: Int, waiting: Int) {
        state.withLockedValue { ($0.inUse, $0.waiters.count) }
    }

    /// The most permits that were ever taken at once.
    public var peakInUse: Int { state.withLockedValue { $0.peakInUse } }

    /// Takes a permit if one is free and nobody waits for one; never suspends.
    public func tryAcquire() -> Bool {
        state.withLockedValue { state in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.take()
            return true
        }
    }

    /// Takes a permit, waiting for one if needed. Give it back with ``release()``.
    ///
    /// - Throws: `CancellationError`, without a permit, when the task is cancelled first.
    public func acquire() async throws(CancellationError) {
        if tryAcquire() { return }
        let id = state.withLockedValue { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<Void, CancellationError>, Never>) in
                // Checked under the lock that `onCancel` takes: either this sees the cancellation,
                // or `onCancel` finds the waiter queued.
                let immediate: Result<Void, CancellationError>? = state.withLockedValue { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.available > 0, state.waiters.isEmpty {
                        state.take()
                        return .success(())
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLockedValue { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: .failure(CancellationError()))
        }
        if case .failure(let error) = result { throw error }
    }

    /// Gives a permit back; the longest-waiting task gets it.
    public func release() {
        let next: Waiter? = state.withLockedValue { state in
            precondition(state.inUse > 0, "a semaphore released more often than acquired")
            state.inUse -= 1
            state.available += 1
            guard let next = state.waiters.popFirst() else { return nil }
            state.take()
            return next
        }
        next?.continuation.resume(returning: .success(()))
    }

    /// Runs `body` holding a permit.
    ///
    /// - Throws: `CancellationError` when cancelled while waiting for the permit, or what `body`
    ///   throws.
    public func withPermit<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        try await acquire()
        defer { release() }
        return try await body()
    }
}
