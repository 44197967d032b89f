internal import CRdKafka
import FisoConcurrency
import Logging
import ServiceLifecycle

/// A consumer-group member with at-least-once commits.
///
/// `run()` (a swift-service-lifecycle `Service`) subscribes and polls librdkafka on a dedicated
/// thread until graceful shutdown or cancellation; `events` delivers messages and rebalance
/// notifications. Offsets are committed only for messages marked with `markProcessed(_:)`, and
/// only up to the first message of a partition that is not processed yet (see `OffsetTracker`):
/// in the background every `commitInterval`, on `commit()`, when partitions are revoked, and on
/// shutdown. Shutdown stops delivering, waits up to `shutdownDrainTimeout` for delivered
/// messages to be marked processed, commits, and leaves the group. Cancelling the task running
/// `run()` makes the shutdown bounded: it stops waiting for the broker (see `CloseReport`).
public final class KafkaConsumer: Service, Sendable {
    /// How the consumer closed: what it could not commit.
    public struct CloseReport: Hashable, Sendable {
        /// Offsets of the final commit that the broker did not confirm: the commit failed, or the
        /// consumer stopped waiting for it (cancelled; it may still complete). The next owner of
        /// these partitions starts at the previous committed offset.
        public var unconfirmedOffsets: [KafkaTopicPartitionOffset]
        /// Delivered messages not finished when the consumer closed (delivered again to the
        /// next owner).
        public var unfinishedMessages: Int
        /// Whether the close was cut short because the task running `run()` was cancelled (then
        /// the consumer did not wait to leave the group; librdkafka finishes that in the
        /// background, or the broker's session timeout removes it).
        public var wasCancelled: Bool

        /// Creates a report.
        public init(unconfirmedOffsets: [KafkaTopicPartitionOffset], unfinishedMessages: Int, wasCancelled: Bool) {
            self.unconfirmedOffsets = unconfirmedOffsets
            self.unfinishedMessages = unfinishedMessages
            self.wasCancelled = wasCancelled
        }
    }

    /// The configuration the consumer was created with.
    public let configuration: KafkaConsumerConfiguration
    let handle: KafkaClientHandle
    let state: ConsumerState
    private let worker: BlockingWorker
    private let finished = AsyncSignal<Void>()

    /// Creates the consumer (no connection is made until `run()`); throws configuration errors.
    public init(
        configuration: KafkaConsumerConfiguration,
        logger: Logger = Logger(label: "fiso.kafka.consumer")
    ) throws(KafkaError) {
        let builder = try configuration.makeBuilder()
        var logger = logger
        logger[metadataKey: "kafka.group"] = "\(configuration.groupID)"
        let state = ConsumerState(configuration: configuration, logger: logger)
        let context = ClientContext(
            logger: logger,
            role: "consumer",
            brokers: configuration.cluster.brokers,
            consumer: state
        )
        self.handle = try KafkaClientHandle(type: RD_KAFKA_CONSUMER, configuration: builder, context: context)
        // Serve rebalance, commit and error callbacks from rd_kafka_consumer_poll.
        rd_kafka_poll_set_consumer(handle.pointer.raw)
        state.attach(handle.pointer)
        self.configuration = configuration
        self.state = state
        self.worker = BlockingWorker(name: "fiso-kafka-consumer-calls")
    }

    /// Messages and rebalance notifications, in order. One reader at a time; the sequence ends
    /// at shutdown and throws the consumer's error if it fails.
    public var events: KafkaConsumerEvents { KafkaConsumerEvents(state: state) }

    /// Subscribes and consumes until graceful shutdown, task cancellation or
    /// `triggerShutdown()`; then drains, commits and leaves the group. Throws if the consumer
    /// failed (for example a fatal librdkafka error). Call once.
    public func run() async throws {
        guard state.markStarted() else {
            throw KafkaError(kind: .invalidArgument, message: "KafkaConsumer.run() may be called only once")
        }
        let handle = self.handle
        let state = self.state
        let finished = self.finished
        DedicatedThread.start(name: "fiso-kafka-consumer-poll") {
            ConsumerPollLoop.run(handle: handle, state: state)
            finished.fire()
        }
        await withGracefulShutdownHandler {
            // Cancelled, the poll thread's shutdown stops waiting for the broker, so this wait is
            // bounded (a poll slice, 100 ms at most).
            await withTaskCancellationHandler {
                await finished.waitIgnoringCancellation()
            } onCancel: {
                state.abandonClose()
                self.wakePollThread()
            }
        } onGracefulShutdown: {
            self.triggerShutdown()
        }
        if let failure = state.failure { throw failure }
    }

    /// How the consumer closed, once `run()` has finished; `nil` before.
    public var closeReport: CloseReport? { state.closeReport }

    /// Starts the shutdown that `run()` performs on graceful shutdown.
    public func triggerShutdown() {
        state.requestStop()
        wakePollThread()
    }

    /// Marks a delivered message finished (processed, dead-lettered, or otherwise at its final
    /// outcome), so its offset can be committed once every earlier message of its partition is
    /// finished too. Returns `false` when the receipt no longer counts (its partition was revoked
    /// since, or it was already marked).
    @discardableResult
    public func markProcessed(_ receipt: KafkaMessageReceipt) -> Bool {
        state.markProcessed(receipt)
    }

    /// Marks a delivered message finished; see `markProcessed(_:)` for receipts.
    @discardableResult
    public func markProcessed(_ message: KafkaMessage) -> Bool {
        state.markProcessed(message.receipt)
    }

    /// Commits the processed offsets now and waits for the broker's answer. Cancelled, it throws
    /// `.cancelled` at once; a commit already sent goes on (a failure is logged and its offsets
    /// are offered again by the next commit).
    public func commit() async throws(KafkaError) {
        let offsets = state.takeOffsetsToCommit()
        guard !offsets.isEmpty else { return }
        let handle = self.handle
        let state = self.state
        let offerAgainIfSkipped: @Sendable (Result<Void, KafkaError>) -> Void = { result in
            // Not started: offer the offsets again with the next commit.
            if case .failure(let error) = result, error.kind == .cancelled {
                state.commitFailed(offsets.map(\.topicPartition))
            }
        }
        try await worker.run(
            cancelled: "the wait for the offset commit was cancelled; the commit may still complete",
            whenAbandoned: offerAgainIfSkipped
        ) { _ -> Result<Void, KafkaError> in
            if let error = state.commitSynchronously(offsets, handle: handle.pointer.raw, reason: "requested") {
                return .failure(error)
            }
            return .success(())
        }
    }

    /// Asks the poll thread to commit the processed offsets without waiting for the result
    /// (failures are logged and retried with the next commit).
    public func commitAsync() {
        state.requestAsyncCommit()
        wakePollThread()
    }

    /// Processed offsets not committed yet (what `commit()` would commit), for committing them
    /// through a producer transaction (`KafkaProducer.sendOffsetsToTransaction`). After the
    /// transaction committed, call `markCommitted(_:)`.
    public func uncommittedOffsets() -> [KafkaTopicPartitionOffset] {
        state.uncommittedOffsets()
    }

    /// Records offsets committed elsewhere (through a transaction).
    public func markCommitted(_ offsets: [KafkaTopicPartitionOffset]) {
        state.markCommitted(offsets)
    }

    /// Stops delivering messages of `partitions` (for per-partition backpressure, or to retry a message
    /// without skipping it). Messages of them that are buffered but not yet delivered are taken
    /// back and delivered again after `resume(_:)`, so nothing is skipped. Partitions not
    /// assigned are ignored; a pause ends when the partition is revoked.
    public func pause(_ partitions: [KafkaTopicPartition]) {
        state.pause(partitions)
        wakePollThread()
    }

    /// Resumes delivering messages of paused `partitions`, from the first message not delivered.
    public func resume(_ partitions: [KafkaTopicPartition]) {
        state.resume(partitions)
        wakePollThread()
    }

    /// Partitions paused with `pause(_:)`.
    public var pausedPartitions: [KafkaTopicPartition] { state.pausedPartitions }

    /// The partitions currently assigned to this consumer.
    public var assignment: [KafkaTopicPartition] { state.assignment }

    /// Delivered messages not yet finished (or behind an unfinished one), all partitions.
    public var inFlightCount: Int { state.inFlightCount }

    /// Messages fetched and waiting in the consumer's buffer for the reader of `events` (at most
    /// about `maxBufferedMessages`).
    public var bufferedMessageCount: Int { state.bufferedMessageCount }

    /// Delivered messages of `partition` not yet finished (or behind an unfinished one).
    public func inFlightCount(in partition: KafkaTopicPartition) -> Int {
        state.inFlightCount(in: partition)
    }

    /// The group's committed offsets for `partitions`, as stored by the broker. A partition
    /// without a committed offset is left out.
    public func committedOffsets(
        for partitions: [KafkaTopicPartition],
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [KafkaTopicPartitionOffset] {
        let handle = self.handle
        return try await worker.run(cancelled: "the committed offsets request was cancelled") {
            _ -> Result<[KafkaTopicPartitionOffset], KafkaError> in
            let list = RdKafkaPartitionList(partitions)
            let code = rd_kafka_committed(handle.pointer.raw, list.pointer, Int32(milliseconds(timeout)))
            guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                return .failure(handle.connectionError(code, operation: "committed offsets request", timeout: timeout))
            }
            return .success(KafkaTopicPartition.read(list.pointer).filter { $0.offset >= 0 })
        }
    }

    /// Checks that a broker answers a metadata request within `timeout`; throws a `.connection`
    /// error naming the brokers and librdkafka's last broker error otherwise.
    public func checkConnectivity(timeout: Duration = .seconds(10)) async throws(KafkaError) {
        let handle = self.handle
        _ = try await worker.run(cancelled: "the connectivity check was cancelled") { _ in
            handle.metadata(allTopics: false, timeout: timeout)
        }
    }

    /// Wakes `rd_kafka_consumer_poll` so the poll thread reacts to a request at once.
    private func wakePollThread() {
        state.wakePollThread()
    }
}

/// The consumer's poll thread.
enum ConsumerPollLoop {
    /// Longest wait inside one poll call; requests and a reader making room wake it early.
    static let pollTimeoutMilliseconds: Int32 = 100
    /// Messages taken per wake-up before the loop looks at requests again.
    static let maxMessagesPerIteration = 500

    static func run(handle: KafkaClientHandle, state: ConsumerState) {
        let raw = handle.pointer.raw
        let configuration = state.configuration
        let logger = state.logger

        guard let messageQueue = state.openMessageQueue() else {
            state.fail(KafkaError(kind: .consumer, message: "librdkafka could not create the message queue"))
            return
        }
        defer { state.closeQueues() }
        let topics = RdKafkaPartitionList(
            configuration.topics.map {
                KafkaTopicPartitionOffset(topic: $0, partition: fiso_rdk_partition_unassigned, offset: 0)
            }
        )
        let subscribed = rd_kafka_subscribe(raw, topics.pointer)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            state.fail(KafkaError.from(subscribed, kind: .consumer, operation: "subscribe to \(configuration.topics)"))
            _ = rd_kafka_consumer_close(raw)
            return
        }
        logger.info(
            "Kafka consumer subscribed",
            metadata: [
                "kafka.topics": "\(configuration.topics.joined(separator: ","))",
                "kafka.startOffset": "\(configuration.startOffset)",
            ]
        )

        let clock = ContinuousClock()
        var nextCommit = configuration.commitInterval.map { clock.now.advanced(by: $0) }
        while true {
            let commitDue = nextCommit.map { clock.now >= $0 } == true
            guard case .work(let work) = state.loopIteration(commitDue: commitDue) else { break }
            for seek in work.seeks {
                let list = RdKafkaPartitionList([seek])
                if let error = rd_kafka_seek_partitions(
                    raw, list.pointer, Int32(milliseconds(configuration.requestTimeout)))
                {
                    logger.error("\(KafkaError.consuming(error, kind: .consumer, operation: "rewind of \(seek)"))")
                }
            }
            if !work.pause.isEmpty {
                let list = RdKafkaPartitionList(work.pause)
                _ = rd_kafka_pause_partitions(raw, list.pointer)
            }
            if !work.resume.isEmpty {
                let list = RdKafkaPartitionList(work.resume)
                _ = rd_kafka_resume_partitions(raw, list.pointer)
            }
            if let offsets = work.commit {
                if !offsets.isEmpty {
                    let list = RdKafkaPartitionList(offsets)
                    let code = rd_kafka_commit(raw, list.pointer, 1)
                    if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                        state.commitFailed(offsets.map(\.topicPartition))
                        logger.warning("Kafka could not start an offset commit: \(KafkaErrorCode(code).text)")
                    }
                }
                nextCommit = configuration.commitInterval.map { clock.now.advanced(by: $0) }
            }
            // The group protocol first (rebalances, commit results, errors), without waiting.
            pollConsumerQueue(raw, state: state, timeoutMilliseconds: 0)
            if state.hasRoom() {
                consumeMessages(messageQueue.raw, handle: raw, state: state)
            } else {
                // Backpressure: leave messages in librdkafka (which stops fetching at its queue
                // bounds) and wait for events or for the reader to make room.
                pollConsumerQueue(raw, state: state, timeoutMilliseconds: pollTimeoutMilliseconds)
            }
        }
        close(raw, state: state, clock: clock)
    }

    /// Serves the consumer queue: rebalance and commit callbacks run inside
    /// `rd_kafka_consumer_poll`; errors are reported. (Messages arrive here only for partitions
    /// that could not be routed to the message queue.)
    private static func pollConsumerQueue(_ raw: OpaquePointer, state: ConsumerState, timeoutMilliseconds: Int32) {
        var timeout = timeoutMilliseconds
        for _ in 0..<maxMessagesPerIteration {
            guard let polled = rd_kafka_consumer_poll(raw, timeout) else { return }
            timeout = 0
            defer { rd_kafka_message_destroy(polled) }
            handle(polled, handle: raw, state: state)
        }
    }

    /// Takes up to `maxMessagesPerIteration` messages from the message queue (waiting only for
    /// the first; stopping early when the buffer is full).
    private static func consumeMessages(_ queue: OpaquePointer, handle raw: OpaquePointer, state: ConsumerState) {
        var timeout = pollTimeoutMilliseconds
        for _ in 0..<maxMessagesPerIteration {
            guard let polled = rd_kafka_consume_queue(queue, timeout) else { return }
            timeout = 0
            defer { rd_kafka_message_destroy(polled) }
            if handle(polled, handle: raw, state: state) { return }
        }
    }

    /// Delivers a message or reports an error; returns whether the buffer is now full.
    @discardableResult
    private static func handle(
        _ polled: UnsafeMutablePointer<rd_kafka_message_t>,
        handle raw: OpaquePointer,
        state: ConsumerState
    ) -> Bool {
        let code = polled.pointee.err
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            report(code, message: polled, handle: raw, state: state)
            return false
        }
        return state.deliver(makeMessage(polled))
    }

    private static func report(
        _ code: rd_kafka_resp_err_t,
        message: UnsafeMutablePointer<rd_kafka_message_t>,
        handle raw: OpaquePointer,
        state: ConsumerState
    ) {
        switch code {
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            return
        case RD_KAFKA_RESP_ERR__FATAL:
            var text = [CChar](repeating: 0, count: 512)
            let fatal = KafkaErrorCode(rd_kafka_fatal_error(raw, &text, text.count))
            let reason = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            state.fail(
                KafkaError(kind: .consumer, message: "fatal consumer error: \(reason)", code: fatal, isFatal: true))
        default:
            let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) }
            let detail = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? KafkaErrorCode(code).text
            var metadata: Logger.Metadata = ["kafka.error": "\(KafkaErrorCode(code).name)"]
            if let topic { metadata["kafka.topic"] = "\(topic)" }
            state.logger.error("Kafka consumer error: \(detail)", metadata: metadata)
        }
    }

    /// Copies a librdkafka message into Swift values.
    static func makeMessage(_ polled: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessage {
        let raw = polled.pointee
        let topic = raw.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let value = raw.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.len)) }
        let key = raw.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        var headers: [KafkaHeader] = []
        var headerList: OpaquePointer?
        if rd_kafka_message_headers(polled, &headerList) == RD_KAFKA_RESP_ERR_NO_ERROR, let headerList {
            var index = 0
            while true {
                var name: UnsafePointer<CChar>?
                var headerValue: UnsafeRawPointer?
                var size = 0
                guard
                    rd_kafka_header_get_all(headerList, index, &name, &headerValue, &size) == RD_KAFKA_RESP_ERR_NO_ERROR
                else { break }
                headers.append(
                    KafkaHeader(
                        name: name.map { String(cString: $0) } ?? "",
                        value: headerValue.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }
                    )
                )
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(polled, &timestampType)
        let timestamp: KafkaTimestamp? =
            switch timestampType {
            case RD_KAFKA_TIMESTAMP_CREATE_TIME: KafkaTimestamp(milliseconds: milliseconds, kind: .createTime)
            case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: KafkaTimestamp(milliseconds: milliseconds, kind: .logAppendTime)
            default: nil
            }
        return KafkaMessage(
            topic: topic,
            partition: raw.partition,
            offset: raw.offset,
            key: key,
            value: value,
            headers: headers,
            timestamp: timestamp
        )
    }

    /// Leaves the group (`rd_kafka_consumer_close_queue`, whose rebalance callbacks are served
    /// here) and waits until it is closed or the close is abandoned. Returns whether it closed.
    private static func leaveGroup(_ raw: OpaquePointer, state: ConsumerState) -> Bool {
        guard let queue = rd_kafka_queue_new(raw) else {
            let closed = rd_kafka_consumer_close(raw)
            if closed != RD_KAFKA_RESP_ERR_NO_ERROR {
                state.logger.warning(
                    "Kafka consumer close: \(KafkaErrorCode(closed).text) [\(KafkaErrorCode(closed).name)]")
            }
            return true
        }
        defer { rd_kafka_queue_destroy(queue) }
        if let error = rd_kafka_consumer_close_queue(raw, queue) {
            state.logger.warning("\(KafkaError.consuming(error, kind: .consumer, operation: "consumer close"))")
            return true
        }
        while rd_kafka_consumer_closed(raw) == 0 {
            if state.isCloseAbandoned { return false }
            _ = rd_kafka_queue_poll_callback(queue, 20)
        }
        return true
    }

    /// Shutdown: stop delivering, wait for in-flight messages, commit, leave the group. Once the
    /// close is abandoned (the task running `run()` was cancelled) it stops waiting for anything
    /// the broker must answer; what it could not commit goes into the `CloseReport`.
    private static func close(_ raw: OpaquePointer, state: ConsumerState, clock: ContinuousClock) {
        let configuration = state.configuration
        let logger = state.logger
        let assigned = state.beginClose()
        if !assigned.isEmpty {
            let list = RdKafkaPartitionList(assigned)
            _ = rd_kafka_pause_partitions(raw, list.pointer)
        }
        let deadline = clock.now.advanced(by: configuration.shutdownDrainTimeout)
        while state.drainStep(deadlinePassed: clock.now >= deadline) == .keepWaiting {
            pollConsumerQueue(raw, state: state, timeoutMilliseconds: 20)
        }
        let remaining = state.inFlightCount
        if remaining > 0 {
            logger.warning(
                "Kafka consumer shut down with \(remaining) messages still in flight; they will be delivered again"
            )
        }
        var unconfirmed: [KafkaTopicPartitionOffset] = []
        let offsets = state.takeFinalOffsets()
        if !offsets.isEmpty {
            unconfirmed = state.commitWaiting(offsets, handle: raw, reason: "shutdown") { state.isCloseAbandoned }
        }
        if state.isCloseAbandoned {
            // Leaving the group waits for the broker (up to about `session.timeout.ms`);
            // destroying the handle does it in the background instead.
            logger.warning(
                "Kafka consumer shutdown was cancelled: not waiting to leave the group",
                metadata: ["kafka.unconfirmedOffsets": "\(unconfirmed.map(\.description).joined(separator: ","))"]
            )
        } else if leaveGroup(raw, state: state) {
            logger.info("Kafka consumer closed and left the group")
        } else {
            logger.warning("Kafka consumer shutdown was cancelled while leaving the group; not waiting any longer")
        }
        if !unconfirmed.isEmpty {
            logger.warning(
                "Kafka consumer closed with offsets the broker did not confirm; their messages may be delivered again",
                metadata: ["kafka.unconfirmedOffsets": "\(unconfirmed.map(\.description).joined(separator: ","))"]
            )
        }
        state.closeReport = KafkaConsumer.CloseReport(
            unconfirmedOffsets: unconfirmed,
            unfinishedMessages: remaining,
            wasCancelled: state.isCloseAbandoned
        )
    }
}
