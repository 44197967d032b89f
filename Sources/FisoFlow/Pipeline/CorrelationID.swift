import Foundation

/// The id that ties together the logs of one event across services.
public enum CorrelationID {
    public static let headerName = "X-Correlation-ID"

    /// `X-Correlation-ID` when the event has one, else the trace id of a W3C `traceparent`, else a
    /// new UUID.
    public static func of(_ headers: EventHeaders) -> String {
        if let given = headers[headerName]?.trimmingSpaces(), !given.isEmpty, given.count <= 256 {
            return given
        }
        if let trace = TraceContext.of(headers) { return trace.traceID }
        return RandomUUID.make()
    }
}
