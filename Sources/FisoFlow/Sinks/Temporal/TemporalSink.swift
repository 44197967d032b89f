import FisoCEL
import FisoGRPC
import FisoJSON
import FisoTemporal
import Foundation
import Logging
import Prometheus

/// Starts or signals a Temporal workflow for each event, through the frontend's gRPC API.
///
/// Every attempt for one event sends the same request id (derived from the flow and the CloudEvent
/// id), so the server treats a retried start or signal as the first one. `UNAVAILABLE`,
/// `DEADLINE_EXCEEDED` and `RESOURCE_EXHAUSTED` are retried by the pipeline; other failures are
/// permanent.
struct TemporalSink: EventSink {
    /// How the workflow id of an event is computed.
    enum WorkflowIDRule: Sendable {
        case perEvent(prefix: String)
        case literal(String)
        case template([TemporalSinkSettings.TemplatePart])
        case expression(CELProgram)
    }

    let client: TemporalClient
    let settings: TemporalSinkSettings
    let workflowID: WorkflowIDRule
    let params: [CELProgram]
    let needed: Set<String>
    let flow: String
    let logger: Logger
    let alreadyRunning: Counter

    static func make(settings: TemporalSinkSettings, context: FlowBuildContext) async throws -> TemporalSink {
        let expressions = context.expressions
        let workflowID: WorkflowIDRule
        switch settings.workflowID {
        case .perEvent: workflowID = .perEvent(prefix: settings.workflowType)
        case .template(let parts): workflowID = .template(parts)
        case .textOrExpression(let text):
            do {
                switch try expressions.override(text) {
                case .literal(let literal): workflowID = .literal(literal)
                case .expression(let program): workflowID = .expression(program)
                }
            } catch {
                throw FlowFactory.BuildError(description: "sink.config.workflowIdExpr: \(error.description)")
            }
        }
        var params: [CELProgram] = []
        for (index, text) in settings.params.enumerated() {
            do {
                params.append(try expressions.compile(text))
            } catch {
                throw FlowFactory.BuildError(description: "sink.config.params[\(index)].expr: \(error.description)")
            }
        }
        var needed = params.reduce(into: Set<String>()) { $0.formUnion($1.freeIdentifiers) }
        if case .expression(let program) = workflowID { needed.formUnion(program.freeIdentifiers) }

        let connection = try connection(for: settings, context: context)
        let client: TemporalClient
        do {
            client = try TemporalClient(connection: connection)
        } catch {
            throw FlowFactory.BuildError(description: "sink.config: \(error.message)")
        }
        // An unreachable frontend or a missing namespace fails the flow's start (shown in /readyz);
        // the runtime starts it again later.
        let probe = min(settings.timeout, .seconds(5))
        do {
            _ = try await client.systemInfo(timeout: probe)
            try await client.describeNamespace(timeout: probe)
        } catch {
            await client.shutdown()
            let what = error.isNotFound ? "namespace \"\(settings.namespace)\" not found" : error.message
            throw FlowFactory.BuildError(
                description: "sink: the Temporal frontend at \(settings.hostPort) is not usable: \(what)")
        }
        return TemporalSink(
            client: client, settings: settings, workflowID: workflowID, params: params, needed: needed,
            flow: context.flow.name, logger: context.logger,
            alreadyRunning: context.metrics.registry.makeCounter(
                descriptor: MetricNames.temporalAlreadyRunning, labels: [("flow", context.flow.name)])
        )
    }

    static func connection(for settings: TemporalSinkSettings, context: FlowBuildContext) throws -> TemporalConnection {
        let target: HostPort
        do {
            target = try HostPort(parsing: settings.hostPort)
        } catch {
            throw FlowFactory.BuildError(description: "sink.config.hostPort: \(error.message)")
        }
        var tls: GRPCClientTLS?
        if settings.usesTLS {
            tls = GRPCClientTLS(
                caFile: settings.tls.caFile, certificateFile: settings.tls.certificateFile,
                keyFile: settings.tls.keyFile, skipVerify: settings.tls.skipVerify)
        }
        let credentials: (any TemporalCredentials)?
        switch settings.auth {
        case .none: credentials = nil
        case .apiKey(let key): credentials = StaticTemporalCredentials(key)
        case .apiKeyEnv(let name): credentials = EnvironmentTemporalCredentials(variable: name)
        case .tokenFile(let path): credentials = FileTemporalCredentials(path: path)
        case .oidc(let oidc):
            let secret: HeaderValueSource.Resolved
            do {
                secret = try oidc.clientSecret.resolved()
            } catch {
                throw FlowFactory.BuildError(description: "sink.config.auth.oidc: \(error)")
            }
            credentials = OIDCClientCredentials(settings: oidc, secret: secret, httpClient: context.httpClient)
        }
        return TemporalConnection(target: target, namespace: settings.namespace, tls: tls, credentials: credentials)
    }

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        guard let timeout = context.attemptTimeout(within: settings.timeout) else {
            throw SinkError(
                "the caller's deadline passed before the delivery to Temporal at \(settings.hostPort)",
                isRetryable: false, httpStatus: 504)
        }
        let activation = needed.isEmpty ? CELActivation() : FlowExpressions.activation(for: event.event, needed: needed)
        let id = try workflowID(for: event, activation: activation)
        let input = try arguments(for: event, activation: activation)
        let requestID = "\(flow):\(event.cloudEvent.id)"
        let header = Self.header(for: event, trace: context.trace)
        do {
            switch settings.mode {
            case .start:
                let start = WorkflowStart(
                    workflowID: id, workflowType: settings.workflowType, taskQueue: settings.taskQueue, input: input,
                    requestID: requestID, header: header)
                if try await client.startWorkflow(start, timeout: timeout) == .alreadyRunning {
                    alreadyRunning.increment()
                    logger.notice(
                        "workflow already running; counted as delivered",
                        metadata: [
                            "workflow_id": "\(id)", "correlation_id": "\(event.correlationID)",
                            "cloudevent_id": "\(event.cloudEvent.id)",
                        ])
                }
            case .signal(let name):
                let signal = WorkflowSignal(
                    workflowID: id, signalName: name, input: input, requestID: requestID, header: header)
                try await client.signalWorkflow(signal, timeout: timeout)
            }
        } catch {
            throw SinkError(
                "Temporal workflow \(id): \(error.message)", isRetryable: error.isRetryable,
                httpStatus: error.isDeadlineExceeded ? 504 : 502)
        }
        return .none
    }

    func shutdown() async {
        await client.shutdown()
    }

    // MARK: What is sent

    /// The arguments: each `params` expression's value, or — as the Go original sends it, so its
    /// workflows keep working — the whole CloudEvent (`specversion`, `id`, `source`, `type`, …,
    /// `data`) as the only one.
    func arguments(for event: OutboundEvent, activation: CELActivation) throws -> [TemporalPayload] {
        guard !params.isEmpty else {
            return [.json(event.body)]
        }
        var payloads: [TemporalPayload] = []
        payloads.reserveCapacity(params.count)
        for (index, program) in params.enumerated() {
            do {
                payloads.append(.json(try program.evaluate(activation).jsonValue().serialized()))
            } catch {
                throw SinkError("sink.config.params[\(index)].expr: \(error)", isRetryable: false, httpStatus: 422)
            }
        }
        return payloads
    }

    func workflowID(for event: OutboundEvent, activation: CELActivation) throws -> String {
        switch workflowID {
        case .perEvent(let prefix): return "\(prefix)-\(event.cloudEvent.id)"
        case .literal(let text): return text
        case .expression(let program):
            let value: CELValue
            do {
                value = try program.evaluate(activation)
            } catch {
                throw SinkError("sink.config.workflowIdExpr: \(error)", isRetryable: false, httpStatus: 422)
            }
            switch value {
            case .string(let text) where !text.isEmpty: return text
            case .int, .uint, .double:
                if let json = try? value.jsonValue() { return json.jsonText }
            default: break
            }
            throw SinkError(
                "sink.config.workflowIdExpr must give a non-empty string, got \(value.runtimeType.name)",
                isRetryable: false, httpStatus: 422)
        case .template(let parts):
            var id = ""
            for part in parts {
                switch part {
                case .text(let text): id += text
                case .path(let path):
                    guard let value = Self.lookup(path, in: event) else {
                        throw SinkError(
                            "sink.config.workflowIdExpr: {{.\(path.joined(separator: "."))}} is not in the event",
                            isRetryable: false, httpStatus: 422)
                    }
                    id += value
                }
            }
            return id
        }
    }

    /// A template path: looked up in the event data first; when it is not there, in the CloudEvent
    /// (as the Go original resolves `{{.id}}` and `{{.data.orderId}}`). Scalars only.
    static func lookup(_ path: [String], in event: OutboundEvent) -> String? {
        let data = event.cloudEvent.json["data"] ?? event.event.payload
        for root in [data, JSONValue.object(event.cloudEvent.json)] {
            var current: JSONValue? = root
            for segment in path {
                guard case .object(let object)? = current else {
                    current = nil
                    break
                }
                current = object[segment]
            }
            switch current {
            case .string(let text)?: return text
            case .null?, nil, .object?, .array?: continue
            case let value?: return value.jsonText
            }
        }
        return nil
    }

    /// Header fields for the workflow's interceptors: `x-correlation-id` (a JSON string) and, when
    /// the event has trace context, `_tracer-data` ({"traceparent": …, "tracestate": …}), the key
    /// the SDKs' OpenTelemetry interceptors read.
    static func header(for event: OutboundEvent, trace: TraceContext?) -> [String: TemporalPayload] {
        var header: [String: TemporalPayload] = [
            "x-correlation-id": .json(JSONValue.string(event.correlationID).serialized())
        ]
        if let traceParent = event.headers["traceparent"], TraceContext(traceParent: traceParent) != nil {
            var carrier: JSONObject = ["traceparent": .string(traceParent)]
            if let state = event.headers["tracestate"] { carrier["tracestate"] = .string(state) }
            header["_tracer-data"] = .json(JSONValue.object(carrier).serialized())
        }
        return header
    }
}
