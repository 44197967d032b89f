import Synchronization

/// A counting semaphore for tasks: ``acquire()`` suspends while every permit is taken, and waiting
/// tasks get permits in the order they asked. Used to bound unacknowledged events per stream and
/// handler concurrency.
final class AsyncPermits: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var available: Int
        var inUse = 0
        var peakInUse = 0
        var nextWaiterID: UInt64 = 0
        var waiters: [Waiter] = []
        /// Waiters whose task was cancelled before they got to queue up.
        var cancelledWaiterIDs: Set<UInt64> = []

        mutating func take() -> Int {
            available -= 1
            inUse += 1
            peakInUse = max(peakInUse, inUse)
            return inUse
        }
    }

    let limit: Int
    private let state: Mutex<State>

    init(limit: Int) {
        precondition(limit > 0, "a semaphore needs at least one permit")
        self.limit = limit
        state = Mutex(State(available: limit))
    }

    /// Permits taken and not yet released.
    var inUse: Int { state.withLock { $0.inUse } }

    /// The most permits that were ever taken at once.
    var peakInUse: Int { state.withLock { $0.peakInUse } }

    /// Takes a permit, waiting for one if needed. Returns false, without a permit, when the task is
    /// cancelled before it got one.
    func acquire() async -> Bool {
        if Task.isCancelled { return false }
        let waiterID: UInt64? = state.withLock { state in
            if state.available > 0 {
                _ = state.take()
                return nil
            }
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        guard let waiterID else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = state.withLock { state in
                    if state.cancelledWaiterIDs.remove(waiterID) != nil { return false }
                    if state.available > 0 {
                        _ = state.take()
                        return true
                    }
                    state.waiters.append(Waiter(id: waiterID, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                if let index = state.waiters.firstIndex(where: { $0.id == waiterID }) {
                    return state.waiters.remove(at: index)
                }
                state.cancelledWaiterIDs.insert(waiterID)
                return nil
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Returns a permit; the longest-waiting task gets it.
    func release() {
        let next: Waiter? = state.withLock { state in
            state.inUse -= 1
            state.available += 1
            guard !state.waiters.isEmpty else { return nil }
            _ = state.take()
            return state.waiters.removeFirst()
        }
        next?.continuation.resume(returning: true)
    }
}
