import FisoGRPC
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

public typealias TemporalPayload = Temporal_Api_Common_V1_Payload
public typealias TemporalHeader = Temporal_Api_Common_V1_Header

extension Temporal_Api_Common_V1_Payload {
    /// A value in Temporal's standard `json/plain` encoding, which every SDK's default data
    /// converter decodes: `json` must be one JSON text.
    public static func json(_ json: some Sequence<UInt8>) -> Self {
        var payload = Self()
        payload.metadata = ["encoding": Array("json/plain".utf8).withUnsafeBytes { Data($0) }]
        payload.data = Data(json)
        return payload
    }

    /// The `encoding` metadata entry, e.g. `json/plain`.
    public var encoding: String? { metadata["encoding"].map { String(decoding: $0, as: UTF8.self) } }
}

/// A workflow start: what ``TemporalClient/startWorkflow(_:timeout:)`` sends.
public struct WorkflowStart: Sendable {
    public var workflowID: String
    public var workflowType: String
    public var taskQueue: String
    /// The workflow's arguments, one payload each.
    public var input: [TemporalPayload]
    /// The server treats starts with the same request id as one: a retry returns the first run.
    public var requestID: String
    public var header: [String: TemporalPayload]

    public init(
        workflowID: String, workflowType: String, taskQueue: String, input: [TemporalPayload], requestID: String,
        header: [String: TemporalPayload] = [:]
    ) {
        self.workflowID = workflowID
        self.workflowType = workflowType
        self.taskQueue = taskQueue
        self.input = input
        self.requestID = requestID
        self.header = header
    }
}

/// A signal to a running workflow: what ``TemporalClient/signalWorkflow(_:timeout:)`` sends.
public struct WorkflowSignal: Sendable {
    public var workflowID: String
    /// Empty signals the current run.
    public var runID: String
    public var signalName: String
    public var input: [TemporalPayload]
    /// The server drops a signal whose request id it has already applied to the run.
    public var requestID: String
    public var header: [String: TemporalPayload]

    public init(
        workflowID: String, runID: String = "", signalName: String, input: [TemporalPayload], requestID: String,
        header: [String: TemporalPayload] = [:]
    ) {
        self.workflowID = workflowID
        self.runID = runID
        self.signalName = signalName
        self.input = input
        self.requestID = requestID
        self.header = header
    }
}

/// How a start ended.
public enum WorkflowStartOutcome: Sendable, Equatable {
    /// The server started the run (or, for a repeated request id, returned the run the first
    /// request started).
    case started(runID: String)
    /// A run with this workflow id is already running (started by another request): the event's
    /// workflow exists, which the sink counts as delivered.
    case alreadyRunning
}

/// A failed call, classified: `UNAVAILABLE`, `DEADLINE_EXCEEDED` and `RESOURCE_EXHAUSTED` may
/// succeed when tried again; everything else (`INVALID_ARGUMENT`, `NOT_FOUND`,
/// `PERMISSION_DENIED`, …) will not.
public struct TemporalCallError: Error, Sendable, CustomStringConvertible {
    public var code: RPCError.Code
    public var message: String
    public var isRetryable: Bool

    public var description: String { message }

    public init(code: RPCError.Code, message: String) {
        self.code = code
        self.message = message
        isRetryable = Self.isRetryable(code)
    }

    /// The workflow (signal) or namespace does not exist.
    public var isNotFound: Bool { code == .notFound }
    /// The call's deadline passed.
    public var isDeadlineExceeded: Bool { code == .deadlineExceeded }

    public static func isRetryable(_ code: RPCError.Code) -> Bool {
        code == .unavailable || code == .deadlineExceeded || code == .resourceExhausted
    }
}

/// Calls Temporal's frontend (`temporal.api.workflowservice.v1.WorkflowService`) over one HTTP/2
/// connection: start and signal workflows, and the two calls that show the frontend is there.
///
/// The client runs its connection in a task it owns from creation until ``shutdown()``.
public final class TemporalClient: Sendable {
    public let connection: TemporalConnection
    private let grpcClient: GRPCClient<HTTP2ClientTransport.Posix>
    private let service: Temporal_Api_Workflowservice_V1_WorkflowService.Client<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, Never>
    private let shutDown = Atomic(false)

    /// Checks the configuration (TLS files are read now) and connects lazily.
    public init(connection: TemporalConnection) throws(TemporalConfigurationError) {
        self.connection = connection
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try .fisoClient(target: connection.target, tls: connection.tls) { config in
                // Fail calls fast while the frontend is down; the caller's retries wait instead.
                config.backoff.initial = .milliseconds(100)
                config.backoff.max = .seconds(2)
            }
        } catch {
            throw TemporalConfigurationError(error.message)
        }
        let grpcClient = GRPCClient(transport: transport)
        self.grpcClient = grpcClient
        service = Temporal_Api_Workflowservice_V1_WorkflowService.Client(wrapping: grpcClient)
        connections = Task { try? await grpcClient.runConnections() }
    }

    /// The server's version (`GetSystemInfo`): proves the frontend answers.
    public func systemInfo(timeout: Duration) async throws(TemporalCallError) -> String {
        let request = Temporal_Api_Workflowservice_V1_GetSystemInfoRequest()
        let response = try await call("GetSystemInfo", timeout: timeout) { metadata, options in
            try await self.service.getSystemInfo(request, metadata: metadata, options: options)
        }
        return response.serverVersion
    }

    /// Checks that the configured namespace exists (`DescribeNamespace`; `NOT_FOUND` when not).
    public func describeNamespace(timeout: Duration) async throws(TemporalCallError) {
        var request = Temporal_Api_Workflowservice_V1_DescribeNamespaceRequest()
        request.namespace = connection.namespace
        _ = try await call("DescribeNamespace", timeout: timeout) { [request] metadata, options in
            try await self.service.describeNamespace(request, metadata: metadata, options: options)
        }
    }

    /// Starts a workflow (`StartWorkflowExecution`). A run already going with the same workflow
    /// id (`ALREADY_EXISTS`) is reported as ``WorkflowStartOutcome/alreadyRunning``.
    public func startWorkflow(_ start: WorkflowStart, timeout: Duration) async throws(TemporalCallError)
        -> WorkflowStartOutcome
    {
        var request = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest()
        request.namespace = connection.namespace
        request.workflowID = start.workflowID
        request.workflowType.name = start.workflowType
        request.taskQueue.name = start.taskQueue
        request.taskQueue.kind = .normal
        request.input.payloads = start.input
        request.identity = connection.identity
        request.requestID = start.requestID
        if !start.header.isEmpty { request.header.fields = start.header }
        do {
            let response = try await call("StartWorkflowExecution", timeout: timeout) { [request] metadata, options in
                try await self.service.startWorkflowExecution(request, metadata: metadata, options: options)
            }
            return .started(runID: response.runID)
        } catch  where error.code == .alreadyExists {
            return .alreadyRunning
        }
    }

    /// Signals a workflow (`SignalWorkflowExecution`); `NOT_FOUND` when it does not exist or has
    /// completed.
    public func signalWorkflow(_ signal: WorkflowSignal, timeout: Duration) async throws(TemporalCallError) {
        var request = Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionRequest()
        request.namespace = connection.namespace
        request.workflowExecution.workflowID = signal.workflowID
        request.workflowExecution.runID = signal.runID
        request.signalName = signal.signalName
        request.input.payloads = signal.input
        request.identity = connection.identity
        request.requestID = signal.requestID
        if !signal.header.isEmpty { request.header.fields = signal.header }
        _ = try await call("SignalWorkflowExecution", timeout: timeout) { [request] metadata, options in
            try await self.service.signalWorkflowExecution(request, metadata: metadata, options: options)
        }
    }

    /// Lets calls in flight finish, closes the connection and returns once it is closed.
    public func shutdown() async {
        shutDown.store(true, ordering: .relaxed)
        grpcClient.beginGracefulShutdown()
        await connections.value
    }

    private func call<Response: Sendable>(
        _ method: String, timeout: Duration,
        _ body: @Sendable (Metadata, CallOptions) async throws -> Response
    ) async throws(TemporalCallError) -> Response {
        let target = connection.target
        if shutDown.load(ordering: .relaxed) {
            throw TemporalCallError(
                code: .failedPrecondition, message: "\(method) to \(target): the client is shut down")
        }
        var metadata = Metadata()
        metadata.addString(connection.namespace, forKey: "temporal-namespace")
        if let credentials = connection.credentials {
            do {
                metadata.addString("Bearer " + (try await credentials.token()), forKey: "authorization")
            } catch {
                // A missing credential may appear (a rotated Secret); the pipeline retries.
                throw TemporalCallError(code: .unavailable, message: "\(method) to \(target): credentials: \(error)")
            }
        }
        var options = CallOptions.defaults
        options.timeout = timeout
        do {
            return try await body(metadata, options)
        } catch let error as RPCError {
            var message = "\(method) to \(target) failed: \(error.code.canonicalName)"
            if !error.message.isEmpty { message += ": \(error.message)" }
            if let cause = error.cause { message += " (\(cause))" }
            throw TemporalCallError(code: error.code, message: message)
        } catch {
            throw TemporalCallError(code: .unknown, message: "\(method) to \(target) failed: \(error)")
        }
    }
}
