import CRdKafka
import Logging
import ServiceLifecycle
import Synchronization

/// A message to produce.
public struct KafkaProducerRecord: Hashable, Sendable {
    /// The topic to write to.
    public var topic: String
    /// The record key (`nil` for none). With the default partitioner, equal keys go to the same
    /// partition.
    public var key: [UInt8]?
    /// The record value (`nil` for a null value).
    public var value: [UInt8]?
    /// The record headers, in order.
    public var headers: [KafkaHeader]
    /// An explicit partition, or `nil` to let the partitioner choose.
    public var partition: Int32?

    /// Creates a record.
    public init(
        topic: String,
        key: [UInt8]? = nil,
        value: [UInt8]?,
        headers: [KafkaHeader] = [],
        partition: Int32? = nil
    ) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }
}

/// A producer whose `produce` returns only after the broker acknowledged the message (with the
/// configured `acks`, `all` by default; idempotent by default).
///
/// Delivery reports are served by a dedicated poll thread that starts with the producer.
/// As a swift-service-lifecycle `Service`, `run()` waits for graceful shutdown and then calls
/// `shutdown()`, which rejects new messages, flushes outstanding ones (up to
/// `shutdownFlushTimeout`) and fails whatever is left. Register producers in a `ServiceGroup`
/// before the services that produce through them, so they shut down after them.
///
/// Transactions (`transactionalID` set): `initTransactions()` once, then per batch
/// `beginTransaction()`, `produce`..., `sendOffsetsToTransaction(_:consumer:)`,
/// `commitTransaction()`; on an error with `requiresAbort` call `abortTransaction()`, on
/// `isRetriable` repeat the call, on `isFatal` recreate the producer.
public final class KafkaProducer: Service, Sendable {
    /// The configuration the producer was created with.
    public let configuration: KafkaProducerConfiguration
    private let handle: KafkaClientHandle
    private let deliveries: DeliveryRegistry
    private let worker: BlockingWorker
    private let poller: MainQueuePoller
    private let shutdownRequested = OneShotSignal()
    private let shutdownStarted = Mutex(false)
    private let shutdownFinished = OneShotSignal()

    /// Creates the producer and starts its poll thread; throws configuration errors.
    public init(
        configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "fiso.kafka.producer")
    ) throws(KafkaError) {
        let builder = try configuration.makeBuilder()
        let deliveries = DeliveryRegistry()
        let context = ClientContext(
            logger: logger,
            role: configuration.transactionalID == nil ? "producer" : "transactional producer",
            brokers: configuration.cluster.brokers,
            deliveries: deliveries
        )
        let handle = try KafkaClientHandle(type: RD_KAFKA_PRODUCER, configuration: builder, context: context)
        self.configuration = configuration
        self.handle = handle
        self.deliveries = deliveries
        self.worker = BlockingWorker(name: "fiso-kafka-producer-calls")
        self.poller = MainQueuePoller(handle: handle, threadName: "fiso-kafka-producer-poll") {
            // After the poll loop: serve the reports of purged messages, then fail any leftover.
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(1))
            while deliveries.pendingCount > 0 && clock.now < deadline {
                _ = rd_kafka_poll(handle.pointer.raw, 10)
            }
            deliveries.close(failingWith: KafkaError(kind: .closed, message: "the Kafka producer was shut down"))
        }
    }

    deinit {
        poller.stop()
    }

    /// Produces `record` and returns where the broker stored it once the broker acknowledged it.
    /// Throws a `.delivery` error (with librdkafka's reason and, for timeouts, the last broker
    /// error) if it was not acknowledged within `deliveryTimeout`, and `.closed` after shutdown.
    /// Once handed to librdkafka a message cannot be called back, so cancelling the calling task
    /// does not interrupt the wait.
    public func produce(_ record: KafkaProducerRecord) async throws(KafkaError) -> KafkaDeliveryReport {
        if record.topic.isEmpty || record.topic.utf8.contains(0) {
            throw KafkaError(kind: .invalidArgument, message: "topic name '\(record.topic)' is invalid")
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.deliveryTimeout)
        var backoff = Duration.milliseconds(1)
        while true {
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<DeliveryOutcome, Never>) in
                guard let id = deliveries.register(.single(continuation)) else {
                    continuation.resume(
                        returning: .failed(KafkaError(kind: .closed, message: "the Kafka producer is shut down"))
                    )
                    return
                }
                if let failure = enqueue(record, id: id) {
                    deliveries.complete(id, failure)
                }
            }
            switch outcome {
            case .delivered(let report):
                return report
            case .failed(let error):
                throw error
            case .queueFull:
                // librdkafka's local queue is full (`queue.buffering.max.messages`): wait for room.
                guard clock.now < deadline else {
                    throw KafkaError(
                        kind: .delivery,
                        message:
                            "delivery to topic '\(record.topic)' failed: the local producer queue stayed full for \(configuration.deliveryTimeout)",
                        code: KafkaErrorCode(RD_KAFKA_RESP_ERR__QUEUE_FULL),
                        isRetriable: true
                    )
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(50))
            }
        }
    }

    /// Produces one message; see `produce(_:)`.
    public func produce(
        topic: String,
        key: [UInt8]? = nil,
        value: [UInt8]?,
        headers: [KafkaHeader] = [],
        partition: Int32? = nil
    ) async throws(KafkaError) -> KafkaDeliveryReport {
        try await produce(
            KafkaProducerRecord(topic: topic, key: key, value: value, headers: headers, partition: partition)
        )
    }

    /// Produces `records` and waits until each was acknowledged or failed, with one wait for the
    /// whole batch instead of one per message (for throughput where messages are handled in
    /// batches). Results are in the order of `records`; messages of one partition are written in
    /// that order.
    public func produce(batch records: [KafkaProducerRecord]) async -> [Result<KafkaDeliveryReport, KafkaError>] {
        let batch = DeliveryBatch(count: records.count)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.deliveryTimeout)
        for (index, record) in records.enumerated() {
            if record.topic.isEmpty || record.topic.utf8.contains(0) {
                batch.complete(
                    index,
                    .failed(KafkaError(kind: .invalidArgument, message: "topic name '\(record.topic)' is invalid"))
                )
                continue
            }
            var backoff = Duration.milliseconds(1)
            while true {
                guard let id = deliveries.register(.batch(batch, index)) else {
                    batch.complete(
                        index, .failed(KafkaError(kind: .closed, message: "the Kafka producer is shut down")))
                    break
                }
                guard let refused = enqueue(record, id: id) else { break }  // Handed to librdkafka.
                _ = deliveries.remove(id)
                if case .queueFull = refused, clock.now < deadline {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .milliseconds(50))
                    continue
                }
                batch.complete(index, refused)
                break
            }
        }
        return await batch.wait()
    }

    /// Hands the record to librdkafka; returns the outcome if it was not accepted.
    private func enqueue(_ record: KafkaProducerRecord, id: UInt) -> DeliveryOutcome? {
        var headerList: OpaquePointer?
        if !record.headers.isEmpty {
            headerList = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                let code = header.value.withOptionalUnsafeBytes { bytes in
                    rd_kafka_header_add(headerList, header.name, -1, bytes?.baseAddress, bytes?.count ?? 0)
                }
                if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                    rd_kafka_headers_destroy(headerList)
                    return .failed(
                        KafkaError.from(code, kind: .invalidArgument, operation: "adding header '\(header.name)'"))
                }
            }
        }
        let raw = handle.pointer.raw
        let error: OpaquePointer? = record.key.withOptionalUnsafeBytes { key in
            record.value.withOptionalUnsafeBytes { value in
                fiso_rdk_produce(
                    raw,
                    record.topic,
                    record.partition ?? fiso_rdk_partition_unassigned,
                    key?.baseAddress,
                    key?.count ?? 0,
                    record.key == nil ? 0 : 1,
                    value?.baseAddress,
                    value?.count ?? 0,
                    record.value == nil ? 0 : 1,
                    headerList,
                    UnsafeMutableRawPointer(bitPattern: id)
                )
            }
        }
        guard let error else { return nil }
        // Not accepted: the headers are still ours.
        if let headerList { rd_kafka_headers_destroy(headerList) }
        let code = rd_kafka_error_code(error)
        if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            rd_kafka_error_destroy(error)
            return .queueFull
        }
        var failure = KafkaError.consuming(error, kind: .delivery, operation: "produce to topic '\(record.topic)'")
        if code == RD_KAFKA_RESP_ERR__FATAL {
            var text = [CChar](repeating: 0, count: 512)
            let fatal = KafkaErrorCode(rd_kafka_fatal_error(raw, &text, text.count))
            failure.message +=
                ": " + text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + " [\(fatal.name)]"
            failure.isFatal = true
        }
        return .failed(failure)
    }

    /// Waits until every outstanding message was acknowledged or failed, up to `timeout`.
    public func flush(timeout: Duration) async throws(KafkaError) {
        let handle = self.handle
        try await worker.run { () -> Result<Void, KafkaError> in
            let code = rd_kafka_flush(handle.pointer.raw, Int32(milliseconds(timeout)))
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let waiting = rd_kafka_outq_len(handle.pointer.raw)
                return .failure(
                    KafkaError(
                        kind: .delivery,
                        message:
                            "flush timed out after \(timeout) with \(waiting) messages or requests outstanding\(handle.context.connectionHint)",
                        code: KafkaErrorCode(code),
                        isRetriable: true
                    )
                )
            }
            return .success(())
        }
    }

    /// Waits for graceful shutdown (or cancellation), then runs `shutdown()`.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await shutdownRequested.wait()
            } onCancel: {
                shutdownRequested.raise()
            }
        } onGracefulShutdown: {
            self.shutdownRequested.raise()
        }
        await shutdown()
    }

    /// Rejects new messages, flushes outstanding ones for up to `shutdownFlushTimeout`, fails
    /// the rest with `.closed` and stops the poll thread. Safe to call more than once.
    public func shutdown() async {
        shutdownRequested.raise()
        let first = shutdownStarted.withLock { started in
            defer { started = true }
            return !started
        }
        guard first else {
            await shutdownFinished.wait()
            return
        }
        deliveries.rejectNew()
        let timeout = configuration.shutdownFlushTimeout
        do {
            try await flush(timeout: timeout)
        } catch {
            handle.context.logger.warning("Kafka producer shutdown: \(error); failing the remaining messages")
        }
        let handle = self.handle
        _ = try? await worker.run { () -> Result<Void, KafkaError> in
            _ = rd_kafka_purge(handle.pointer.raw, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            return .success(())
        }
        poller.stop()
        await poller.finished.wait()
        worker.close()
        handle.context.logger.info("Kafka producer shut down")
        shutdownFinished.raise()
    }

    /// Messages handed to librdkafka and not yet acknowledged or failed.
    public var outstandingCount: Int { deliveries.pendingCount }

    // MARK: Transactions

    /// Registers the `transactionalID` with the transaction coordinator and fences older
    /// producers with the same id. Call once before the first transaction.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let raw = handle.pointer
        try await worker.run { () -> Result<Void, KafkaError> in
            Self.result(
                rd_kafka_init_transactions(raw.raw, Int32(milliseconds(timeout))), operation: "init transactions")
        }
    }

    /// Begins a transaction (local, does not block).
    public func beginTransaction() throws(KafkaError) {
        try Self.result(rd_kafka_begin_transaction(handle.pointer.raw), operation: "begin transaction").get()
    }

    /// Adds the consumer group's `offsets` (next offsets to read, such as
    /// `KafkaConsumer.uncommittedOffsets()`) to the current transaction, using `consumer`'s
    /// group metadata, so they commit together with the transaction's messages. Does nothing for
    /// an empty list. On a retriable error, retry with the same offsets.
    public func sendOffsetsToTransaction(
        _ offsets: [KafkaTopicPartitionOffset],
        consumer: KafkaConsumer,
        timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        // librdkafka rejects an empty list; nothing to add is not an error here.
        guard offsets.contains(where: { $0.offset >= 0 }) else { return }
        let raw = handle.pointer
        let consumerHandle = consumer.handle
        try await worker.run { () -> Result<Void, KafkaError> in
            guard let metadata = rd_kafka_consumer_group_metadata(consumerHandle.pointer.raw) else {
                return .failure(
                    KafkaError(
                        kind: .transaction, message: "the consumer has no group metadata (is it a group member?)")
                )
            }
            defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
            let list = RdKafkaPartitionList(offsets)
            return Self.result(
                rd_kafka_send_offsets_to_transaction(raw.raw, list.pointer, metadata, Int32(milliseconds(timeout))),
                operation: "send offsets to transaction"
            )
        }
    }

    /// Flushes the transaction's messages and commits it (messages and offsets together).
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let raw = handle.pointer
        try await worker.run { () -> Result<Void, KafkaError> in
            Self.result(
                rd_kafka_commit_transaction(raw.raw, Int32(milliseconds(timeout))),
                operation: "commit transaction"
            )
        }
    }

    /// Aborts the current transaction: its messages are discarded for `read_committed`
    /// consumers and its offsets are not committed.
    public func abortTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let raw = handle.pointer
        try await worker.run { () -> Result<Void, KafkaError> in
            Self.result(
                rd_kafka_abort_transaction(raw.raw, Int32(milliseconds(timeout))), operation: "abort transaction")
        }
    }

    private static func result(_ error: OpaquePointer?, operation: String) -> Result<Void, KafkaError> {
        guard let error else { return .success(()) }
        return .failure(KafkaError.consuming(error, kind: .transaction, operation: operation))
    }

    // MARK: Cluster

    /// Checks that a broker answers a metadata request within `timeout`; throws a `.connection`
    /// error naming the brokers and librdkafka's last broker error otherwise.
    public func checkConnectivity(timeout: Duration = .seconds(10)) async throws(KafkaError) {
        let handle = self.handle
        _ = try await worker.run { handle.metadata(allTopics: false, timeout: timeout) }
    }
}

extension Optional where Wrapped == [UInt8] {
    fileprivate func withOptionalUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        switch self {
        case .none: body(nil)
        case .some(let bytes): bytes.withUnsafeBytes { body($0) }
        }
    }
}

/// The result of one `produce` attempt.
enum DeliveryOutcome: Sendable {
    case delivered(KafkaDeliveryReport)
    case failed(KafkaError)
    case queueFull
}

/// The result of a queue-full `produce` attempt that ran out of time.
private func queueFullError() -> KafkaError {
    KafkaError(
        kind: .delivery,
        message: "delivery failed: the local producer queue stayed full",
        code: KafkaErrorCode(RD_KAFKA_RESP_ERR__QUEUE_FULL),
        isRetriable: true
    )
}

/// The results of `produce(batch:)`, filled in by delivery reports in any order.
final class DeliveryBatch: Sendable {
    private struct State {
        var results: [Result<KafkaDeliveryReport, KafkaError>?]
        var remaining: Int
        var waiter: CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func complete(_ index: Int, _ outcome: DeliveryOutcome) {
        let result: Result<KafkaDeliveryReport, KafkaError> =
            switch outcome {
            case .delivered(let report): .success(report)
            case .failed(let error): .failure(error)
            case .queueFull: .failure(queueFullError())
            }
        let finished = state.withLock {
            state -> (
                CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>,
                [Result<KafkaDeliveryReport, KafkaError>]
            )? in
            guard state.results.indices.contains(index), state.results[index] == nil else { return nil }
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, state.results.compactMap { $0 })
        }
        if let (waiter, results) = finished { waiter.resume(returning: results) }
    }

    func wait() async -> [Result<KafkaDeliveryReport, KafkaError>] {
        await withCheckedContinuation {
            (continuation: CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>) in
            let ready = state.withLock { state -> [Result<KafkaDeliveryReport, KafkaError>]? in
                if state.remaining == 0 { return state.results.compactMap { $0 } }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Who waits for a message's delivery report.
enum DeliveryWaiter: Sendable {
    case single(CheckedContinuation<DeliveryOutcome, Never>)
    case batch(DeliveryBatch, Int)

    func resume(_ outcome: DeliveryOutcome) {
        switch self {
        case .single(let continuation): continuation.resume(returning: outcome)
        case .batch(let batch, let index): batch.complete(index, outcome)
        }
    }
}

/// Messages waiting for their delivery report, keyed by the id passed to librdkafka as the
/// message opaque.
final class DeliveryRegistry: Sendable {
    private struct State {
        var nextID: UInt = 1
        var pending: [UInt: DeliveryWaiter] = [:]
        var acceptsNew = true
    }

    private let state = Mutex(State())

    /// Registers a waiting message; `nil` once the producer no longer accepts messages.
    func register(_ waiter: DeliveryWaiter) -> UInt? {
        state.withLock { state in
            guard state.acceptsNew else { return nil }
            let id = state.nextID
            state.nextID &+= 1
            if state.nextID == 0 { state.nextID = 1 }
            state.pending[id] = waiter
            return id
        }
    }

    /// Forgets a registration without resuming it (the message was not handed to librdkafka).
    func remove(_ id: UInt) -> DeliveryWaiter? {
        state.withLock { $0.pending.removeValue(forKey: id) }
    }

    func complete(_ id: UInt, _ outcome: DeliveryOutcome) {
        remove(id)?.resume(outcome)
    }

    func complete(_ id: UInt, _ result: Result<KafkaDeliveryReport, KafkaError>) {
        switch result {
        case .success(let report): complete(id, .delivered(report))
        case .failure(let error): complete(id, .failed(error))
        }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }

    func rejectNew() { state.withLock { $0.acceptsNew = false } }

    /// Stops accepting messages and fails every waiting one with `error`.
    func close(failingWith error: KafkaError) {
        let waiting = state.withLock { state -> [DeliveryWaiter] in
            state.acceptsNew = false
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for waiter in waiting { waiter.resume(.failed(error)) }
    }
}

/// Serves a client's main queue (delivery reports, error callbacks) on a dedicated thread.
final class MainQueuePoller: Sendable {
    private let handle: KafkaClientHandle
    private let stopSignal = OneShotSignal()
    /// Raised when the thread has finished, including `onStop`.
    let finished = OneShotSignal()

    init(handle: KafkaClientHandle, threadName: String, onStop: @escaping @Sendable () -> Void) {
        self.handle = handle
        let stopSignal = self.stopSignal
        let finished = self.finished
        startDedicatedThread(name: threadName) {
            while !stopSignal.isRaised {
                _ = rd_kafka_poll(handle.pointer.raw, 100)
            }
            onStop()
            finished.raise()
        }
    }

    /// Ends the poll loop (the main queue is woken at once).
    func stop() {
        stopSignal.raise()
        if let queue = rd_kafka_queue_get_main(handle.pointer.raw) {
            rd_kafka_queue_yield(queue)
            rd_kafka_queue_destroy(queue)
        }
    }
}
