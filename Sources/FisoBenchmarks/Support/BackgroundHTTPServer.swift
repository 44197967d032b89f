import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Runs an HTTP responder on 127.0.0.1 and a free port while `body` runs.
func withHTTPServer<T: Sendable>(
    _ responder: some HTTPResponder<BasicRequestContext>,
    _ body: @Sendable (_ port: Int) async throws -> T
) async throws -> T {
    var logger = Logger(label: "fiso-bench")
    logger.logLevel = .error
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let application = Application(
        responder: responder,
        configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: nil),
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        },
        logger: logger
    )
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [application], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var port = 0
        for await bound in ports { port = bound }
        let result = try await body(port)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}
