/// Where the time of one call went. Record ``total`` in the per-module latency histogram.
public struct WasmCallTiming: Sendable, Hashable {
    /// Waiting for the module's concurrency limit and for a pool thread.
    public var queued: Duration
    /// On the pool thread: instantiating and running the module (up to the timeout).
    public var running: Duration
    /// From the call to its result: what the caller waited (queued + running + hand-offs).
    public var total: Duration

    public init(queued: Duration, running: Duration, total: Duration) {
        self.queued = queued
        self.running = running
        self.total = total
    }
}
