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
        if let traceParent = headers["traceparent"], let traceID = traceID(fromTraceParent: traceParent) {
            return traceID
        }
        return RandomUUID.make()
    }

    /// The trace id of `version-traceid-parentid-flags`, when well-formed and not all zeros.
    static func traceID(fromTraceParent value: String) -> String? {
        let parts = value.trimmingSpaces().split(separator: "-")
        guard parts.count >= 4, parts[1].count == 32,
            parts[1].allSatisfy({ $0.isHexDigit }), parts[1].contains(where: { $0 != "0" })
        else { return nil }
        return parts[1].lowercased()
    }
}
