import FisoGRPC
import FisoTemporal
import GRPCCore
import NIOConcurrencyHelpers

/// A fake Temporal frontend on a free 127.0.0.1 port that records what clients send — the method,
/// the call's metadata (`authorization` …) and request id — and answers every call with success,
/// or with the status ``failNext(_:times:)`` asks for; optionally over TLS or mutual TLS. For tests of what the real server does not show
/// (headers) and of failures it cannot easily be made to produce.
public final class RecordingTemporalFrontend: Sendable {
    /// One call as it arrived.
    public struct Call: Sendable {
        public var method: String
        /// Metadata as (lower-cased key, value) pairs, in order.
        public var metadata: [(key: String, value: String)]
        /// The request id of a start or signal; empty for the other calls.
        public var requestID: String

        public func value(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
    }

    private let service: Service
    private let runner: GRPCServerRunner
    private let serving: Task<Void, Never>
    public let port: Int

    private init(service: Service, runner: GRPCServerRunner, serving: Task<Void, Never>, port: Int) {
        self.service = service
        self.runner = runner
        self.serving = serving
        self.port = port
    }

    /// Binds a free port and serves until ``stop()``; with `tls`, serves TLS only (mutual TLS when
    /// it names a client CA).
    public static func start(tls: GRPCServerTLS? = nil) async throws -> RecordingTemporalFrontend {
        let service = Service()
        let runner = GRPCServerRunner(
            configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0), tls: tls),
            services: [service]
        )
        let serving = Task { _ = try? await runner.run() }
        let port = try await runner.listeningPort()
        return RecordingTemporalFrontend(service: service, runner: runner, serving: serving, port: port)
    }

    /// A connection to this frontend (plaintext, namespace `default`; set `tls` for a TLS frontend).
    public var connection: TemporalConnection {
        TemporalConnection(target: HostPort(host: "127.0.0.1", port: port))
    }

    /// `127.0.0.1:port`.
    public var address: String { "127.0.0.1:\(port)" }

    /// Every call so far.
    public var calls: [Call] { service.state.withLockedValue { $0.calls } }

    /// The next `times` start/signal calls fail with `code`.
    public func failNext(_ code: RPCError.Code, times: Int = 1) {
        service.state.withLockedValue { $0.failures += Array(repeating: code, count: times) }
    }

    public func stop() async {
        await runner.shutdown(gracePeriod: .seconds(1))
        await serving.value
    }

    final class Service: Temporal_Api_Workflowservice_V1_WorkflowService.ServiceProtocol {
        struct State {
            var calls: [Call] = []
            var failures: [RPCError.Code] = []
        }
        let state = NIOLockedValueBox(State())

        private func record(_ method: String, _ metadata: Metadata, requestID: String = "", mayFail: Bool) throws {
            let pairs = metadata.compactMap { entry -> (key: String, value: String)? in
                guard case .string(let value) = entry.value else { return nil }
                return (entry.key.lowercased(), value)
            }
            let failure = state.withLockedValue { state -> RPCError.Code? in
                state.calls.append(Call(method: method, metadata: pairs, requestID: requestID))
                return mayFail && !state.failures.isEmpty ? state.failures.removeFirst() : nil
            }
            if let failure { throw RPCError(code: failure, message: "injected by RecordingTemporalFrontend") }
        }

        func describeNamespace(
            request: ServerRequest<Temporal_Api_Workflowservice_V1_DescribeNamespaceRequest>, context: ServerContext
        ) async throws -> ServerResponse<Temporal_Api_Workflowservice_V1_DescribeNamespaceResponse> {
            try record("DescribeNamespace", request.metadata, mayFail: false)
            var response = Temporal_Api_Workflowservice_V1_DescribeNamespaceResponse()
            response.namespaceInfo.name = request.message.namespace
            return ServerResponse(message: response)
        }

        func startWorkflowExecution(
            request: ServerRequest<Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest>,
            context: ServerContext
        ) async throws -> ServerResponse<Temporal_Api_Workflowservice_V1_StartWorkflowExecutionResponse> {
            try record(
                "StartWorkflowExecution", request.metadata, requestID: request.message.requestID, mayFail: true)
            var response = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionResponse()
            response.runID = "run-" + request.message.requestID
            response.started = true
            return ServerResponse(message: response)
        }

        func signalWorkflowExecution(
            request: ServerRequest<Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionRequest>,
            context: ServerContext
        ) async throws -> ServerResponse<Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionResponse> {
            try record(
                "SignalWorkflowExecution", request.metadata, requestID: request.message.requestID, mayFail: true)
            return ServerResponse(message: .init())
        }

        func getSystemInfo(
            request: ServerRequest<Temporal_Api_Workflowservice_V1_GetSystemInfoRequest>, context: ServerContext
        ) async throws -> ServerResponse<Temporal_Api_Workflowservice_V1_GetSystemInfoResponse> {
            try record("GetSystemInfo", request.metadata, mayFail: false)
            var response = Temporal_Api_Workflowservice_V1_GetSystemInfoResponse()
            response.serverVersion = "fake"
            return ServerResponse(message: response)
        }
    }
}
