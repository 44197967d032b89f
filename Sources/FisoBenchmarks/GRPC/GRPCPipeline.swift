import FisoFlow
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The runtime with one gRPC → (no transform) → HTTP flow into a local receiver.
enum GRPCPipeline {
    static func withGRPCToHTTPFlow<T: Sendable>(
        maxPendingAcks: Int, maxConcurrentEvents: Int, _ body: @Sendable (_ grpcPort: Int) async throws -> T
    ) async throws -> T {
        let receiver = CallbackResponder<BasicRequestContext> { request, _ in
            var request = request
            _ = try await request.collectBody(upTo: 1 << 22)
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return try await withHTTPServer(receiver) { receiverPort in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "fiso-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let grpcPort = try freeTCPPort()
            try """
            name: grpc-bench
            source: {type: grpc, config: {listenAddr: "127.0.0.1:\(grpcPort)", maxPendingAcks: \(maxPendingAcks), maxConcurrentEvents: \(maxConcurrentEvents)}}
            sink: {type: http, config: {url: "http://127.0.0.1:\(receiverPort)/events"}}
            """.write(to: directory.appendingPathComponent("bench.yaml"), atomically: true, encoding: .utf8)
            return try await withRuntime(directory: directory.path) { try await body(grpcPort) }
        }
    }
}

/// Runs the fiso-flow runtime in this process on `directory` while `body` runs.
func withRuntime<T: Sendable>(directory: String, _ body: @Sendable () async throws -> T) async throws -> T {
    var logger = Logger(label: "fiso-bench")
    logger.logLevel = .error
    let server = FisoFlowServer(
        configuration: RuntimeConfiguration(
            configDirectory: directory, kafkaConfigPath: "/nonexistent",
            metricsAddress: ListenAddress(host: "127.0.0.1", port: 0)
        ),
        logger: logger
    )
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        while !server.runtime.status.isReady { try await Task.sleep(for: .milliseconds(20)) }
        let result = try await body()
        await server.shutdown()
        try await group.waitForAll()
        return result
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
