internal import CRdKafka
import Logging
import NIOConcurrencyHelpers

/// The adapter around `ConsumerStateMachine`: it keeps the machine (and the parked reader's
/// continuation) in one lock, feeds it what happens on the poll thread, in librdkafka's callbacks
/// (which run on the poll thread, inside `rd_kafka_consumer_poll` and while it serves the close
/// queue) and in the tasks that read events, mark messages processed, commit, pause and resume,
/// and carries out the actions it returns — librdkafka calls and continuation resumes — after
/// unlocking. No C call is made while the machine's lock is held.
final class ConsumerState: Sendable {
    typealias Machine = ConsumerStateMachine
    typealias Queues = ConsumerQueues
    typealias ReaderContinuation = CheckedContinuation<KafkaConsumerEvent?, any Error>

    private struct Locked {
        var machine: Machine
        /// The parked reader: set exactly while `machine.readerWaiting`.
        var reader: ReaderContinuation?

        /// Takes the parked reader when the machine decided to resume it.
        mutating func takeReader(for resumption: Machine.ReaderResumption?) -> ReaderWake? {
            guard let resumption else { return nil }
            guard let reader else {
                assertionFailure("the machine resumed a reader that is not parked")
                return nil
            }
            self.reader = nil
            return ReaderWake(continuation: reader, result: resumption.result)
        }
    }

    /// A reader to resume once the lock is released.
    private struct ReaderWake {
        let continuation: ReaderContinuation
        let result: Result<KafkaConsumerEvent?, any Error>

        func resume() { continuation.resume(with: result) }
    }

    let configuration: KafkaConsumerConfiguration
    let logger: Logger
    private let locked: NIOLockedValueBox<Locked>
    private let queues = Queues()

    init(configuration: KafkaConsumerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.locked = NIOLockedValueBox(
            Locked(machine: Machine(configuration: Machine.Configuration(configuration)), reader: nil)
        )
    }

    /// Runs `body` on the machine under the lock.
    private func withMachine<Value>(_ body: (inout Machine) -> Value) -> Value {
        locked.withLockedValue { body(&$0.machine) }
    }

    /// Runs an input that may resume the reader; resumes it after unlocking.
    @discardableResult
    private func withMachine<Value>(
        resumingReader body: (inout Machine) -> Value,
        _ resumption: (Value) -> Machine.ReaderResumption?
    ) -> Value {
        let (value, wake) = locked.withLockedValue { locked in
            let value = body(&locked.machine)
            return (value, locked.takeReader(for: resumption(value)))
        }
        wake?.resume()
        return value
    }

    // MARK: Queues

    func attach(_ handle: RdKafkaPointer) { queues.attach(handle) }

    func detach() { queues.detach() }

    func openMessageQueue() -> RdKafkaQueuePointer? { queues.openMessageQueue() }

    func closeQueues() { queues.close() }

    func wakePollThread() { queues.wakePollThread() }

    // MARK: Reader side

    func nextEvent() async throws -> KafkaConsumerEvent? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: ReaderContinuation) in
                let action = locked.withLockedValue { locked -> Machine.NextEventAction in
                    let action = locked.machine.nextEvent(isCancelled: Task.isCancelled)
                    if case .wait = action { locked.reader = continuation }
                    return action
                }
                guard case .resume(let resumption, let wakePollThread) = action else { return }
                // The poll thread stopped for a full buffer; let it continue now.
                if wakePollThread { self.wakePollThread() }
                continuation.resume(with: resumption.result)
            }
        } onCancel: {
            let wake = locked.withLockedValue { $0.takeReader(for: $0.machine.readerCancelled()) }
            wake?.resume()
        }
    }

    /// Waits for the next event, then adds whatever else is buffered, up to `maxCount` events.
    /// Empty at the end of the stream.
    func nextEvents(maxCount: Int) async throws -> [KafkaConsumerEvent] {
        guard maxCount > 0, let first = try await nextEvent() else { return [] }
        let (more, wakePollThread) = withMachine { $0.takeBufferedEvents(upTo: maxCount - 1) }
        if wakePollThread { self.wakePollThread() }
        return [first] + more
    }

    // MARK: Poll thread side

    /// Hands a polled message to the machine. Returns whether the buffer is full (the poll
    /// thread then stops taking messages).
    @discardableResult
    func deliver(_ message: KafkaMessage) -> Bool {
        withMachine(resumingReader: { $0.messagePolled(message) }, \.reader).bufferFull
    }

    /// The start of a poll-loop iteration: what to do before polling.
    func loopIteration(commitDue: Bool) -> Machine.LoopAction {
        withMachine { $0.loopIteration(commitDue: commitDue) }
    }

    /// Whether the buffer can take more messages; if not, the reader will wake the poll thread
    /// once it has room again.
    func hasRoom() -> Bool { withMachine { $0.pollThreadWantsMessages() } }

    /// Shutdown begins: the event stream ends (the reader sees its end); returns the partitions
    /// to pause.
    func beginClose() -> [KafkaTopicPartition] {
        withMachine(resumingReader: { $0.beginClose() }, \.reader).pause
    }

    func drainStep(deadlinePassed: Bool) -> Machine.DrainAction {
        withMachine { $0.drainStep(deadlinePassed: deadlinePassed) }
    }

    /// Offsets for the commit at shutdown (see `ConsumerStateMachine.takeFinalOffsets()`).
    func takeFinalOffsets() -> [KafkaTopicPartitionOffset] { withMachine { $0.takeFinalOffsets() } }

    /// Offsets to commit now (processed, not yet committed, still assigned); they are recorded
    /// as committed and put back if the commit fails.
    func takeOffsetsToCommit() -> [KafkaTopicPartitionOffset] { withMachine { $0.takeOffsetsToCommit() } }

    func commitFailed(_ partitions: [KafkaTopicPartition]) { withMachine { $0.commitFailed(partitions) } }

    /// The consumer cannot continue: the reader gets `error` and the poll thread stops.
    func fail(_ error: KafkaError) {
        withMachine(resumingReader: { $0.fail(error) }, { $0 })
    }

    var failure: KafkaError? { withMachine { $0.failure } }

    // MARK: Public operations

    func markStarted() -> Bool { withMachine { $0.start() } }

    func requestStop() { withMachine { $0.requestStop() } }

    /// Shutdown stops waiting for the broker (drain, final commit, leaving the group).
    func abandonClose() { withMachine { $0.abandonClose() } }

    var isCloseAbandoned: Bool { withMachine { $0.closeAbandoned } }

    var closeReport: KafkaConsumer.CloseReport? {
        get { withMachine { $0.closeReport } }
        set { withMachine { $0.closeReport = newValue } }
    }

    func requestAsyncCommit() { withMachine { $0.requestAsyncCommit() } }

    func markProcessed(_ receipt: KafkaMessageReceipt) -> Bool { withMachine { $0.markProcessed(receipt) } }

    func uncommittedOffsets() -> [KafkaTopicPartitionOffset] { withMachine { $0.uncommittedOffsets() } }

    func markCommitted(_ offsets: [KafkaTopicPartitionOffset]) { withMachine { $0.markCommitted(offsets) } }

    var assignment: [KafkaTopicPartition] { withMachine { $0.assignment } }

    var inFlightCount: Int { withMachine { $0.inFlightCount } }

    var bufferedMessageCount: Int { withMachine { $0.bufferedMessageCount } }

    func inFlightCount(in partition: KafkaTopicPartition) -> Int { withMachine { $0.inFlightCount(in: partition) } }

    var pausedPartitions: [KafkaTopicPartition] { withMachine { $0.pausedPartitions } }

    func pause(_ partitions: [KafkaTopicPartition]) { withMachine { $0.pause(partitions) } }

    func resume(_ partitions: [KafkaTopicPartition]) { withMachine { $0.resume(partitions) } }

    // MARK: librdkafka callbacks (poll thread)

    func handleRebalance(
        handle: OpaquePointer,
        code: rd_kafka_resp_err_t,
        partitions list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) {
        let partitions = KafkaTopicPartition.read(list).map(\.topicPartition)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        switch code {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let (action, wake) = locked.withLockedValue { locked in
                let action = locked.machine.partitionsAssigned(partitions)
                return (action, locked.takeReader(for: action.reader))
            }
            // These queries stay inside the callback: a start offset only takes effect in the
            // list given to assign (a seek afterwards fails until librdkafka's own committed
            // offset fetch has started the partition, so it would race it).
            if let start = action.resolveStartOffset, let list {
                applyStartOffset(start, handle: handle, list: list)
            }
            queues.route(action.route, handle: handle)
            wake?.resume()
            // Assigning is the callback's duty: the group protocol waits for it.
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle, list) {
                    fail(KafkaError.consuming(error, kind: .consumer, operation: "incremental assign"))
                }
            } else {
                let result = rd_kafka_assign(handle, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    fail(KafkaError.from(result, kind: .consumer, operation: "assign"))
                }
            }
            if !partitions.isEmpty {
                logger.info(
                    "Kafka partitions assigned",
                    metadata: [
                        "kafka.partitions": "\(partitions.map(\.description).joined(separator: ","))",
                        "kafka.rebalanceProtocol": "\(cooperative ? "cooperative" : "eager")",
                    ]
                )
            }

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(handle) != 0
            let action = withMachine { $0.partitionsRevoked(partitions, lost: lost) }
            // Synchronous and inside the callback: the commit must reach the broker before the
            // partitions are unassigned, or their next owner starts before what was processed.
            if !action.commit.isEmpty {
                commitSynchronously(action.commit, handle: handle, reason: "revoke")
            }
            withMachine(resumingReader: { $0.revocationCommitted(partitions) }, { $0 })
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, list) {
                    logger.error("\(KafkaError.consuming(error, kind: .consumer, operation: "incremental unassign"))")
                }
            } else {
                _ = rd_kafka_assign(handle, nil)
            }
            queues.restoreRouting(partitions, handle: handle)
            if !partitions.isEmpty {
                var metadata: Logger.Metadata = [
                    "kafka.partitions": "\(partitions.map(\.description).joined(separator: ","))",
                    "kafka.rebalanceProtocol": "\(cooperative ? "cooperative" : "eager")",
                ]
                if !action.commit.isEmpty {
                    metadata["kafka.committed"] = "\(action.commit.map(\.description).joined(separator: ","))"
                }
                logger.info(lost ? "Kafka partitions lost" : "Kafka partitions revoked", metadata: metadata)
            }

        default:
            logger.error("Kafka rebalance failed: \(KafkaErrorCode(code).text) [\(KafkaErrorCode(code).name)]")
            _ = rd_kafka_assign(handle, nil)
        }
    }

    /// Commits `offsets` and waits for the result; returns the error, if any.
    @discardableResult
    func commitSynchronously(
        _ offsets: [KafkaTopicPartitionOffset],
        handle: OpaquePointer,
        reason: String
    ) -> KafkaError? {
        let list = RdKafkaPartitionList(offsets)
        let code = rd_kafka_commit(handle, list.pointer, 0)
        let failedPartitions = Self.failedPartitions(code: code, list: list.pointer)
        guard !failedPartitions.isEmpty else {
            logger.debug(
                "Kafka offsets committed (\(reason))",
                metadata: ["kafka.offsets": "\(offsets.map(\.description).joined(separator: ","))"]
            )
            return nil
        }
        commitFailed(failedPartitions.map(\.0))
        let error: KafkaError
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            error = KafkaError.from(code, kind: .commit, operation: "offset commit (\(reason))")
        } else {
            let first = failedPartitions[0]
            error = KafkaError.from(first.1, kind: .commit, operation: "offset commit of \(first.0) (\(reason))")
        }
        logger.warning("\(error)")
        return error
    }

    /// Commits `offsets` and waits for the broker's answer, or until `giveUp` says to stop
    /// waiting (checked every 20 ms). Returns the offsets the broker did not confirm: failed, or
    /// still unanswered when it gave up (that commit may still complete). Those partitions are
    /// offered again by the next commit.
    func commitWaiting(
        _ offsets: [KafkaTopicPartitionOffset],
        handle: OpaquePointer,
        reason: String,
        giveUp: () -> Bool
    ) -> [KafkaTopicPartitionOffset] {
        guard let queue = rd_kafka_queue_new(handle) else {
            return commitSynchronously(offsets, handle: handle, reason: reason) == nil ? [] : offsets
        }
        defer { rd_kafka_queue_destroy(queue) }
        let list = RdKafkaPartitionList(offsets)
        let started = rd_kafka_commit_queue(handle, list.pointer, queue, nil, nil)
        var failed: [(KafkaTopicPartition, rd_kafka_resp_err_t)]
        if started != RD_KAFKA_RESP_ERR_NO_ERROR {
            failed = offsets.map { ($0.topicPartition, started) }
        } else {
            failed = []
            while true {
                if giveUp() {
                    commitFailed(offsets.map(\.topicPartition))
                    logger.warning(
                        "Kafka consumer stopped waiting for the offset commit (\(reason)); it may still complete",
                        metadata: ["kafka.offsets": "\(offsets.map(\.description).joined(separator: ","))"]
                    )
                    return offsets
                }
                guard let event = rd_kafka_queue_poll(queue, 20) else { continue }
                defer { rd_kafka_event_destroy(event) }
                guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_OFFSET_COMMIT else { continue }
                failed = Self.failedPartitions(
                    code: rd_kafka_event_error(event),
                    list: rd_kafka_event_topic_partition_list(event)
                )
                if failed.isEmpty && rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR
                    && rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR__NO_OFFSET
                {
                    failed = offsets.map { ($0.topicPartition, rd_kafka_event_error(event)) }
                }
                break
            }
        }
        guard !failed.isEmpty else {
            logger.debug(
                "Kafka offsets committed (\(reason))",
                metadata: ["kafka.offsets": "\(offsets.map(\.description).joined(separator: ","))"]
            )
            return []
        }
        commitFailed(failed.map(\.0))
        let first = failed[0]
        logger.warning(
            "\(KafkaError.from(first.1, kind: .commit, operation: "offset commit of \(first.0) (\(reason))"))")
        let failedPartitions = Set(failed.map(\.0))
        return offsets.filter { failedPartitions.contains($0.topicPartition) }
    }

    func handleCommitResult(code: rd_kafka_resp_err_t, offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?)
    {
        if code == RD_KAFKA_RESP_ERR__NO_OFFSET { return }
        let failed = Self.failedPartitions(code: code, list: offsets)
        guard !failed.isEmpty else { return }
        commitFailed(failed.map(\.0))
        let codeName = KafkaErrorCode(code == RD_KAFKA_RESP_ERR_NO_ERROR ? failed[0].1 : code)
        logger.warning(
            "Kafka offset commit failed; it is retried with the next commit: \(codeName.text) [\(codeName.name)]",
            metadata: ["kafka.partitions": "\(failed.map(\.0.description).joined(separator: ","))"]
        )
    }

    private static func failedPartitions(
        code: rd_kafka_resp_err_t,
        list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) -> [(KafkaTopicPartition, rd_kafka_resp_err_t)] {
        guard let list, let elements = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).compactMap { index in
            let element = elements[index]
            let error = element.err != RD_KAFKA_RESP_ERR_NO_ERROR ? element.err : code
            guard error != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            return (KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition), error)
        }
    }

    /// Numeric start offset: partitions without a committed offset start at `start`, clamped into
    /// the partition's [low, high] watermarks. Partitions with a committed offset keep it.
    private func applyStartOffset(
        _ start: Int64,
        handle: OpaquePointer,
        list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let timeout = Int32(milliseconds(configuration.requestTimeout))
        guard let committed = rd_kafka_topic_partition_list_copy(list) else { return }
        defer { rd_kafka_topic_partition_list_destroy(committed) }
        let code = rd_kafka_committed(handle, committed, timeout)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let committedElements = committed.pointee.elems,
            let elements = list.pointee.elems
        else {
            logger.warning(
                "Kafka could not read the group's committed offsets; partitions without one start at the earliest offset: \(KafkaErrorCode(code).text)"
            )
            return
        }
        for index in 0..<Int(list.pointee.cnt) {
            let committedElement = committedElements[index]
            guard committedElement.err == RD_KAFKA_RESP_ERR_NO_ERROR, committedElement.offset < 0 else { continue }
            var low: Int64 = -1
            var high: Int64 = -1
            var target = start
            let watermarks = rd_kafka_query_watermark_offsets(
                handle,
                elements[index].topic,
                elements[index].partition,
                &low,
                &high,
                timeout
            )
            if watermarks == RD_KAFKA_RESP_ERR_NO_ERROR, low >= 0, high >= low {
                target = min(max(start, low), high)
            }
            elements[index].offset = target
            logger.info(
                "Kafka partition has no committed offset; starting at the configured offset",
                metadata: [
                    "kafka.partition": "\(String(cString: elements[index].topic))[\(elements[index].partition)]",
                    "kafka.offset": "\(target)",
                ]
            )
        }
    }
}
