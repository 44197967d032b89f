import AsyncHTTPClient
import FisoQuantities
import Foundation
import NIOCore
import NIOHTTP1

/// `sink.type: http` settings.
public struct HTTPSinkSettings: SinkSettings {
    public static let allowedMethods = ["POST", "PUT", "PATCH"]
    public static let defaultTimeout = Duration.seconds(10)
    /// Largest downstream response body relayed to synchronous callers.
    public static let maxReplyBytes = 4 << 20

    public var url: URL
    public var method: String
    /// Static headers; they take precedence over headers the event carries.
    public var headers: [(name: String, value: HeaderValueSource)]
    /// Time one attempt may take, connection included.
    public var timeout: Duration

    public init(
        url: URL, method: String = "POST", headers: [(name: String, value: HeaderValueSource)] = [],
        timeout: Duration = Self.defaultTimeout
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.timeout = timeout
    }
}

extension HTTPSinkSettings {
    public static let typeName = "http"
    public static let configKeys = ["url", "method", "headers", "timeout"]
    public static let writesBinaryCloudEvents = true

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        guard let text = config["url"].requiredString() else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else {
            config["url"].problem("\"\(text)\" is not an http:// or https:// URL with a host")
            return nil
        }
        var settings = HTTPSinkSettings(url: url)
        if let method = config["method"].string() {
            if HTTPSinkSettings.allowedMethods.contains(method.uppercased()) {
                settings.method = method.uppercased()
            } else {
                config["method"].problem(
                    "must be one of \(HTTPSinkSettings.allowedMethods.joined(separator: ", ")), got \"\(method)\""
                )
            }
        }
        for (name, valueNode) in config["headers"].freeMapping() ?? [] {
            guard let value = HeaderValueSource.read(valueNode) else { continue }
            if HTTPHeaderRules.isValidName(name), value.isValidLiteral {
                settings.headers.append((name, value))
            } else {
                config["headers"].problem("\"\(name)\" is not a valid HTTP header (name or value)")
            }
        }
        if let timeout = config["timeout"].duration(minimum: .milliseconds(1)) { settings.timeout = timeout }
        return settings
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSink {
        try HTTPSink(settings: self, client: context.httpClient, mode: context.flow.cloudEvents.mode)
    }
}

/// Delivers CloudEvents to an HTTP endpoint, in the HTTP binding's structured mode (the event as
/// `application/cloudevents+json`) or binary mode (`ce-*` headers, the data as the body). Each call
/// is one attempt; the pipeline retries what this reports as retryable: connection errors,
/// timeouts, 5xx and 429.
struct HTTPSink: EventSink {
    let settings: HTTPSinkSettings
    let client: HTTPClient
    let mode: CloudEventMode
    let staticHeaders: [(name: String, value: HeaderValueSource.Resolved)]

    init(settings: HTTPSinkSettings, client: HTTPClient, mode: CloudEventMode = .structured) throws {
        self.settings = settings
        self.client = client
        self.mode = mode
        var resolved: [(name: String, value: HeaderValueSource.Resolved)] = []
        for (name, value) in settings.headers {
            do {
                resolved.append((name, try value.resolved()))
            } catch {
                throw FlowFactory.BuildError(description: "sink.config.headers.\(name): \(error)")
            }
        }
        staticHeaders = resolved
    }

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        guard let attemptTimeout = context.attemptTimeout(within: settings.timeout) else {
            throw SinkError(
                "the caller's deadline passed before the delivery to \(settings.url.absoluteString)",
                isRetryable: false, httpStatus: 504)
        }
        var request = HTTPClientRequest(url: settings.url.absoluteString)
        request.method = HTTPMethod(rawValue: settings.method)
        // The binding's own headers come from the CloudEvent only, never from event headers.
        for (name, value) in event.headers
        where HTTPHeaderRules.isForwardable(name) && HTTPHeaderRules.isValidName(name)
            && HTTPHeaderRules.isValidValue(value) && !name.lowercased().hasPrefix("ce-")
        {
            request.headers.replaceOrAdd(name: name, value: value)
        }
        for (name, value) in staticHeaders {
            do {
                request.headers.replaceOrAdd(name: name, value: try value.current())
            } catch {
                throw SinkError("header \(name): \(error)", isRetryable: true)
            }
        }
        switch mode {
        case .structured:
            request.headers.replaceOrAdd(name: "Content-Type", value: CloudEvent.contentType)
            request.body = .bytes(ByteBuffer(bytes: event.body))
        case .binary:
            for (name, value) in event.cloudEvent.binaryModeHeaders(prefix: "ce-", percentEncoding: true) {
                request.headers.replaceOrAdd(name: name, value: value)
            }
            let data = event.cloudEvent.binaryModeData()
            request.headers.replaceOrAdd(name: "Content-Type", value: data.contentType)
            request.body = .bytes(ByteBuffer(bytes: data.bytes))
        }

        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            let timeout = TimeAmount.nanoseconds(Int64(attemptTimeout.seconds * 1e9))
            response = try await client.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: HTTPSinkSettings.maxReplyBytes)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw SinkError(
                "\(settings.url.absoluteString) did not answer within \(GoDuration.format(attemptTimeout))",
                isRetryable: true, httpStatus: 504
            )
        } catch is NIOTooManyBytesError {
            throw SinkError(
                "\(settings.url.absoluteString) answered with a body over \(ByteSize.format(HTTPSinkSettings.maxReplyBytes))",
                isRetryable: false
            )
        } catch {
            throw SinkError("cannot reach \(settings.url.absoluteString): \(error)", isRetryable: true)
        }

        let status = Int(response.status.code)
        let reply = SinkReply(
            status: status, headers: response.headers.map { ($0.name, $0.value) }, body: body
        )
        switch status {
        case 200..<300:
            return reply
        case 429, 500..<600:
            throw SinkError(
                "\(settings.url.absoluteString) answered \(status)", isRetryable: true,
                retryAfter: response.headers.first(name: "Retry-After").flatMap(RetryAfter.parse), httpStatus: 502
            )
        default:
            throw SinkError(
                "\(settings.url.absoluteString) answered \(status)", isRetryable: false, reply: reply,
                httpStatus: (400..<500).contains(status) ? status : 502
            )
        }
    }

    func shutdown() async {
        // The HTTP client is shared by all flows and shut down by the runtime.
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
enum RetryAfter {
    static func parse(_ value: String) -> Duration? {
        let trimmed = value.trimmingSpaces()
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .seconds(max(0, date.timeIntervalSinceNow))
    }
}
