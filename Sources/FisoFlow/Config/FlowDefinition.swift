import Foundation

/// One validated flow file: where events come from, what happens to them and where they go.
public struct FlowDefinition: Sendable {
    public var name: String
    /// The file the flow was read from.
    public var file: String
    public var source: ComponentDefinition<any SourceSettings>
    public var transform: TransformDefinition?
    public var cloudEvents: CloudEventOverrides
    public var interceptors: [ComponentDefinition<any InterceptorSettings>]
    public var sink: ComponentDefinition<any SinkSettings>
    public var errorHandling: ErrorHandlingPolicy
    /// The Kafka clusters this flow may name: its inline `kafka.clusters` over the shared file.
    public var kafkaClusters: [String: KafkaClusterDefinition]
}

/// A `{type, config}` block after its config was read by the type's parser.
public struct ComponentDefinition<Settings: Sendable>: Sendable {
    public var type: String
    public var settings: Settings
}

/// `transform.fields`: output field → CEL expression, in the order written. A field's path has
/// more than one name when it sits in a nested mapping (`order: {id: data.id}` builds
/// `{"order": {"id": …}}`).
public struct TransformDefinition: Sendable {
    public var fields: [(path: [String], expression: String)]
    /// Line of each field's expression in the file, for error messages.
    public var lines: [Int?]
}

/// How a sink writes CloudEvents: the whole event as a JSON body or record value (structured), or
/// the attributes as `ce-*` / `ce_*` headers and the data as the body or value (binary).
public enum CloudEventMode: String, Sendable, CaseIterable {
    case structured
    case binary
}

/// `cloudevents`: each attribute is CEL evaluated against the incoming event, or a literal; the
/// extension attributes to set; and the mode sinks write in.
public struct CloudEventOverrides: Sendable, Equatable {
    /// One `cloudevents.extensions` entry.
    public struct Extension: Sendable, Equatable {
        public var name: String
        public var expression: String

        public init(name: String, expression: String) {
            self.name = name
            self.expression = expression
        }
    }

    public var mode: CloudEventMode = .structured
    public var extensions: [Extension] = []
    public var id: String?
    public var type: String?
    public var source: String?
    public var subject: String?
    public var data: String?
    public var dataContentType: String?
    public var dataSchema: String?

    public init(
        id: String? = nil, type: String? = nil, source: String? = nil, subject: String? = nil, data: String? = nil,
        dataContentType: String? = nil, dataSchema: String? = nil
    ) {
        self.id = id
        self.type = type
        self.source = source
        self.subject = subject
        self.data = data
        self.dataContentType = dataContentType
        self.dataSchema = dataSchema
    }

    /// The configured attributes with their YAML keys, in schema order.
    public var configured: [(attribute: String, expression: String)] {
        [
            ("id", id), ("type", type), ("source", source), ("subject", subject), ("data", data),
            ("datacontenttype", dataContentType), ("dataschema", dataSchema),
        ].compactMap { key, value in value.map { (key, $0) } }
    }

    /// No attribute or extension is overridden (the mode does not change the event).
    public var isEmpty: Bool { configured.isEmpty && extensions.isEmpty }
}

/// `errorHandling`: retries, the dead-letter topic and when a Kafka offset may be committed.
public struct ErrorHandlingPolicy: Sendable, Equatable {
    public enum CommitPolicy: String, Sendable, CaseIterable {
        /// Commit only after the sink succeeded; otherwise stop the partition and retry.
        case sink
        /// Commit when the sink or the dead-letter write succeeded.
        case sinkOrDeadLetter = "sink_or_dlq"
        /// Output records and consumed offsets commit in one Kafka transaction.
        case kafkaTransaction = "kafka_transaction"
    }

    /// The dead-letter topic; nil means the default `fiso-dlq-<flow name>` where a DLQ applies.
    public var deadLetterTopic: String?
    /// The Kafka cluster the dead-letter topic lives on (defaults to the source's cluster).
    public var deadLetterCluster: String?
    /// Retries after the first attempt; 0 disables retries.
    public var maxRetries: Int
    public var backoff: BackoffPolicy
    public var commitPolicy: CommitPolicy
    public var transactionalID: String?

    public static let defaultMaxRetries = 3

    public init(
        deadLetterTopic: String? = nil, deadLetterCluster: String? = nil,
        maxRetries: Int = ErrorHandlingPolicy.defaultMaxRetries, backoff: BackoffPolicy = .default,
        commitPolicy: CommitPolicy = .sinkOrDeadLetter, transactionalID: String? = nil
    ) {
        self.deadLetterTopic = deadLetterTopic
        self.deadLetterCluster = deadLetterCluster
        self.maxRetries = maxRetries
        self.backoff = backoff
        self.commitPolicy = commitPolicy
        self.transactionalID = transactionalID
    }
}

/// How long to wait between delivery attempts.
public struct BackoffPolicy: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case exponential
        case constant
    }

    public var kind: Kind
    /// Wait before the first retry.
    public var initial: Duration
    /// Upper bound of any wait, including one asked for by `Retry-After`.
    public var maximum: Duration
    public var multiplier: Double
    /// Fraction of random spread around each wait (0.2 = ±20%), so retries of many events do not
    /// arrive in lockstep.
    public var jitter: Double

    public static let `default` = BackoffPolicy(
        kind: .exponential, initial: .milliseconds(200), maximum: .seconds(30), multiplier: 2, jitter: 0.2
    )

    /// The wait before retry number `retry` (1 for the first retry), without jitter.
    public func baseDelay(beforeRetry retry: Int) -> Duration {
        guard kind == .exponential, retry > 1 else { return min(initial, maximum) }
        let factor = pow(multiplier, Double(retry - 1))
        let seconds = initial.seconds * factor
        guard seconds.isFinite, seconds < maximum.seconds else { return maximum }
        return .seconds(seconds)
    }

    /// The wait before retry number `retry`, with jitter applied.
    public func delay(beforeRetry retry: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = baseDelay(beforeRetry: retry).seconds
        guard jitter > 0 else { return .seconds(base) }
        let spread = base * jitter * Double.random(in: -1...1, using: &generator)
        return .seconds(min(max(0, base + spread), maximum.seconds))
    }
}

/// A Kafka cluster: bootstrap brokers plus librdkafka properties (security, tuning).
public struct KafkaClusterDefinition: Sendable, Equatable {
    public var brokers: [String]
    public var properties: [String: String]

    public init(brokers: [String], properties: [String: String] = [:]) {
        self.brokers = brokers
        self.properties = properties
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
