internal import CRdKafka
import FisoConcurrency
import Logging
import NIOConcurrencyHelpers

/// The librdkafka library the process runs with (which may be newer than the headers it was
/// built against: the tests run with the `confluent-kafka` wheel's librdkafka via
/// `LD_LIBRARY_PATH`).
public enum KafkaLibrary {
    /// `rd_kafka_version_str()`, for example `2.16.0`.
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// `rd_kafka_version()`: `0xMMmmRRff` (major, minor, revision, pre-release).
    public static var versionNumber: Int { Int(rd_kafka_version()) }

    /// librdkafka before 2.2.0 cannot parse ApiVersion responses that carry tagged fields, which
    /// some Kafka-protocol brokers (tansu among them) send; it then never connects to them.
    public static var parsesTaggedApiVersionFields: Bool { versionNumber >= 0x0202_0000 }
}

/// librdkafka's handle functions are thread-safe (the library locks internally), so the raw
/// pointer may be used from any thread; ownership stays with `KafkaClientHandle`.
struct RdKafkaPointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// A librdkafka queue reference (`rd_kafka_queue_t`); its functions are thread-safe like the
/// handle's. Owned by whoever created it (see `ConsumerState.Queues`).
struct RdKafkaQueuePointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// State the C callbacks reach through the handle's opaque pointer.
final class ClientContext: Sendable {
    let logger: Logger
    let role: String
    let brokers: String
    /// The latest broker-level error librdkafka reported (connection refused, authentication
    /// failure, ...), used to explain timeouts.
    let lastBrokerError = NIOLockedValueBox<String?>(nil)
    let deliveries: DeliveryRegistry?
    let consumer: ConsumerState?
    /// Repeated librdkafka warnings and errors (a broker that is down is reported many times a
    /// second) are logged once per `repeatWindow`, with a count of the ones left out.
    private let recentLogLines = NIOLockedValueBox<[String: (since: ContinuousClock.Instant, suppressed: Int)]>([:])
    private static let repeatWindow = Duration.seconds(10)

    init(
        logger: Logger,
        role: String,
        brokers: [String],
        deliveries: DeliveryRegistry? = nil,
        consumer: ConsumerState? = nil
    ) {
        self.logger = logger
        self.role = role
        self.brokers = brokers.joined(separator: ",")
        self.deliveries = deliveries
        self.consumer = consumer
    }

    /// Whether to log `line` now; returns the number of identical lines suppressed since it was
    /// last logged, or `nil` to skip it.
    func admitLogLine(_ line: String) -> Int? {
        let now = ContinuousClock.now
        return recentLogLines.withLockedValue { recent in
            if let entry = recent[line], now < entry.since.advanced(by: Self.repeatWindow) {
                recent[line] = (entry.since, entry.suppressed + 1)
                return nil
            }
            let suppressed = recent[line]?.suppressed ?? 0
            if recent.count > 200 { recent = recent.filter { now < $0.value.since.advanced(by: Self.repeatWindow) } }
            recent[line] = (now, 0)
            return suppressed
        }
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        opaque.map { Unmanaged<ClientContext>.fromOpaque($0).takeUnretainedValue() }
    }

    /// A sentence to append to timeouts: the last broker error, plus a hint when the loaded
    /// librdkafka is too old for brokers that send tagged ApiVersion fields.
    var connectionHint: String {
        var parts: [String] = []
        if let error = lastBrokerError.withLockedValue({ $0 }) { parts.append("last broker error: \(error)") }
        if !KafkaLibrary.parsesTaggedApiVersionFields {
            parts.append(
                "librdkafka \(KafkaLibrary.version) is older than 2.2.0 and cannot talk to brokers that send tagged ApiVersion fields (such as tansu)"
            )
        }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")"
    }
}

/// Owns one `rd_kafka_t`. Destroying it (in `deinit`) happens on a dedicated thread because
/// `rd_kafka_destroy` joins librdkafka's threads and may take a while.
final class KafkaClientHandle: Sendable {
    let pointer: RdKafkaPointer
    let context: ClientContext
    /// librdkafka's instance name, for example `rdkafka#consumer-1`.
    let name: String

    init(
        type: rd_kafka_type_t,
        configuration: consuming RdKafkaConfigurationBuilder,
        context: ClientContext
    ) throws(KafkaError) {
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        rd_kafka_conf_set_opaque(configuration.pointer, opaque)
        rd_kafka_conf_set_log_cb(configuration.pointer, kafkaLogCallback)
        rd_kafka_conf_set_error_cb(configuration.pointer, kafkaErrorCallback)
        if context.deliveries != nil {
            rd_kafka_conf_set_dr_msg_cb(configuration.pointer, kafkaDeliveryCallback)
        }
        if context.consumer != nil {
            rd_kafka_conf_set_rebalance_cb(configuration.pointer, kafkaRebalanceCallback)
            rd_kafka_conf_set_offset_commit_cb(configuration.pointer, kafkaOffsetCommitCallback)
        }
        var errorText = [CChar](repeating: 0, count: 512)
        guard let raw = rd_kafka_new(type, configuration.pointer, &errorText, errorText.count) else {
            // On failure the configuration still belongs to us; the builder's deinit frees it.
            let text = errorText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KafkaError(kind: .configuration, message: "librdkafka rejected the configuration: \(text)")
        }
        _ = configuration.take()  // Now owned by the rd_kafka_t.
        self.pointer = RdKafkaPointer(raw: raw)
        self.context = context
        self.name = String(cString: rd_kafka_name(raw))
        context.logger.info(
            "Kafka \(context.role) created",
            metadata: [
                "kafka.client": "\(name)",
                "kafka.brokers": "\(context.brokers)",
                "librdkafka.version": "\(KafkaLibrary.version)",
            ]
        )
    }

    deinit {
        let pointer = self.pointer
        let context = self.context
        context.consumer?.detach()
        DedicatedThread.start(name: "fiso-kafka-destroy") {
            rd_kafka_destroy(pointer.raw)
            withExtendedLifetime(context) {}
        }
    }

    /// Blocking: cluster metadata (`rd_kafka_metadata`). All topics when `allTopics`, otherwise
    /// only brokers.
    func metadata(allTopics: Bool, timeout: Duration) -> Result<KafkaClusterMetadata, KafkaError> {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let code = rd_kafka_metadata(pointer.raw, allTopics ? 1 : 0, nil, &metadata, Int32(milliseconds(timeout)))
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            return .failure(connectionError(code, operation: "metadata request", timeout: timeout))
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        return .success(KafkaClusterMetadata(metadata.pointee))
    }

    /// Blocking: the low and high watermark of a partition, asked from its leader.
    func watermarks(of partition: KafkaTopicPartition, timeout: Duration) -> Result<
        (low: Int64, high: Int64), KafkaError
    > {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_query_watermark_offsets(
            pointer.raw,
            partition.topic,
            partition.partition,
            &low,
            &high,
            Int32(milliseconds(timeout))
        )
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return .failure(connectionError(code, operation: "watermark query for \(partition)", timeout: timeout))
        }
        return .success((low, high))
    }

    /// Explains a failed request; timeouts and transport errors become `.connection` errors that
    /// name the brokers and the last broker error.
    func connectionError(_ code: rd_kafka_resp_err_t, operation: String, timeout: Duration) -> KafkaError {
        let wrapped = KafkaErrorCode(code)
        switch code {
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
            RD_KAFKA_RESP_ERR__RESOLVE:
            let outcome =
                code == RD_KAFKA_RESP_ERR__TIMED_OUT ? "got no answer within \(timeout)" : "failed: \(wrapped.text)"
            return KafkaError(
                kind: .connection,
                message:
                    "cannot reach Kafka brokers \(context.brokers): \(operation) \(outcome) [\(wrapped.name)]\(context.connectionHint)",
                code: wrapped,
                isRetriable: true
            )
        default:
            return KafkaError.from(code, kind: .admin, operation: operation)
        }
    }
}

// MARK: - C callbacks (run on librdkafka's threads or inside poll calls on our poll threads)

private func kafkaLogCallback(
    _ handle: OpaquePointer?,
    _ level: Int32,
    _ facility: UnsafePointer<CChar>?,
    _ text: UnsafePointer<CChar>?
) {
    guard let handle, let context = ClientContext.from(rd_kafka_opaque(handle)) else { return }
    let logLevel: Logger.Level =
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    var message = text.map { String(cString: $0) } ?? ""
    if logLevel >= .warning {
        guard let suppressed = context.admitLogLine(message) else { return }
        if suppressed > 0 { message += " (\(suppressed) identical messages suppressed)" }
    }
    context.logger.log(
        level: logLevel,
        "librdkafka: \(message)",
        metadata: [
            "kafka.client": "\(String(cString: rd_kafka_name(handle)))",
            "kafka.facility": "\(facility.map { String(cString: $0) } ?? "")",
        ]
    )
}

private func kafkaErrorCallback(
    _ handle: OpaquePointer?,
    _ code: Int32,
    _ reason: UnsafePointer<CChar>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let context = ClientContext.from(opaque) else { return }
    let error = KafkaErrorCode(rawValue: code)
    let text = reason.map { String(cString: $0) } ?? error.text
    context.lastBrokerError.withLockedValue { $0 = text }
    if error == .fatal, let handle {
        var fatalText = [CChar](repeating: 0, count: 512)
        let fatalCode = KafkaErrorCode(rd_kafka_fatal_error(handle, &fatalText, fatalText.count))
        let fatalMessage = fatalText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        context.logger.error(
            "Kafka \(context.role) raised a fatal error and must be recreated: \(fatalMessage) [\(fatalCode.name)]"
        )
        context.consumer?.fail(
            KafkaError(kind: .consumer, message: "fatal error: \(fatalMessage)", code: fatalCode, isFatal: true)
        )
    } else {
        // librdkafka's log callback already reports connection problems; keep this for debugging.
        context.logger.debug("Kafka \(context.role) error: \(text) [\(error.name)]")
    }
}

private func kafkaDeliveryCallback(
    _ handle: OpaquePointer?,
    _ message: UnsafePointer<rd_kafka_message_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let message, let context = ClientContext.from(opaque), let deliveries = context.deliveries else { return }
    let id = UInt(bitPattern: message.pointee._private)
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    let code = message.pointee.err
    if code == RD_KAFKA_RESP_ERR_NO_ERROR {
        deliveries.complete(
            id,
            .success(
                KafkaDeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset))
        )
        return
    }
    if code == RD_KAFKA_RESP_ERR__PURGE_QUEUE || code == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT {
        deliveries.giveUp(
            id,
            KafkaError(
                kind: .closed,
                message:
                    "delivery to topic '\(topic)' was given up: the producer shut down before the broker acknowledged the message",
                code: KafkaErrorCode(code)
            )
        )
        return
    }
    var error = KafkaError.from(code, kind: .delivery, operation: "delivery to topic '\(topic)'")
    if code == RD_KAFKA_RESP_ERR__FATAL, let handle {
        var fatalText = [CChar](repeating: 0, count: 512)
        let fatalCode = KafkaErrorCode(rd_kafka_fatal_error(handle, &fatalText, fatalText.count))
        let fatalMessage = fatalText.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        error.message += ": \(fatalMessage) [\(fatalCode.name)]"
        error.isFatal = true
    } else if code == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || code == RD_KAFKA_RESP_ERR__TIMED_OUT {
        error.message += context.connectionHint
    }
    deliveries.complete(id, .failure(error))
}

private func kafkaRebalanceCallback(
    _ handle: OpaquePointer?,
    _ code: rd_kafka_resp_err_t,
    _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let handle, let context = ClientContext.from(opaque), let consumer = context.consumer else { return }
    consumer.handleRebalance(handle: handle, code: code, partitions: partitions)
}

private func kafkaOffsetCommitCallback(
    _ handle: OpaquePointer?,
    _ code: rd_kafka_resp_err_t,
    _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let context = ClientContext.from(opaque), let consumer = context.consumer else { return }
    consumer.handleCommitResult(code: code, offsets: offsets)
}

// MARK: - Partition lists

extension KafkaTopicPartition {
    /// Reads a C partition list (topic, partition and offset of each element).
    static func read(
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) -> [KafkaTopicPartitionOffset] {
        guard let list, let elements = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = elements[index]
            return KafkaTopicPartitionOffset(
                topic: String(cString: element.topic),
                partition: element.partition,
                offset: element.offset
            )
        }
    }
}

/// Owns a `rd_kafka_topic_partition_list_t` built from Swift values.
struct RdKafkaPartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ offsets: [KafkaTopicPartitionOffset]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(offsets.count, 1)))
        for entry in offsets {
            let element = rd_kafka_topic_partition_list_add(pointer, entry.topic, entry.partition)
            element?.pointee.offset = entry.offset
        }
    }

    init(_ partitions: [KafkaTopicPartition]) {
        self.init(partitions.map { KafkaTopicPartitionOffset($0, offset: fiso_rdk_offset_invalid) })
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }
}
