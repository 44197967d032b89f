import FisoJSON
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A real HTTP server on 127.0.0.1 and a free port that records what it receives and answers as
/// the test tells it to. It stops when the closure given to ``withTestReceiver(_:_:)`` returns.
package final class TestReceiver: Sendable {
    package struct Received: Sendable {
        package var method: String
        package var path: String
        package var headers: [String: String]
        package var body: [UInt8]

        package var json: JSONValue? { try? JSONValue(parsing: body) }

        package func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    package struct Answer: Sendable {
        package var status: Int
        package var body: String
        package var headers: [String: String]
        package var delay: Duration

        package init(status: Int, body: String = "", headers: [String: String] = [:], delay: Duration = .zero) {
            self.status = status
            self.body = body
            self.headers = headers
            self.delay = delay
        }
    }

    package typealias Behaviour = @Sendable (_ requestNumber: Int, _ request: Received) -> Answer

    private let received = NIOLockedValueBox<[Received]>([])
    private let behaviour: Behaviour
    private let portBox = NIOLockedValueBox<Int?>(nil)

    package init(behaviour: @escaping Behaviour) {
        self.behaviour = behaviour
    }

    package var port: Int { portBox.withLockedValue { $0 } ?? 0 }
    package var url: String { "http://127.0.0.1:\(port)/events" }
    package var requests: [Received] { received.withLockedValue { $0 } }
    package var count: Int { received.withLockedValue { $0.count } }

    fileprivate func setPort(_ port: Int) { portBox.withLockedValue { $0 = port } }

    fileprivate func handle(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 16 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.rawName] = field.value }
        let entry = Received(
            method: request.method.rawValue, path: request.uri.path, headers: headers,
            body: Array(body.readableBytesView)
        )
        let number = received.withLockedValue { list in
            list.append(entry)
            return list.count
        }
        let answer = behaviour(number, entry)
        if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        for (name, value) in answer.headers {
            if let fieldName = HTTPField.Name(name) { fields[fieldName] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body))
        )
    }
}

/// Runs `body` with a started receiver; the receiver stops afterwards.
package func withTestReceiver<T: Sendable>(
    _ behaviour: @escaping TestReceiver.Behaviour = { _, _ in .init(status: 200, body: #"{"ok":true}"#) },
    _ body: @Sendable (TestReceiver) async throws -> T
) async throws -> T {
    let receiver = TestReceiver(behaviour: behaviour)
    let (started, startedContinuation) = AsyncStream.makeStream(of: Int.self)
    let application = Application(
        responder: CallbackResponder<BasicRequestContext> { request, _ in try await receiver.handle(request) },
        configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: nil),
        onServerRunning: { channel in
            startedContinuation.yield(channel.localAddress?.port ?? 0)
            startedContinuation.finish()
        },
        logger: quietLogger
    )
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [application], logger: quietLogger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        for await port in started { receiver.setPort(port) }
        // Stop gracefully and wait: cancelling the server task instead can drop a connection that
        // was accepted but not yet served, which NIO's async server channel treats as a fatal error.
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body(receiver))
        } catch {
            outcome = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        return try outcome.get()
    }
}
