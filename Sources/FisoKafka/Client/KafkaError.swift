internal import CRdKafka

/// A librdkafka error code (`rd_kafka_resp_err_t`): negative values are client-side errors,
/// positive values are Kafka protocol errors returned by a broker.
public struct KafkaErrorCode: Hashable, Sendable, CustomStringConvertible {
    /// The numeric code.
    public var rawValue: Int32

    /// Creates a code from its numeric value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    init(_ code: rd_kafka_resp_err_t) { self.rawValue = code.rawValue }

    var cValue: rd_kafka_resp_err_t { rd_kafka_resp_err_t(rawValue: rawValue) }

    /// librdkafka's symbolic name, for example `_MSG_TIMED_OUT` or `TOPIC_ALREADY_EXISTS`.
    public var name: String { String(cString: rd_kafka_err2name(cValue)) }

    /// librdkafka's human-readable text for the code.
    public var text: String { String(cString: rd_kafka_err2str(cValue)) }

    public var description: String { name }

    /// A message was not acknowledged within `message.timeout.ms`.
    public static let messageTimedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
    /// A broker connection failed.
    public static let transport = KafkaErrorCode(RD_KAFKA_RESP_ERR__TRANSPORT)
    /// No broker is reachable.
    public static let allBrokersDown = KafkaErrorCode(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    /// A local operation timed out.
    public static let timedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR__TIMED_OUT)
    /// The client instance raised a fatal error and must be recreated.
    public static let fatal = KafkaErrorCode(RD_KAFKA_RESP_ERR__FATAL)
    /// The topic already exists (from `createTopic`).
    public static let topicAlreadyExists = KafkaErrorCode(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    /// The topic or partition does not exist.
    public static let unknownTopicOrPartition = KafkaErrorCode(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    /// The client does not know the topic.
    public static let unknownTopic = KafkaErrorCode(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
}

/// An error from the Kafka client layer. `description` is a complete sentence meant for logs and
/// validation output: it names the operation, the librdkafka error name and librdkafka's own text.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public enum Kind: String, Hashable, Sendable {
        /// A configuration value or librdkafka property was rejected.
        case configuration
        /// No broker could be reached.
        case connection
        /// A produced message was not acknowledged by the broker.
        case delivery
        /// A transactional producer call failed (see `isRetriable`, `requiresAbort`, `isFatal`).
        case transaction
        /// An offset commit failed.
        case commit
        /// Subscribing, polling or a rebalance failed.
        case consumer
        /// A metadata or admin request failed.
        case admin
        /// The client is shut down or shutting down.
        case closed
        /// An argument was invalid (for example, a topic name with a NUL byte).
        case invalidArgument
        /// The calling task was cancelled while it waited. The work it had handed to librdkafka
        /// is not undone: a produced message may still be delivered, a commit may still complete
        /// (the message says which).
        case cancelled
    }

    /// What failed.
    public var kind: Kind
    /// The explanation, including librdkafka's text where there is one.
    public var message: String
    /// librdkafka's error code, when the error came from librdkafka.
    public var code: KafkaErrorCode?
    /// For configuration errors: the property that was rejected.
    public var property: String?
    /// The operation may succeed when it is tried again (librdkafka's classification for
    /// transactional calls; a heuristic by error code for deliveries).
    public var isRetriable: Bool
    /// Transactional producer: the current transaction must be aborted with
    /// `KafkaProducer.abortTransaction(timeout:)` before a new one can begin.
    public var requiresAbort: Bool
    /// The client instance is unusable and must be recreated (for example, a fenced producer).
    public var isFatal: Bool

    /// Creates an error.
    public init(
        kind: Kind,
        message: String,
        code: KafkaErrorCode? = nil,
        property: String? = nil,
        isRetriable: Bool = false,
        requiresAbort: Bool = false,
        isFatal: Bool = false
    ) {
        self.kind = kind
        self.message = message
        self.code = code
        self.property = property
        self.isRetriable = isRetriable
        self.requiresAbort = requiresAbort
        self.isFatal = isFatal
    }

    public var description: String {
        var text = "Kafka \(kind.rawValue) error: \(message)"
        if let code, !message.contains(code.name) { text += " [\(code.name)]" }
        return text
    }

    /// Builds an error from a librdkafka error object and destroys the object.
    static func consuming(_ error: OpaquePointer, kind: Kind, operation: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let code = KafkaErrorCode(rd_kafka_error_code(error))
        let text = String(cString: rd_kafka_error_string(error))
        return KafkaError(
            kind: kind,
            message: "\(operation) failed: \(text) [\(code.name)]",
            code: code,
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
    }

    /// Builds an error from a librdkafka response code.
    static func from(_ code: rd_kafka_resp_err_t, kind: Kind, operation: String) -> KafkaError {
        let wrapped = KafkaErrorCode(code)
        return KafkaError(
            kind: kind,
            message: "\(operation) failed: \(wrapped.text) [\(wrapped.name)]",
            code: wrapped,
            isRetriable: wrapped.isLikelyRetriable,
            isFatal: wrapped == .fatal
        )
    }
}

extension KafkaErrorCode {
    /// Whether sending again can succeed. librdkafka classifies only transactional errors, so
    /// for delivery errors this lists the codes that are permanent for the message or the client.
    var isLikelyRetriable: Bool {
        switch cValue {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
            RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR_INVALID_MSG,
            RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR__FENCED,
            RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
            RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR__DESTROY, RD_KAFKA_RESP_ERR__AUTHENTICATION,
            RD_KAFKA_RESP_ERR__SSL, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED,
            RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
            false
        default:
            true
        }
    }
}
