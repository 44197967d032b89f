/// An asynchronous counting semaphore with a first-come, first-served queue: at most `limit`
/// calls of one module run at once; the others wait (suspended, not blocking a thread) in order.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    let limit: Int
    private let state: Locked<State>

    init(limit: Int) {
        self.limit = max(1, limit)
        self.state = Locked(State(available: max(1, limit)))
    }

    /// Calls holding a permit, and calls waiting for one.
    var counts: (running: Int, waiting: Int) {
        state.withLock { (limit - $0.available, $0.waiters.count) }
    }

    /// Waits for a permit; give it back with ``release()``.
    ///
    /// - Throws: `CancellationError` when the calling task is cancelled while waiting.
    func acquire() async throws {
        if state.withLock({ state -> Bool in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
        }) {
            return
        }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.available > 0, state.waiters.isEmpty {
                        state.available -= 1
                        return .success(())
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Gives a permit back, to the longest-waiting caller if there is one.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
