import NIOConcurrencyHelpers

/// Something that happens once, carrying a value (a stop request, a source that started or
/// failed, the answer to a call), that any number of tasks can wait for. The first ``fire(_:)``
/// wins; later ones are ignored.
///
/// Waits follow the toolkit's cancellation rule: ``wait()`` ends early when its task is cancelled;
/// ``waitIgnoringCancellation()`` does not.
public final class AsyncSignal<Value: Sendable>: Sendable {
    private typealias Waiter = CheckedContinuation<Result<Value, CancellationError>, Never>

    private struct State {
        var value: Value?
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// The value, once fired.
    public var value: Value? { state.withLockedValue { $0.value } }

    public var isFired: Bool { value != nil }

    /// Fires the signal with `value` and wakes every waiter. Returns false, changing nothing, when
    /// it had fired already.
    @discardableResult
    public func fire(_ value: Value) -> Bool {
        let waiters: [Waiter]? = state.withLockedValue { state in
            guard state.value == nil else { return nil }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: .success(value)) }
        return true
    }

    /// The value, once fired.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first; the signal is unaffected.
    public func wait() async throws(CancellationError) -> Value {
        if let value { return value }
        let id = state.withLockedValue { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Waiter) in
                // Checked under the lock that `onCancel` takes: either this sees the cancellation,
                // or `onCancel` finds the waiter stored.
                let immediate: Result<Value, CancellationError>? = state.withLockedValue { state in
                    if let value = state.value { return .success(value) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(
                returning: .failure(CancellationError()))
        }.get()
    }

    /// The value, once fired, even if the task is cancelled meanwhile: for waits that must not end
    /// early, such as a runtime waiting for a child task to report back.
    public func waitIgnoringCancellation() async -> Value {
        if let value { return value }
        let result = await withCheckedContinuation { (continuation: Waiter) in
            let immediate: Value? = state.withLockedValue { state in
                if let value = state.value { return value }
                defer { state.nextWaiterID += 1 }
                state.waiters[state.nextWaiterID] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: .success(immediate)) }
        }
        // Only `wait()`'s cancellation handler resumes a waiter with a failure.
        guard case .success(let value) = result else { preconditionFailure("an uncancellable wait was cancelled") }
        return value
    }
}

extension AsyncSignal where Value == Void {
    /// Fires the signal. Returns false when it had fired already.
    @discardableResult
    public func fire() -> Bool { fire(()) }
}

extension AsyncSignal {
    /// Runs `body` until it returns or this signal fires, whichever comes first. When the signal
    /// fires first, `body`'s task is cancelled, and this returns once `body` has returned.
    public func cancelling(_ body: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await body() }
            group.addTask { _ = try? await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}
