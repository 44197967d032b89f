import Synchronization

/// Something that happens once (a stop request, a finished server) that any number of tasks can
/// wait for.
final class OneShotSignal: Sendable {
    private struct State {
        var fired = false
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var cancelledWaiterIDs: Set<UInt64> = []
    }

    private let state = Mutex(State())

    init() {}

    var isFired: Bool { state.withLock { $0.fired } }

    /// Fires the signal; later calls do nothing.
    func fire() {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the signal fired, or early when the task is cancelled.
    func wait() async {
        if Task.isCancelled { return }
        let waiterID: UInt64? = state.withLock { state in
            if state.fired { return nil }
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        guard let waiterID else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.fired || state.cancelledWaiterIDs.remove(waiterID) != nil { return true }
                    state.waiters[waiterID] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: waiterID) { return waiter }
                if !state.fired { state.cancelledWaiterIDs.insert(waiterID) }
                return nil
            }
            waiter?.resume()
        }
    }
}

/// Runs `body` until it returns or `signal` fires; when the signal fires first, `body`'s task is
/// cancelled and this returns once it finished.
func runUntilSignalled(_ signal: OneShotSignal, _ body: @escaping @Sendable () async -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        group.addTask { await body() }
        group.addTask { await signal.wait() }
        await group.next()
        group.cancelAll()
    }
}

/// A value behind a lock, for state that escaping closures share.
final class LockedValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }

    var value: Value { mutex.withLock { $0 } }
}
