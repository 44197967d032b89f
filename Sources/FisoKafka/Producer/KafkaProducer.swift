internal import CRdKafka
import FisoConcurrency
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

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
/// `shutdownFlushTimeout`, or until the task running it is cancelled) and fails whatever is left.
/// Register producers in a `ServiceGroup` before the services that produce through them, so they
/// shut down after them.
///
/// Waits follow the cancellation rule of `FisoConcurrency`: a cancelled `produce`, `flush` or
/// transaction call ends at once with a `.cancelled` error; what it had handed to librdkafka is
/// not undone and the producer accounts for it (logs, `ShutdownReport`).
///
/// Transactions (`transactionalID` set): `initTransactions()` once, then per batch
/// `beginTransaction()`, `produce`..., `sendOffsetsToTransaction(_:consumer:)`,
/// `commitTransaction()`; on an error with `requiresAbort` call `abortTransaction()`, on
/// `isRetriable` repeat the call, on `isFatal` recreate the producer.
public final class KafkaProducer: Service, Sendable {
    /// What `shutdown()` gave up.
    public struct ShutdownReport: Hashable, Sendable {
        /// Messages handed to librdkafka that the broker had not acknowledged when the producer
        /// gave them up (purged after the flush, or failed when the poll thread stopped). Their
        /// `produce` calls failed with `.closed` (or had stopped waiting, `.cancelled`); some may
        /// still have reached the broker.
        public var unconfirmedMessages: Int
        /// Whether the flush was cut short because the task running `shutdown()` was cancelled.
        public var flushCancelled: Bool

        /// Creates a report.
        public init(unconfirmedMessages: Int, flushCancelled: Bool) {
            self.unconfirmedMessages = unconfirmedMessages
            self.flushCancelled = flushCancelled
        }
    }

    /// The configuration the producer was created with.
    public let configuration: KafkaProducerConfiguration
    private let handle: KafkaClientHandle
    private let deliveries: DeliveryRegistry
    private let worker: BlockingWorker
    private let poller: MainQueuePoller
    private let shutdownRequested = AsyncSignal<Void>()
    private let shutdownStarted = NIOLockedValueBox(false)
    /// Fired when a task running (or waiting for) `shutdown()` is cancelled: the flush stops.
    private let flushAbandoned = AsyncSignal<Void>()
    private let shutdownFinished = AsyncSignal<ShutdownReport>()

    /// Creates the producer and starts its poll thread; throws configuration errors.
    public init(
        configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "fiso.kafka.producer")
    ) throws(KafkaError) {
        let builder = try configuration.makeBuilder()
        let deliveries = DeliveryRegistry(logger: logger)
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
            // After the poll loop: give up what is left, serve the reports of the purged
            // messages (librdkafka queues them at once), then fail any leftover.
            _ = rd_kafka_purge(handle.pointer.raw, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
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
    ///
    /// When the calling task is cancelled, the wait ends at once with a `.cancelled` error. A
    /// message already handed to librdkafka cannot be called back: it may still be delivered,
    /// and its delivery report is consumed by the producer (a failure is logged).
    public func produce(_ record: KafkaProducerRecord) async throws(KafkaError) -> KafkaDeliveryReport {
        if record.topic.isEmpty || record.topic.utf8.contains(0) {
            throw KafkaError(kind: .invalidArgument, message: "topic name '\(record.topic)' is invalid")
        }
        if Task.isCancelled { throw Self.cancelledBeforeSending(record.topic) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.deliveryTimeout)
        var backoff = Duration.milliseconds(1)
        let deliveries = self.deliveries
        while true {
            let id = deliveries.reserveID()
            let outcome = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<DeliveryOutcome, Never>) in
                    switch deliveries.register(id, .single(continuation, topic: record.topic)) {
                    case .registered:
                        if let failure = enqueue(record, id: id) { deliveries.complete(id, failure) }
                    case .closed:
                        continuation.resume(
                            returning: .failed(KafkaError(kind: .closed, message: "the Kafka producer is shut down"))
                        )
                    case .cancelled:
                        continuation.resume(returning: .failed(Self.cancelledBeforeSending(record.topic)))
                    }
                }
            } onCancel: {
                deliveries.stopWaiting(id)
            }
            switch outcome {
            case .delivered(let report):
                return report
            case .failed(let error):
                throw error
            case .waitCancelled:
                throw KafkaError(
                    kind: .cancelled,
                    message:
                        "the wait for the broker's acknowledgement of a message to topic '\(record.topic)' was cancelled; the message may still be delivered"
                )
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
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    throw Self.cancelledBeforeSending(record.topic)
                }
                backoff = min(backoff * 2, .milliseconds(50))
            }
        }
    }

    static func cancelledBeforeSending(_ topic: String) -> KafkaError {
        KafkaError(
            kind: .cancelled,
            message: "producing a message to topic '\(topic)' was cancelled before librdkafka took it; it was not sent"
        )
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
    ///
    /// When the calling task is cancelled, it returns at once: records not handed to librdkafka
    /// yet are not sent, and those waiting for their acknowledgement may still be delivered;
    /// both get a `.cancelled` failure.
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
            if Task.isCancelled {
                batch.complete(index, .failed(Self.cancelledBeforeSending(record.topic)))
                continue
            }
            var backoff = Duration.milliseconds(1)
            while true {
                let id = deliveries.reserveID()
                guard deliveries.register(id, .batch(batch, index), checkingCancellation: false) == .registered
                else {
                    batch.complete(
                        index, .failed(KafkaError(kind: .closed, message: "the Kafka producer is shut down")))
                    break
                }
                guard let refused = enqueue(record, id: id) else { break }  // Handed to librdkafka.
                _ = deliveries.remove(id)
                if case .queueFull = refused, clock.now < deadline {
                    do {
                        try await Task.sleep(for: backoff)
                    } catch {
                        batch.complete(index, .failed(Self.cancelledBeforeSending(record.topic)))
                        break
                    }
                    backoff = min(backoff * 2, .milliseconds(50))
                    continue
                }
                batch.complete(index, refused)
                break
            }
        }
        return await batch.wait(topics: records.map(\.topic))
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
    /// Throws `.delivery` when messages are still outstanding then, and `.cancelled` (at once)
    /// when the calling task is cancelled; outstanding messages stay queued either way.
    public func flush(timeout: Duration) async throws(KafkaError) {
        if Task.isCancelled {
            throw KafkaError(kind: .cancelled, message: "the flush was cancelled; outstanding messages stay queued")
        }
        let stop = CancellationFlag()
        let handle = self.handle
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let outcome = AsyncSignal<FlushOutcome>()
        DedicatedThread.start(name: "fiso-kafka-flush") {
            outcome.fire(Self.flushInSlices(handle, until: deadline, stop: { stop.isRaised }))
        }
        let result: FlushOutcome
        do {
            result = try await outcome.wait()
        } catch {
            stop.raise()
            throw KafkaError(
                kind: .cancelled,
                message: "the flush was cancelled; outstanding messages stay queued and may still be delivered"
            )
        }
        if case .timedOut(let waiting) = result { throw flushTimeoutError(timeout: timeout, waiting: waiting) }
    }

    private func flushTimeoutError(timeout: Duration, waiting: Int) -> KafkaError {
        KafkaError(
            kind: .delivery,
            message:
                "flush timed out after \(timeout) with \(waiting) messages or requests outstanding\(handle.context.connectionHint)",
            code: KafkaErrorCode(RD_KAFKA_RESP_ERR__TIMED_OUT),
            isRetriable: true
        )
    }

    enum FlushOutcome: Sendable {
        case flushed
        case timedOut(waiting: Int)
        case stopped
    }

    /// Blocking: flushes in short slices until nothing is outstanding, `deadline` passes or
    /// `stop` says so; the slices bound how long a stop takes to be noticed.
    private static func flushInSlices(
        _ handle: KafkaClientHandle,
        until deadline: ContinuousClock.Instant,
        stop: () -> Bool
    ) -> FlushOutcome {
        let raw = handle.pointer.raw
        while true {
            if stop() { return .stopped }
            let remaining = ContinuousClock.now.duration(to: deadline)
            let slice = min(max(remaining, .zero), .milliseconds(50))
            if rd_kafka_flush(raw, Int32(milliseconds(slice))) == RD_KAFKA_RESP_ERR_NO_ERROR { return .flushed }
            if ContinuousClock.now >= deadline { return .timedOut(waiting: Int(rd_kafka_outq_len(raw))) }
        }
    }

    /// Waits for graceful shutdown (or cancellation), then runs `shutdown()`; cancelled, the
    /// shutdown does not flush.
    public func run() async throws {
        await withGracefulShutdownHandler {
            _ = try? await shutdownRequested.wait()
        } onGracefulShutdown: {
            self.shutdownRequested.fire()
        }
        await shutdown()
    }

    /// Rejects new messages, flushes outstanding ones for up to `shutdownFlushTimeout`, fails
    /// the rest with `.closed` and stops the poll thread. Safe to call more than once; later calls
    /// wait for the first and return its report.
    ///
    /// Bounded under cancellation: when the task running it (or waiting for it) is cancelled,
    /// the flush stops at once and what is left is purged. Logs a warning with the number of
    /// messages given up, and returns it.
    @discardableResult
    public func shutdown() async -> ShutdownReport {
        shutdownRequested.fire()
        let first = shutdownStarted.withLockedValue { started in
            defer { started = true }
            return !started
        }
        let flushAbandoned = self.flushAbandoned
        guard first else {
            // The first call's shutdown is bounded; a cancelled caller cuts its flush short.
            return await withTaskCancellationHandler {
                await shutdownFinished.waitIgnoringCancellation()
            } onCancel: {
                flushAbandoned.fire()
            }
        }
        let logger = handle.context.logger
        deliveries.rejectNew()
        let timeout = configuration.shutdownFlushTimeout
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let handle = self.handle
        // On a thread of its own, not the worker: a transaction call blocked there on a silent
        // broker must not hold the shutdown up.
        let flushed = await withTaskCancellationHandler {
            await runOnOwnThread(name: "fiso-kafka-flush") {
                Self.flushInSlices(handle, until: deadline, stop: { flushAbandoned.isFired })
            }
        } onCancel: {
            flushAbandoned.fire()
        }
        switch flushed {
        case .flushed:
            break
        case .timedOut(let waiting):
            logger.warning(
                "Kafka producer shutdown: \(flushTimeoutError(timeout: timeout, waiting: waiting)); failing the remaining messages"
            )
        case .stopped:
            logger.warning("Kafka producer shutdown was cancelled while flushing; failing the remaining messages")
        }
        // The poll thread purges what is left, serves those reports and fails any leftover.
        poller.stop()
        await poller.finished.waitIgnoringCancellation()
        worker.close()
        let report = ShutdownReport(
            unconfirmedMessages: deliveries.givenUpCount,
            flushCancelled: { if case .stopped = flushed { true } else { false } }()
        )
        if report.unconfirmedMessages > 0 {
            logger.warning(
                "Kafka producer shut down with \(report.unconfirmedMessages) messages not confirmed by the broker; they were given up",
                metadata: ["kafka.unconfirmedMessages": "\(report.unconfirmedMessages)"]
            )
        } else {
            logger.info("Kafka producer shut down")
        }
        shutdownFinished.fire(report)
        return report
    }

    /// Messages handed to librdkafka and not yet acknowledged or failed (including those whose
    /// `produce` call was cancelled).
    public var outstandingCount: Int { deliveries.pendingCount }

    // MARK: Transactions

    /// Registers the `transactionalID` with the transaction coordinator and fences older
    /// producers with the same id. Call once before the first transaction.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let raw = handle.pointer
        try await worker.run(
            cancelled: Self.cancelledTransactionCall("init transactions"),
            whenAbandoned: abandonedCallLogger("init transactions")
        ) { _ -> Result<Void, KafkaError> in
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
        try await worker.run(
            cancelled: Self.cancelledTransactionCall("send offsets to transaction"),
            whenAbandoned: abandonedCallLogger("send offsets to transaction")
        ) { _ -> Result<Void, KafkaError> in
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
        try await worker.run(
            cancelled: Self.cancelledTransactionCall("commit transaction"),
            whenAbandoned: abandonedCallLogger("commit transaction")
        ) { _ -> Result<Void, KafkaError> in
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
        try await worker.run(
            cancelled: Self.cancelledTransactionCall("abort transaction"),
            whenAbandoned: abandonedCallLogger("abort transaction")
        ) { _ -> Result<Void, KafkaError> in
            Self.result(
                rd_kafka_abort_transaction(raw.raw, Int32(milliseconds(timeout))), operation: "abort transaction")
        }
    }

    /// The `.cancelled` error of a transactional call whose waiter was cancelled.
    private static func cancelledTransactionCall(_ operation: String) -> String {
        "the wait for '\(operation)' was cancelled; a call librdkafka already started runs to its end and its outcome is logged"
    }

    /// Logs the outcome of a call whose caller stopped waiting (the producer accounts for it).
    private func abandonedCallLogger(_ operation: String) -> @Sendable (Result<Void, KafkaError>) -> Void {
        let logger = handle.context.logger
        return { result in
            switch result {
            case .success:
                logger.info("Kafka '\(operation)' finished after its caller stopped waiting")
            case .failure(let error) where error.kind == .cancelled:
                break  // Never started.
            case .failure(let error):
                logger.warning("Kafka '\(operation)' failed after its caller stopped waiting: \(error)")
            }
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
        _ = try await worker.run(cancelled: "the connectivity check was cancelled") { _ in
            handle.metadata(allTopics: false, timeout: timeout)
        }
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
    /// The waiting task was cancelled after the message was registered (it may be delivered).
    case waitCancelled
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
    typealias Results = [Result<KafkaDeliveryReport, KafkaError>]

    private struct State {
        var results: [Result<KafkaDeliveryReport, KafkaError>?]
        var remaining: Int
        var waiter: CheckedContinuation<Results, Never>?
    }

    private let state: NIOLockedValueBox<State>

    init(count: Int) {
        state = NIOLockedValueBox(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    /// Records the outcome of record `index`; false when it already has one (the batch's
    /// waiter was cancelled, so the report is no longer awaited).
    @discardableResult
    func complete(_ index: Int, _ outcome: DeliveryOutcome) -> Bool {
        let result: Result<KafkaDeliveryReport, KafkaError> =
            switch outcome {
            case .delivered(let report): .success(report)
            case .failed(let error): .failure(error)
            case .queueFull: .failure(queueFullError())
            case .waitCancelled:
                .failure(KafkaError(kind: .cancelled, message: "the wait for the batch was cancelled"))
            }
        let (accepted, finished) = state.withLockedValue {
            state -> (Bool, (CheckedContinuation<Results, Never>, Results)?) in
            guard state.results.indices.contains(index), state.results[index] == nil else { return (false, nil) }
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0, let waiter = state.waiter else { return (true, nil) }
            state.waiter = nil
            return (true, (waiter, state.results.compactMap { $0 }))
        }
        if let (waiter, results) = finished { waiter.resume(returning: results) }
        return accepted
    }

    /// Every result, once each record has one; when the task is cancelled first, at once, with a
    /// `.cancelled` failure for each record still waiting for its acknowledgement.
    func wait(topics: [String]) async -> Results {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Results, Never>) in
                // Checked under the lock `onCancel` takes: either this sees the cancellation or
                // `onCancel` finds the waiter stored.
                let ready = state.withLockedValue { state -> Results? in
                    if Task.isCancelled { Self.cancelWaiting(&state, topics: topics) }
                    if state.remaining == 0 { return state.results.compactMap { $0 } }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let finished = state.withLockedValue { state -> (CheckedContinuation<Results, Never>, Results)? in
                Self.cancelWaiting(&state, topics: topics)
                guard let waiter = state.waiter else { return nil }
                state.waiter = nil
                return (waiter, state.results.compactMap { $0 })
            }
            if let (waiter, results) = finished { waiter.resume(returning: results) }
        }
    }

    private static func cancelWaiting(_ state: inout State, topics: [String]) {
        for index in state.results.indices where state.results[index] == nil {
            let topic = topics.indices.contains(index) ? topics[index] : ""
            state.results[index] = .failure(
                KafkaError(
                    kind: .cancelled,
                    message:
                        "the wait for the broker's acknowledgement of a message to topic '\(topic)' was cancelled; the message may still be delivered"
                )
            )
        }
        state.remaining = 0
    }
}

/// Who waits for a message's delivery report.
enum DeliveryWaiter: Sendable {
    case single(CheckedContinuation<DeliveryOutcome, Never>, topic: String)
    case batch(DeliveryBatch, Int)
    /// Nobody: the waiting task was cancelled. The report is still consumed (and a failure logged).
    case detached(topic: String)
}

/// Messages waiting for their delivery report, keyed by the id passed to librdkafka as the
/// message opaque. An entry stays until librdkafka reports on its message, also when its waiter
/// was cancelled: the message is still outstanding and shutdown accounts for it.
final class DeliveryRegistry: Sendable {
    private struct State {
        var nextID: UInt = 1
        var pending: [UInt: DeliveryWaiter] = [:]
        var acceptsNew = true
        /// Messages failed because the producer gave them up (purged or failed at shutdown).
        var givenUp = 0
    }

    enum Registration: Equatable {
        case registered
        case closed
        case cancelled
    }

    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// An id for a message (ids are never 0, which is "no opaque" to librdkafka).
    func reserveID() -> UInt {
        state.withLockedValue { state in
            let id = state.nextID
            state.nextID &+= 1
            if state.nextID == 0 { state.nextID = 1 }
            return id
        }
    }

    /// Registers a waiting message under `id`. Refused once the producer no longer accepts
    /// messages, and (with `checkingCancellation`) when the task is cancelled: checked under the
    /// lock that `stopWaiting` takes, so a cancellation is never missed.
    func register(_ id: UInt, _ waiter: DeliveryWaiter, checkingCancellation: Bool = true) -> Registration {
        state.withLockedValue { state in
            guard state.acceptsNew else { return .closed }
            if checkingCancellation && Task.isCancelled { return .cancelled }
            state.pending[id] = waiter
            return .registered
        }
    }

    /// The waiter of `id` stops waiting (its task was cancelled); the entry stays, detached, until
    /// the message's report arrives.
    func stopWaiting(_ id: UInt) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<DeliveryOutcome, Never>? in
            guard case .single(let continuation, let topic) = state.pending[id] else { return nil }
            state.pending[id] = .detached(topic: topic)
            return continuation
        }
        continuation?.resume(returning: .waitCancelled)
    }

    /// Forgets a registration without resuming it (the message was not handed to librdkafka).
    func remove(_ id: UInt) -> DeliveryWaiter? {
        state.withLockedValue { $0.pending.removeValue(forKey: id) }
    }

    func complete(_ id: UInt, _ outcome: DeliveryOutcome) {
        guard let waiter = remove(id) else { return }
        switch waiter {
        case .single(let continuation, _):
            continuation.resume(returning: outcome)
        case .batch(let batch, let index):
            if !batch.complete(index, outcome) { reportUnawaited(outcome, topic: nil) }
        case .detached(let topic):
            reportUnawaited(outcome, topic: topic)
        }
    }

    func complete(_ id: UInt, _ result: Result<KafkaDeliveryReport, KafkaError>) {
        switch result {
        case .success(let report): complete(id, .delivered(report))
        case .failure(let error): complete(id, .failed(error))
        }
    }

    /// Completes a message the producer gave up (purged at shutdown) and counts it.
    func giveUp(_ id: UInt, _ error: KafkaError) {
        let known = state.withLockedValue { state in
            guard state.pending[id] != nil else { return false }
            state.givenUp += 1
            return true
        }
        if known { complete(id, .failed(error)) }
    }

    /// The outcome of a message whose waiter was cancelled: nobody awaits it any more, so the
    /// producer accounts for it in its log.
    private func reportUnawaited(_ outcome: DeliveryOutcome, topic: String?) {
        let metadata: Logger.Metadata = topic.map { ["kafka.topic": "\($0)"] } ?? [:]
        switch outcome {
        case .delivered(let report):
            logger.debug(
                "Kafka message delivered after its producer stopped waiting",
                metadata: metadata.merging([
                    "kafka.partition": "\(report.partition)", "kafka.offset": "\(report.offset)",
                ]) { $1 }
            )
        case .failed(let error):
            logger.warning(
                "Kafka message not delivered after its producer stopped waiting: \(error)", metadata: metadata)
        case .queueFull, .waitCancelled:
            break  // Never handed to librdkafka.
        }
    }

    var pendingCount: Int { state.withLockedValue { $0.pending.count } }

    /// Messages the producer gave up so far.
    var givenUpCount: Int { state.withLockedValue { $0.givenUp } }

    func rejectNew() { state.withLockedValue { $0.acceptsNew = false } }

    /// Stops accepting messages and fails every waiting one with `error` (counted as given up).
    func close(failingWith error: KafkaError) {
        let waiting = state.withLockedValue { state -> [UInt] in
            state.acceptsNew = false
            return Array(state.pending.keys)
        }
        for id in waiting { giveUp(id, error) }
    }
}

/// Serves a client's main queue (delivery reports, error callbacks) on a dedicated thread.
final class MainQueuePoller: Sendable {
    private let handle: KafkaClientHandle
    private let stopSignal = AsyncSignal<Void>()
    /// Fired when the thread has finished, including `onStop`.
    let finished = AsyncSignal<Void>()

    init(handle: KafkaClientHandle, threadName: String, onStop: @escaping @Sendable () -> Void) {
        self.handle = handle
        let stopSignal = self.stopSignal
        let finished = self.finished
        DedicatedThread.start(name: threadName) {
            while !stopSignal.isFired {
                _ = rd_kafka_poll(handle.pointer.raw, 100)
            }
            onStop()
            finished.fire()
        }
    }

    /// Ends the poll loop (the main queue is woken at once).
    func stop() {
        stopSignal.fire()
        if let queue = rd_kafka_queue_get_main(handle.pointer.raw) {
            rd_kafka_queue_yield(queue)
            rd_kafka_queue_destroy(queue)
        }
    }
}
