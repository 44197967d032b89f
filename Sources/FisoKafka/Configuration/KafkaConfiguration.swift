/// Connection settings shared by every client of one Kafka cluster.
///
/// `properties` is passed to librdkafka unchanged (after the typed settings), so any librdkafka
/// property for security or tuning can be set there: `security.protocol`, `sasl.mechanism`,
/// `sasl.username`, `sasl.password`, `ssl.ca.location`, `socket.keepalive.enable`, and so on.
/// librdkafka rejects unknown properties and invalid values with its own error text, which
/// `KafkaError.message` carries. Properties that a typed setting controls are rejected so that
/// a value is never set in two places (see `KafkaClientConfiguration.reservedProperties`).
public struct KafkaClientConfiguration: Hashable, Sendable {
    /// Bootstrap brokers as `host:port` (librdkafka `bootstrap.servers`). Required.
    public var brokers: [String]
    /// `client.id`, shown in broker logs and metrics. Default `fiso-flow`.
    public var clientID: String
    /// Free-form librdkafka properties. Default empty.
    public var properties: [String: String]

    /// Creates a cluster configuration.
    public init(brokers: [String], clientID: String = "fiso-flow", properties: [String: String] = [:]) {
        self.brokers = brokers
        self.clientID = clientID
        self.properties = properties
    }

    /// Properties that the typed settings of this configuration set.
    public static let reservedProperties: [String: String] = [
        "bootstrap.servers": "brokers",
        "metadata.broker.list": "brokers",
        "client.id": "clientID",
    ]

    /// Checks the typed settings and every property with librdkafka, without connecting.
    public func validate() throws(KafkaError) {
        var builder = try RdKafkaConfigurationBuilder()
        try apply(to: &builder, reserved: Self.reservedProperties)
    }

    func apply(to builder: inout RdKafkaConfigurationBuilder, reserved: [String: String]) throws(KafkaError) {
        if brokers.isEmpty {
            throw KafkaError(kind: .configuration, message: "brokers must list at least one host:port")
        }
        for broker in brokers {
            guard let colon = broker.lastIndex(of: ":"),
                !broker[..<colon].isEmpty,
                let port = Int(broker[broker.index(after: colon)...]), (1...65535).contains(port),
                !broker.contains(where: { $0 == "," || $0.isWhitespace })
            else {
                throw KafkaError(kind: .configuration, message: "broker '\(broker)' is not of the form host:port")
            }
        }
        if clientID.isEmpty {
            throw KafkaError(kind: .configuration, message: "clientID must not be empty")
        }
        try builder.set("bootstrap.servers", brokers.joined(separator: ","))
        try builder.set("client.id", clientID)
        for key in properties.keys.sorted() {
            if let setting = reserved[key] {
                throw KafkaError(
                    kind: .configuration,
                    message:
                        "property '\(key)' is controlled by the setting '\(setting)'; set it there instead of in properties",
                    property: key
                )
            }
            // `properties` is a dictionary, so the value exists.
            try builder.set(key, properties[key] ?? "")
        }
    }
}

/// Where a consumer group starts reading a partition that has no committed offset.
public enum KafkaStartOffset: Hashable, Sendable, CustomStringConvertible {
    /// The oldest retained message (`auto.offset.reset=earliest`).
    case earliest
    /// Only messages produced after the assignment (`auto.offset.reset=latest`).
    case latest
    /// This offset. It is clamped into the partition's retained range [low, high] at assignment;
    /// if the watermarks cannot be read, an out-of-range offset falls back to `earliest`.
    case offset(Int64)

    /// Parses `earliest`, `latest` or a non-negative integer.
    public init(parsing text: String) throws(KafkaError) {
        switch text.lowercased() {
        case "earliest", "beginning", "smallest": self = .earliest
        case "latest", "end", "largest": self = .latest
        default:
            guard let number = Int64(text), number >= 0 else {
                throw KafkaError(
                    kind: .configuration,
                    message: "startOffset '\(text)' must be earliest, latest or a non-negative offset"
                )
            }
            self = .offset(number)
        }
    }

    public var description: String {
        switch self {
        case .earliest: "earliest"
        case .latest: "latest"
        case .offset(let offset): String(offset)
        }
    }
}

/// Settings of a `KafkaConsumer`. Offsets are only ever committed by this library for messages
/// that were marked processed (`enable.auto.commit=false`, `enable.auto.offset.store=false`).
public struct KafkaConsumerConfiguration: Hashable, Sendable {
    /// The cluster to read from.
    public var cluster: KafkaClientConfiguration
    /// The consumer group (`group.id`). Required.
    public var groupID: String
    /// The topics to subscribe to. At least one.
    public var topics: [String]
    /// Where to start when the group has no committed offset for a partition. Default `latest`
    /// (Kafka's default).
    public var startOffset: KafkaStartOffset
    /// `session.timeout.ms`: how long the group waits for a silent member. Default 45 s
    /// (librdkafka's default).
    public var sessionTimeout: Duration
    /// How often the consumer commits the offsets of processed messages in the background.
    /// `nil` commits only when `commit()` is called (and on revoke/close if `commitOnRevoke`).
    /// Default 1 s.
    public var commitInterval: Duration?
    /// Commit the processed offsets of partitions that are revoked (and on close). Turn this off
    /// when offsets are committed through a producer transaction instead. Default `true`.
    public var commitOnRevoke: Bool
    /// Messages buffered between the poll thread and the reader of `events`; above this the
    /// consumer pauses fetching. Default 1000.
    public var maxBufferedMessages: Int
    /// On shutdown, how long to wait for messages already delivered to be marked processed
    /// before the final commit and leaving the group. Default 10 s.
    public var shutdownDrainTimeout: Duration
    /// Timeout for the blocking requests the consumer makes itself (committed offsets and
    /// watermarks on assignment, synchronous commits). Default 10 s.
    public var requestTimeout: Duration

    /// Creates a consumer configuration with the documented defaults.
    public init(
        cluster: KafkaClientConfiguration,
        groupID: String,
        topics: [String],
        startOffset: KafkaStartOffset = .latest,
        sessionTimeout: Duration = .seconds(45),
        commitInterval: Duration? = .seconds(1),
        commitOnRevoke: Bool = true,
        maxBufferedMessages: Int = 1000,
        shutdownDrainTimeout: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(10)
    ) {
        self.cluster = cluster
        self.groupID = groupID
        self.topics = topics
        self.startOffset = startOffset
        self.sessionTimeout = sessionTimeout
        self.commitInterval = commitInterval
        self.commitOnRevoke = commitOnRevoke
        self.maxBufferedMessages = maxBufferedMessages
        self.shutdownDrainTimeout = shutdownDrainTimeout
        self.requestTimeout = requestTimeout
    }

    /// librdkafka properties that typed settings control (with the setting's name).
    public static let reservedProperties: [String: String] = KafkaClientConfiguration.reservedProperties.merging(
        [
            "group.id": "groupID",
            "enable.auto.commit": "(always false: commits follow processed messages)",
            "enable.auto.offset.store": "(always false: commits follow processed messages)",
            "auto.offset.reset": "startOffset",
            "session.timeout.ms": "sessionTimeout",
        ],
        uniquingKeysWith: { first, _ in first }
    )

    /// Checks every setting and property with librdkafka, without connecting.
    public func validate() throws(KafkaError) {
        _ = try makeBuilder()
    }

    func makeBuilder() throws(KafkaError) -> RdKafkaConfigurationBuilder {
        if groupID.isEmpty {
            throw KafkaError(kind: .configuration, message: "consumer groupID must not be empty")
        }
        if topics.isEmpty {
            throw KafkaError(kind: .configuration, message: "a consumer needs at least one topic")
        }
        for topic in topics { try validateTopicName(topic) }
        if case .offset(let offset) = startOffset, offset < 0 {
            throw KafkaError(kind: .configuration, message: "startOffset \(offset) must not be negative")
        }
        let sessionMilliseconds = try positiveMilliseconds(sessionTimeout, name: "sessionTimeout")
        if let commitInterval { _ = try positiveMilliseconds(commitInterval, name: "commitInterval") }
        if maxBufferedMessages < 1 {
            throw KafkaError(kind: .configuration, message: "maxBufferedMessages must be at least 1")
        }
        _ = try positiveMilliseconds(requestTimeout, name: "requestTimeout")
        if shutdownDrainTimeout < .zero {
            throw KafkaError(kind: .configuration, message: "shutdownDrainTimeout must not be negative")
        }

        var builder = try RdKafkaConfigurationBuilder()
        try builder.set("group.id", groupID)
        try builder.set("enable.auto.commit", "false")
        try builder.set("enable.auto.offset.store", "false")
        try builder.set("session.timeout.ms", String(sessionMilliseconds))
        switch startOffset {
        case .earliest, .offset: try builder.set("auto.offset.reset", "earliest")
        case .latest: try builder.set("auto.offset.reset", "latest")
        }
        try cluster.apply(to: &builder, reserved: Self.reservedProperties)
        return builder
    }
}

/// How many replicas must acknowledge a produced message (`acks`).
public enum KafkaAcks: String, Hashable, Sendable {
    /// No acknowledgement (`acks=0`). Incompatible with idempotence.
    case none = "0"
    /// The partition leader only (`acks=1`). Incompatible with idempotence.
    case leader = "1"
    /// All in-sync replicas (`acks=all`).
    case all = "all"

    /// Parses `all`, `-1`, `1`, `leader`, `0` or `none`.
    public init(parsing text: String) throws(KafkaError) {
        switch text.lowercased() {
        case "all", "-1": self = .all
        case "1", "leader": self = .leader
        case "0", "none": self = .none
        default:
            throw KafkaError(kind: .configuration, message: "requiredAcks '\(text)' must be all, 1 or 0")
        }
    }
}

/// Settings of a `KafkaProducer`.
public struct KafkaProducerConfiguration: Hashable, Sendable {
    /// The cluster to write to.
    public var cluster: KafkaClientConfiguration
    /// Required acknowledgements. Default `.all`.
    public var acks: KafkaAcks
    /// Idempotent producer (`enable.idempotence`): no duplicates or reordering from internal
    /// retries. Default `true`; requires `acks == .all`.
    public var idempotent: Bool
    /// Makes the producer transactional (`transactional.id`). Default `nil`. Requires `idempotent`.
    public var transactionalID: String?
    /// `message.timeout.ms`: how long a message may wait for its acknowledgement, retries
    /// included, before `produce` fails. Default 30 s.
    public var deliveryTimeout: Duration
    /// `linger.ms`: how long to wait to fill a batch. Default 5 ms (librdkafka's default).
    public var linger: Duration
    /// On shutdown, how long to wait for outstanding messages before failing them. Default 10 s.
    public var shutdownFlushTimeout: Duration

    /// Creates a producer configuration with the documented defaults.
    public init(
        cluster: KafkaClientConfiguration,
        acks: KafkaAcks = .all,
        idempotent: Bool = true,
        transactionalID: String? = nil,
        deliveryTimeout: Duration = .seconds(30),
        linger: Duration = .milliseconds(5),
        shutdownFlushTimeout: Duration = .seconds(10)
    ) {
        self.cluster = cluster
        self.acks = acks
        self.idempotent = idempotent
        self.transactionalID = transactionalID
        self.deliveryTimeout = deliveryTimeout
        self.linger = linger
        self.shutdownFlushTimeout = shutdownFlushTimeout
    }

    /// librdkafka properties that typed settings control (with the setting's name).
    public static let reservedProperties: [String: String] = KafkaClientConfiguration.reservedProperties.merging(
        [
            "acks": "acks",
            "request.required.acks": "acks",
            "enable.idempotence": "idempotent",
            "transactional.id": "transactionalID",
            "message.timeout.ms": "deliveryTimeout",
            "delivery.timeout.ms": "deliveryTimeout",
            "linger.ms": "linger",
            "queue.buffering.max.ms": "linger",
        ],
        uniquingKeysWith: { first, _ in first }
    )

    /// Checks every setting and property with librdkafka, without connecting.
    public func validate() throws(KafkaError) {
        _ = try makeBuilder()
    }

    func makeBuilder() throws(KafkaError) -> RdKafkaConfigurationBuilder {
        if idempotent && acks != .all {
            throw KafkaError(
                kind: .configuration,
                message: "an idempotent producer needs acks=all (got acks=\(acks.rawValue)); set idempotent to false"
            )
        }
        if let transactionalID {
            if transactionalID.isEmpty {
                throw KafkaError(kind: .configuration, message: "transactionalID must not be empty")
            }
            if !idempotent {
                throw KafkaError(kind: .configuration, message: "a transactional producer must be idempotent")
            }
        }
        let timeoutMilliseconds = try positiveMilliseconds(deliveryTimeout, name: "deliveryTimeout")
        if linger < .zero { throw KafkaError(kind: .configuration, message: "linger must not be negative") }
        if shutdownFlushTimeout < .zero {
            throw KafkaError(kind: .configuration, message: "shutdownFlushTimeout must not be negative")
        }

        var builder = try RdKafkaConfigurationBuilder()
        try builder.set("acks", acks.rawValue)
        try builder.set("enable.idempotence", idempotent ? "true" : "false")
        if let transactionalID { try builder.set("transactional.id", transactionalID) }
        try builder.set("message.timeout.ms", String(timeoutMilliseconds))
        try builder.set("linger.ms", String(milliseconds(linger)))
        try cluster.apply(to: &builder, reserved: Self.reservedProperties)
        return builder
    }
}

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
func validateTopicName(_ topic: String) throws(KafkaError) {
    let allowed = topic.utf8.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
    guard !topic.isEmpty, topic.utf8.count <= 249, allowed, topic != ".", topic != ".." else {
        throw KafkaError(
            kind: .invalidArgument,
            message: "topic name '\(topic)' is invalid: use 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-'"
        )
    }
}

/// Whole milliseconds in `duration`, rounded down, clamped to `Int32.max` (librdkafka's limit).
func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    if seconds >= Int64(Int32.max / 1000) { return Int(Int32.max) }
    if seconds < 0 { return 0 }
    return Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
}

func positiveMilliseconds(_ duration: Duration, name: String) throws(KafkaError) -> Int {
    let value = milliseconds(duration)
    guard value >= 1 else {
        throw KafkaError(kind: .configuration, message: "\(name) must be at least 1 ms (got \(duration))")
    }
    return value
}
