/// What a sink may need to know about an event beyond the event itself: where it came from and
/// what bounds its delivery. Sources set what they know and hand it to ``Pipeline/process(_:context:)``;
/// the pipeline adds the attempt number and passes it to ``EventSink/deliver(_:context:)``.
public struct DeliveryContext: Sendable {
    /// The Kafka transaction the event's record joins instead of being produced on its own (a
    /// `kafka_transaction` source).
    var transaction: KafkaTransactionSlot?
    /// When the caller stops waiting for the outcome (a gRPC call's deadline). Attempts are cut to
    /// it and no retry starts after it.
    public var deadline: ContinuousClock.Instant?
    /// The W3C trace context the event arrived with (`traceparent`), if any.
    public var trace: TraceContext?
    /// The delivery attempt, from 1; set by the pipeline.
    public var attempt: Int

    public init(deadline: ContinuousClock.Instant? = nil, trace: TraceContext? = nil) {
        self.deadline = deadline
        self.trace = trace
        self.attempt = 1
    }

    init(transaction: KafkaTransactionSlot) {
        self.init()
        self.transaction = transaction
    }

    /// How long an attempt may take: `limit`, or less when the deadline comes first. Nil when the
    /// deadline has passed.
    public func attemptTimeout(within limit: Duration, now: ContinuousClock.Instant = .now) -> Duration? {
        guard let deadline else { return limit }
        let left = now.duration(to: deadline)
        return left > .zero ? min(limit, left) : nil
    }
}

/// A W3C Trace Context `traceparent`: `version-traceid-parentid-flags`.
public struct TraceContext: Sendable, Equatable {
    /// 32 lower-case hex digits, not all zero.
    public var traceID: String
    /// 16 lower-case hex digits, not all zero.
    public var parentID: String
    public var flags: UInt8

    /// Parses a `traceparent` value; nil when it is malformed.
    public init?(traceParent value: String) {
        let parts = value.trimmingSpaces().split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[0].allSatisfy(\.isHexDigit),
            parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit), parts[1].contains(where: { $0 != "0" }),
            parts[2].count == 16, parts[2].allSatisfy(\.isHexDigit), parts[2].contains(where: { $0 != "0" }),
            parts[3].count == 2, let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        traceID = parts[1].lowercased()
        parentID = parts[2].lowercased()
        self.flags = flags
    }

    /// The context of `headers`' `traceparent`, if well-formed.
    public static func of(_ headers: EventHeaders) -> TraceContext? {
        headers["traceparent"].flatMap(TraceContext.init(traceParent:))
    }
}
