import Foundation

/// Threads of our own for work that blocks (librdkafka's poll and flush, WASM modules, timers), so
/// it never occupies Swift concurrency's cooperative pool or a network event loop.
public enum DedicatedThread {
    /// Starts an OS thread named `name` (its first 15 bytes: the system's limit) running `body`; `stackSize` in bytes, nil for the platform default.
    public static func start(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            // Named from inside: on Linux, Foundation does not pass a name set before `start()` to
            // the system. The kernel refuses names over 15 bytes, so longer ones are cut.
            Thread.current.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
            body()
        }
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
    }
}
