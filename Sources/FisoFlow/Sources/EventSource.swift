import FisoConcurrency

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
    /// Fired once: `true` when the source takes events, `false` when its `run` ended first.
    private let started = AsyncSignal<Bool>()
    private let stop = AsyncSignal<Void>()

    public init() {}

    /// Called by the source once it takes events.
    public func markStarted() { started.fire(true) }

    /// Called by the runtime when the source's `run` ended without starting.
    func markFailedToStart() { started.fire(false) }

    /// Waits until the source started (true) or failed to (false). The runtime always settles it
    /// (the source's task marks one or the other), so this wait needs no cancellation.
    func waitUntilStarted() async -> Bool { await started.waitIgnoringCancellation() }

    /// Asks the source to stop taking events.
    public func requestStop() { stop.fire() }

    public var isStopRequested: Bool { stop.isFired }

    /// Returns once ``requestStop()`` was called; throws if the calling task is cancelled first.
    public func waitForStopRequest() async throws(CancellationError) { try await stop.wait() }

    /// Runs `body` until it returns or the stop request comes, whichever is first; on a stop
    /// request `body`'s task is cancelled (and this returns once `body` has returned).
    public func untilStopRequested(_ body: @escaping @Sendable () async -> Void) async {
        await stop.cancelling(body)
    }
}
