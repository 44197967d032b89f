import CRdKafka
import Logging
import Synchronization

/// Everything a consumer shares between its poll thread, librdkafka's callbacks (which run on
/// the poll thread, inside `rd_kafka_consumer_poll` and `rd_kafka_consumer_close`) and the tasks
/// that read events, mark messages processed, commit, pause and resume. The `shared` mutex guards
/// that state and no C call is made while it is held; the `queues` mutex guards librdkafka queue
/// references (only short, non-blocking C calls are made under it). The two are never nested.
final class ConsumerState: Sendable {
    /// A waiting reader and what to resume it with (resumed after the lock is released).
    typealias ReaderWake = (CheckedContinuation<KafkaConsumerEvent?, any Error>, Result<KafkaConsumerEvent?, any Error>)

    struct Shared {
        var events = EventQueue()
        var waiter: CheckedContinuation<KafkaConsumerEvent?, any Error>?
        var tracker = OffsetTracker()
        /// Assigned partitions and the generation of their current assignment.
        var generations: [KafkaTopicPartition: UInt64] = [:]
        var nextGeneration: UInt64 = 1
        /// Partitions the user paused.
        var userPaused: Set<KafkaTopicPartition> = []
        /// Where a user-paused partition must restart: its first message that was not delivered.
        var rewindPoints: [KafkaTopicPartition: Int64] = [:]
        /// Partitions resumed by the user since the poll thread last looked.
        var pendingResumes: Set<KafkaTopicPartition> = []
        /// Partitions currently paused in librdkafka (poll thread's view).
        var librdkafkaPaused: Set<KafkaTopicPartition> = []
        /// The poll thread stopped taking messages from librdkafka because the buffer is full; the
        /// reader wakes it once the buffer is half empty.
        var waitingForRoom = false
        var asyncCommitRequested = false
        var started = false
        var stopRequested = false
        /// No more events are delivered (shutdown began or the consumer failed).
        var streamFinished = false
        var failure: KafkaError?
    }

    /// What the poll thread must do in one loop iteration.
    struct LoopWork {
        var stop: Bool
        var seeks: [KafkaTopicPartitionOffset]
        var pause: [KafkaTopicPartition]
        var resume: [KafkaTopicPartition]
        var commitRequested: Bool
    }

    let configuration: KafkaConsumerConfiguration
    let logger: Logger
    private let shared = Mutex(Shared())
    /// librdkafka queues of the consumer. Messages of assigned partitions are routed to one
    /// message queue, apart from the consumer queue that carries rebalances, commit results and
    /// errors: when the buffer is full the poll thread stops reading messages (librdkafka then
    /// stops fetching at its `queued.min.messages` / `queued.max.messages.kbytes` bounds) but
    /// keeps serving the group protocol.
    struct Queues {
        var client: RdKafkaPointer?
        var messages: RdKafkaQueuePointer?
        var partitions: [KafkaTopicPartition: RdKafkaQueuePointer] = [:]
    }

    /// Cleared before the handle is destroyed; the lock is held while the pointers are used from
    /// other threads (waking), so they cannot go away meanwhile.
    private let queues = Mutex(Queues())

    init(configuration: KafkaConsumerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func attach(_ handle: RdKafkaPointer) { queues.withLock { $0.client = handle } }

    func detach() { queues.withLock { $0.client = nil } }

    /// Poll thread, before subscribing: creates the message queue.
    func openMessageQueue() -> RdKafkaQueuePointer? {
        queues.withLock { queues in
            guard let client = queues.client, let queue = rd_kafka_queue_new(client.raw) else { return nil }
            queues.messages = RdKafkaQueuePointer(raw: queue)
            return queues.messages
        }
    }

    /// Poll thread, after closing: releases every queue reference.
    func closeQueues() {
        queues.withLock { queues in
            for queue in queues.partitions.values { rd_kafka_queue_destroy(queue.raw) }
            queues.partitions = [:]
            if let messages = queues.messages { rd_kafka_queue_destroy(messages.raw) }
            queues.messages = nil
        }
    }

    /// Routes the messages of newly assigned partitions to the message queue.
    private func routeToMessageQueue(_ partitions: [KafkaTopicPartition], handle: OpaquePointer) {
        queues.withLock { queues in
            guard let messages = queues.messages else { return }
            for partition in partitions where queues.partitions[partition] == nil {
                guard let queue = rd_kafka_queue_get_partition(handle, partition.topic, partition.partition) else {
                    continue
                }
                rd_kafka_queue_forward(queue, messages.raw)
                queues.partitions[partition] = RdKafkaQueuePointer(raw: queue)
            }
        }
    }

    /// Gives revoked partitions back to librdkafka's default routing (the consumer queue).
    private func restoreRouting(_ partitions: [KafkaTopicPartition], handle: OpaquePointer) {
        queues.withLock { queues in
            let consumerQueue = rd_kafka_queue_get_consumer(handle)
            defer { if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) } }
            for partition in partitions {
                guard let queue = queues.partitions.removeValue(forKey: partition) else { continue }
                rd_kafka_queue_forward(queue.raw, consumerQueue)
                rd_kafka_queue_destroy(queue.raw)
            }
        }
    }

    /// Interrupts the poll thread's wait in either queue so it looks at requests at once.
    func wakePollThread() {
        queues.withLock { queues in
            guard let client = queues.client else { return }
            if let queue = rd_kafka_queue_get_consumer(client.raw) {
                rd_kafka_queue_yield(queue)
                rd_kafka_queue_destroy(queue)
            }
            if let messages = queues.messages { rd_kafka_queue_yield(messages.raw) }
        }
    }

    // MARK: Reader side

    func nextEvent() async throws -> KafkaConsumerEvent? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<KafkaConsumerEvent?, any Error>) in
                enum Outcome {
                    case event(KafkaConsumerEvent?)
                    case failure(any Error)
                    case wait
                }
                var wakePoller = false
                let outcome = shared.withLock { state -> Outcome in
                    if let event = Self.popDeliverable(&state) {
                        // The poll thread stopped for a full buffer; let it continue now.
                        wakePoller =
                            state.waitingForRoom && state.events.messageCount <= configuration.maxBufferedMessages / 2
                        if wakePoller { state.waitingForRoom = false }
                        return .event(event)
                    }
                    if let failure = state.failure { return .failure(failure) }
                    if state.streamFinished { return .event(nil) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.waiter != nil {
                        return .failure(
                            KafkaError(
                                kind: .invalidArgument,
                                message:
                                    "KafkaConsumer.events has one reader at a time; another task is already waiting"
                            )
                        )
                    }
                    state.waiter = continuation
                    return .wait
                }
                if wakePoller { wakePollThread() }
                switch outcome {
                case .event(let event): continuation.resume(returning: event)
                case .failure(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = shared.withLock { state -> CheckedContinuation<KafkaConsumerEvent?, any Error>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Waits for the next event, then adds whatever else is buffered, up to `maxCount` events.
    /// Empty at the end of the stream.
    func nextEvents(maxCount: Int) async throws -> [KafkaConsumerEvent] {
        guard maxCount > 0, let first = try await nextEvent() else { return [] }
        var events = [first]
        let wakePoller = shared.withLock { state -> Bool in
            while events.count < maxCount, let event = Self.popDeliverable(&state) { events.append(event) }
            let wake = state.waitingForRoom && state.events.messageCount <= configuration.maxBufferedMessages / 2
            if wake { state.waitingForRoom = false }
            return wake
        }
        if wakePoller { wakePollThread() }
        return events
    }

    /// Hands the next event to a waiting reader. Call with the lock held; resume the returned
    /// continuation after unlocking.
    private static func wakeReader(
        _ state: inout Shared
    ) -> ReaderWake? {
        guard let waiter = state.waiter else { return nil }
        if let event = Self.popDeliverable(&state) {
            state.waiter = nil
            return (waiter, .success(event))
        }
        if let failure = state.failure {
            state.waiter = nil
            return (waiter, .failure(failure))
        }
        if state.streamFinished {
            state.waiter = nil
            return (waiter, .success(nil))
        }
        return nil
    }

    /// The next event for the reader. A message starts being tracked (in flight) here, when it
    /// is handed over; one whose assignment ended or that was already delivered is dropped.
    private static func popDeliverable(_ state: inout Shared) -> KafkaConsumerEvent? {
        while let event = state.events.popFirst() {
            guard case .message(let message) = event else { return event }
            let partition = message.topicPartition
            guard state.generations[partition] == message.receipt.assignmentGeneration else { continue }
            if !state.tracker.track(message.offset, in: partition) {
                // An offset at or below one already delivered: librdkafka restarted the partition
                // there (a seek). Deliver again from there; only finished messages are skipped.
                state.tracker.rewind(partition, to: message.offset)
                guard state.tracker.track(message.offset, in: partition) else { continue }
            }
            return event
        }
        return nil
    }

    private func resume(
        _ wake: ReaderWake?
    ) {
        guard let (waiter, result) = wake else { return }
        waiter.resume(with: result)
    }

    // MARK: Poll thread side

    /// Adds a polled message unless its partition is no longer assigned, paused, or the stream
    /// has ended. A paused partition remembers the first dropped offset so resuming rewinds there.
    /// Returns whether the buffer is full (the poll thread then stops taking messages).
    @discardableResult
    func deliver(_ message: KafkaMessage) -> Bool {
        let (wake, full) = shared.withLock { state -> (ReaderWake?, Bool) in
            let full = state.events.messageCount >= configuration.maxBufferedMessages
            let partition = message.topicPartition
            guard !state.streamFinished, let generation = state.generations[partition] else { return (nil, full) }
            if state.userPaused.contains(partition) {
                state.rewindPoints[partition] = min(state.rewindPoints[partition] ?? message.offset, message.offset)
                return (nil, full)
            }
            var message = message
            message.receipt.assignmentGeneration = generation
            state.events.append(.message(message))
            let wake = Self.wakeReader(&state)
            return (wake, state.events.messageCount >= configuration.maxBufferedMessages)
        }
        resume(wake)
        return full
    }

    func takeLoopWork() -> LoopWork {
        shared.withLock { state in
            var seeks: [KafkaTopicPartitionOffset] = []
            for partition in state.pendingResumes.sorted() where state.generations[partition] != nil {
                if let offset = state.rewindPoints.removeValue(forKey: partition) {
                    seeks.append(KafkaTopicPartitionOffset(partition, offset: offset))
                }
            }
            state.pendingResumes = []
            let assigned = Set(state.generations.keys)
            let desired = state.userPaused.intersection(assigned)
            let pause = desired.subtracting(state.librdkafkaPaused).sorted()
            let resume = state.librdkafkaPaused.subtracting(desired).intersection(assigned).sorted()
            state.librdkafkaPaused = desired
            defer { state.asyncCommitRequested = false }
            return LoopWork(
                stop: state.stopRequested,
                seeks: seeks,
                pause: pause,
                resume: resume,
                commitRequested: state.asyncCommitRequested
            )
        }
    }

    /// Whether the buffer can take more messages; if not, the reader will wake the poll thread
    /// once it has room again.
    func hasRoom() -> Bool {
        shared.withLock { state in
            let room = state.events.messageCount < configuration.maxBufferedMessages
            state.waitingForRoom = !room
            return room
        }
    }

    /// Offsets to commit now (processed, not yet committed, still assigned); they are recorded
    /// as committed and put back if the commit fails.
    func takeOffsetsToCommit() -> [KafkaTopicPartitionOffset] {
        shared.withLock { state in
            let offsets = state.tracker.uncommittedOffsets().filter { state.generations[$0.topicPartition] != nil }
            state.tracker.markCommitted(offsets)
            return offsets
        }
    }

    /// Offsets for the commit at shutdown: every assigned partition's committable offset, also
    /// those already sent in an asynchronous commit, which may still fail after this one.
    func takeFinalOffsets() -> [KafkaTopicPartitionOffset] {
        shared.withLock { state in
            let offsets = state.tracker.committableOffsets().filter { state.generations[$0.topicPartition] != nil }
            state.tracker.markCommitted(offsets)
            return offsets
        }
    }

    func commitFailed(_ partitions: [KafkaTopicPartition]) {
        shared.withLock { $0.tracker.markCommitFailed(partitions) }
    }

    /// Ends the event stream for shutdown: buffered messages are dropped; the reader sees the
    /// end of the sequence.
    func finishStream() {
        let wake = shared.withLock { state -> ReaderWake? in
            state.streamFinished = true
            _ = state.events.removeAllMessages()
            return Self.wakeReader(&state)
        }
        resume(wake)
    }

    /// The consumer cannot continue: the reader gets `error` and the poll thread stops.
    func fail(_ error: KafkaError) {
        let wake = shared.withLock { state -> ReaderWake? in
            if state.failure == nil { state.failure = error }
            state.stopRequested = true
            state.streamFinished = true
            _ = state.events.removeAllMessages()
            return Self.wakeReader(&state)
        }
        resume(wake)
    }

    var failure: KafkaError? { shared.withLock { $0.failure } }

    // MARK: Public operations

    func markStarted() -> Bool {
        shared.withLock { state in
            defer { state.started = true }
            return !state.started
        }
    }

    func requestStop() { shared.withLock { $0.stopRequested = true } }

    func requestAsyncCommit() { shared.withLock { $0.asyncCommitRequested = true } }

    func markProcessed(_ receipt: KafkaMessageReceipt) -> Bool {
        shared.withLock { state in
            guard state.generations[receipt.topicPartition] == receipt.assignmentGeneration else { return false }
            return state.tracker.markFinished(receipt.offset, in: receipt.topicPartition)
        }
    }

    func uncommittedOffsets() -> [KafkaTopicPartitionOffset] {
        shared.withLock { state in
            state.tracker.uncommittedOffsets().filter { state.generations[$0.topicPartition] != nil }
        }
    }

    func markCommitted(_ offsets: [KafkaTopicPartitionOffset]) {
        shared.withLock { $0.tracker.markCommitted(offsets) }
    }

    var assignment: [KafkaTopicPartition] { shared.withLock { $0.generations.keys.sorted() } }

    var inFlightCount: Int { shared.withLock { $0.tracker.inFlightCount } }

    var bufferedMessageCount: Int { shared.withLock { $0.events.messageCount } }

    func inFlightCount(in partition: KafkaTopicPartition) -> Int {
        shared.withLock { $0.tracker.inFlightCount(in: partition) }
    }

    var pausedPartitions: [KafkaTopicPartition] { shared.withLock { $0.userPaused.sorted() } }

    func pause(_ partitions: [KafkaTopicPartition]) {
        shared.withLock { state in
            let assigned = Set(partitions.filter { state.generations[$0] != nil })
            state.userPaused.formUnion(assigned)
            state.pendingResumes.subtract(assigned)
            for (partition, lowest) in state.events.removeMessages(of: assigned) {
                state.rewindPoints[partition] = min(state.rewindPoints[partition] ?? lowest, lowest)
            }
        }
    }

    func resume(_ partitions: [KafkaTopicPartition]) {
        shared.withLock { state in
            for partition in partitions where state.userPaused.remove(partition) != nil {
                state.pendingResumes.insert(partition)
            }
        }
    }

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
            if case .offset(let start) = configuration.startOffset, let list {
                applyStartOffset(start, handle: handle, list: list)
            }
            routeToMessageQueue(partitions, handle: handle)
            let wake = shared.withLock { state -> ReaderWake? in
                for partition in partitions {
                    state.generations[partition] = state.nextGeneration
                    state.nextGeneration += 1
                }
                guard !state.streamFinished, !partitions.isEmpty else { return nil }
                state.events.append(.partitionsAssigned(partitions))
                return Self.wakeReader(&state)
            }
            resume(wake)
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
            let commitNow = configuration.commitOnRevoke && !lost
            // Stop tracking first (later completions are ignored), commit what was finished,
            // and only then tell the reader, so the event means "committed and dropped".
            let offsets = shared.withLock { state -> [KafkaTopicPartitionOffset] in
                var offsets: [KafkaTopicPartitionOffset] = []
                for partition in partitions {
                    if let offset = state.tracker.removePartition(partition), commitNow { offsets.append(offset) }
                    state.generations.removeValue(forKey: partition)
                    state.userPaused.remove(partition)
                    state.rewindPoints.removeValue(forKey: partition)
                    state.pendingResumes.remove(partition)
                    state.librdkafkaPaused.remove(partition)
                }
                _ = state.events.removeMessages(of: Set(partitions))
                return offsets
            }
            if !offsets.isEmpty {
                commitSynchronously(offsets, handle: handle, reason: "revoke")
            }
            let wake = shared.withLock { state -> ReaderWake? in
                guard !state.streamFinished, !partitions.isEmpty else { return nil }
                state.events.append(.partitionsRevoked(partitions))
                return Self.wakeReader(&state)
            }
            resume(wake)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, list) {
                    logger.error("\(KafkaError.consuming(error, kind: .consumer, operation: "incremental unassign"))")
                }
            } else {
                _ = rd_kafka_assign(handle, nil)
            }
            restoreRouting(partitions, handle: handle)
            if !partitions.isEmpty {
                var metadata: Logger.Metadata = [
                    "kafka.partitions": "\(partitions.map(\.description).joined(separator: ","))",
                    "kafka.rebalanceProtocol": "\(cooperative ? "cooperative" : "eager")",
                ]
                if !offsets.isEmpty {
                    metadata["kafka.committed"] = "\(offsets.map(\.description).joined(separator: ","))"
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
