import Synchronization

/// Where a flow's events come from.
public protocol EventSource: Sendable {
    /// A short description for logs, e.g. `http 0.0.0.0:8081/ingest`.
    var description: String { get }

    /// Takes events and hands each to `pipeline` until `lifecycle` asks the source to stop; then
    /// stops taking new events, waits for the ones in flight and returns. Calls
    /// ``SourceLifecycle/markStarted()`` once it is taking events (listening, subscribed).
    /// Throwing before that means the flow could not start.
    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws
}

/// The start and stop handshake between the runtime and a running source.
public final class SourceLifecycle: Sendable {
    private enum StartState {
        case starting([CheckedContinuation<Bool, Never>])
        case started
        case failed
    }

    private struct State {
        var start = StartState.starting([])
        var stopRequested = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Called by the source once it takes events.
    public func markStarted() {
        let waiters: [CheckedContinuation<Bool, Never>] = state.withLock { state in
            guard case .starting(let waiters) = state.start else { return [] }
            state.start = .started
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Called by the runtime when the source's `run` ended without starting.
    func markFailedToStart() {
        let waiters: [CheckedContinuation<Bool, Never>] = state.withLock { state in
            guard case .starting(let waiters) = state.start else { return [] }
            state.start = .failed
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Waits until the source started (true) or failed to (false).
    func waitUntilStarted() async -> Bool {
        await withCheckedContinuation { continuation in
            let immediate: Bool? = state.withLock { state in
                switch state.start {
                case .starting(var waiters):
                    waiters.append(continuation)
                    state.start = .starting(waiters)
                    return nil
                case .started: return true
                case .failed: return false
                }
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Asks the source to stop taking events.
    public func requestStop() {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.stopRequested = true
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public var isStopRequested: Bool { state.withLock { $0.stopRequested } }

    /// Returns once ``requestStop()`` was called.
    public func waitForStopRequest() async {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state in
                if state.stopRequested { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if already { continuation.resume() }
        }
    }
}
