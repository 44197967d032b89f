import DequeModule
import FisoKafka
import FisoQuantities
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Reads a consumer group's partitions and hands every record to the flow, committing offsets only
/// after their events reached a final outcome.
///
/// - `sink_or_dlq` / `sink`: records of a partition run concurrently, at most `maxInFlight` at
///   once; a partition with more waiting is paused. The consumer commits, in the background, one
///   past the longest prefix of finished records per partition (`OffsetTracker`), so a commit never
///   passes an unfinished event. An event that has not reached an outcome its policy accepts (the
///   sink, or the dead-letter topic for `sink_or_dlq`) pauses its partition and is run again with
///   the flow's backoff until it does, until its partition is revoked, or until the flow stops.
/// - `kafka_transaction`: see `KafkaSource+Transactions.swift`.
///
/// Stopping: the consumer stops taking records, the events taken finish, the processed offsets are
/// committed and the consumer leaves its group.
struct KafkaSource: EventSource {
    let settings: KafkaSourceSettings
    let consumerConfiguration: KafkaConsumerConfiguration
    let errorHandling: ErrorHandlingPolicy
    let flowName: String
    let logger: Logger
    /// The producer settings of a `kafka_transaction` source (its transactional id is made unique
    /// per source instance when the source starts).
    let transactionalProducer: KafkaProducerConfiguration?

    /// How long the start may wait for a broker to answer.
    static let connectTimeout = Duration.seconds(10)
    /// Most records taken from the consumer in one wake-up.
    static let batchSize = 500

    var description: String {
        "kafka \(settings.topics.joined(separator: ",")) (group \(settings.consumerGroup), cluster \(settings.cluster))"
    }

    init(settings: KafkaSourceSettings, context: FlowBuildContext) throws {
        guard let cluster = context.flow.kafkaClusters[settings.cluster] else {
            throw FlowFactory.BuildError(description: "Kafka cluster \(settings.cluster) is not defined")
        }
        let resolved = try KafkaClusterSettings.resolve(cluster)
        let transactional = context.flow.errorHandling.commitPolicy == .kafkaTransaction
        let startOffset: KafkaStartOffset =
            switch settings.startOffset {
            case .earliest: .earliest
            case .latest: .latest
            case .offset(let offset): .offset(offset)
            }
        var configuration = KafkaConsumerConfiguration(
            cluster: resolved.client, groupID: settings.consumerGroup, topics: settings.topics,
            startOffset: startOffset,
            maxBufferedMessages: max(1000, 2 * Self.batchSize)
        )
        if let session = resolved.sessionTimeout { configuration.sessionTimeout = session }
        if transactional {
            // Offsets go through the producer's transactions only.
            configuration.commitInterval = nil
            configuration.commitOnRevoke = false
            transactionalProducer = try KafkaClusterSettings.producerConfiguration(
                cluster, transactionalID: context.flow.errorHandling.transactionalID ?? context.flow.name
            )
        } else {
            transactionalProducer = nil
        }
        // The source closes the consumer only once its own events finished; what is still
        // unfinished then (an event retried until the stop) is not waited for.
        configuration.shutdownDrainTimeout = .zero
        try configuration.validate()
        self.settings = settings
        self.consumerConfiguration = configuration
        self.errorHandling = context.flow.errorHandling
        self.flowName = context.flow.name
        var logger = context.logger
        logger[metadataKey: "kafka.group"] = .string(settings.consumerGroup)
        self.logger = logger
    }

    func run(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        if errorHandling.commitPolicy == .kafkaTransaction {
            try await runTransactional(pipeline: pipeline, lifecycle: lifecycle)
        } else {
            try await runAtLeastOnce(pipeline: pipeline, lifecycle: lifecycle)
        }
        try? await pipeline.drain()  // cancelled: the runtime reports what was still in flight
    }

    // MARK: At least once (sink_or_dlq, sink)

    private func runAtLeastOnce(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        let lanes = KafkaPartitionLanes(maxInFlight: settings.maxInFlight, consumer: consumer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await consumer.run() }
            try await consumer.checkConnectivity(timeout: Self.connectTimeout)
            lifecycle.markStarted()
            // The reader hands batches over until the source is asked to stop (or the consumer
            // fails); the events taken until then finish before the consumer commits and closes.
            let (batches, continuation) = AsyncStream.makeStream(of: [KafkaConsumerEvent].self)
            await withDiscardingTaskGroup { workers in
                workers.addTask {
                    await Self.read(consumer, until: lifecycle, into: continuation) { await lanes.waitForRoom() }
                }
                for await batch in batches {
                    for event in batch {
                        switch event {
                        case .message(let message):
                            guard lanes.admit(message) else { continue }
                            workers.addTask {
                                var next: KafkaMessage? = message
                                while let current = next {
                                    await handle(
                                        current, pipeline: pipeline, consumer: consumer, lanes: lanes,
                                        lifecycle: lifecycle
                                    )
                                    // Stopping: records still waiting are left to the next owner
                                    // (they come after every running one, so no commit passes them).
                                    next = lifecycle.isStopRequested ? nil : lanes.next(after: current)
                                }
                            }
                        case .partitionsRevoked(let partitions):
                            lanes.revoke(partitions)
                        case .partitionsAssigned:
                            break
                        }
                    }
                }
            }
            // Nothing is in flight any more: commit what finished and leave the group.
            consumer.triggerShutdown()
            try await group.waitForAll()
        }
    }

    /// Passes the consumer's events on until a stop is requested or the stream ends (the consumer
    /// failed or shut down), then finishes `continuation`. `waitForRoom` runs before each batch is
    /// taken: while it waits, records stay in the consumer, whose bounded buffer stops the fetching.
    static func read(
        _ consumer: KafkaConsumer, until lifecycle: SourceLifecycle,
        into continuation: AsyncStream<[KafkaConsumerEvent]>.Continuation,
        waitForRoom: @escaping @Sendable () async -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var iterator = consumer.events.makeAsyncIterator()
                while true {
                    await waitForRoom()
                    if Task.isCancelled { return }
                    // Cancelled (stop) or failed: the consumer reports its failure from run().
                    guard let batch = try? await iterator.nextBatch(maxCount: batchSize), !batch.isEmpty else { return }
                    continuation.yield(batch)
                }
            }
            group.addTask { try? await lifecycle.waitForStopRequest() }
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
    }

    /// Runs one record to an outcome its commit policy accepts, then marks it processed.
    private func handle(
        _ message: KafkaMessage, pipeline: Pipeline, consumer: KafkaConsumer, lanes: KafkaPartitionLanes,
        lifecycle: SourceLifecycle
    ) async {
        let decoded = KafkaEventDecoder.event(from: message, flow: flowName, headerPolicy: settings.headerPolicy)
        if case .failure(let failure) = decoded {
            pipeline.recordRejected()
            var logger = logger
            for (key, value) in failure.event.origin { logger[metadataKey: key] = .string(value) }
            logger.warning(
                "Kafka record is not a valid event",
                metadata: ["code": .string(failure.error.code.rawValue), "error": .string(failure.error.message)]
            )
        }
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            let outcome: EventOutcome
            switch decoded {
            case .success(let event): outcome = await pipeline.process(event)
            case .failure(let failure): outcome = await pipeline.deadLetter(failure.event, error: failure.error)
            }
            // Abandoned at shutdown: not marked, so the record is delivered again.
            if Task.isCancelled { return }
            let accepted: Bool
            var failure: FlowError?
            switch outcome {
            case .delivered: accepted = true
            case .deadLettered(let error):
                accepted = errorHandling.commitPolicy == .sinkOrDeadLetter
                failure = error
            case .failed(let error):
                accepted = false
                failure = error
            }
            if accepted {
                consumer.markProcessed(message.receipt)
                if attempt > 0 {
                    lanes.endRetry(message)
                    logger.info(
                        "Kafka record processed after retries", metadata: Self.metadata(message, attempts: attempt + 1))
                }
                return
            }
            if failure?.code == .unavailable {
                if attempt > 0 { lanes.endRetry(message) }
                return  // the flow is stopping
            }
            if attempt == 0 { lanes.beginRetry(message) }
            attempt += 1
            let wait = errorHandling.backoff.delay(beforeRetry: attempt, using: &generator)
            var metadata = Self.metadata(message, attempts: attempt)
            metadata["code"] = .string(failure?.code.rawValue ?? "")
            metadata["error"] = .string(failure?.message ?? "")
            metadata["retry_in"] = .string(GoDuration.format(.milliseconds(Int64((wait.seconds * 1000).rounded()))))
            metadata["commit_policy"] = .string(errorHandling.commitPolicy.rawValue)
            logger.warning(
                "Kafka record not committed: its partition is paused and the event runs again", metadata: metadata
            )
            let keepGoing = await Self.sleep(for: wait) { !lifecycle.isStopRequested && lanes.isCurrent(message) }
            guard keepGoing else {
                lanes.endRetry(message)
                return
            }
        }
    }

    static func metadata(_ message: KafkaMessage, attempts: Int) -> Logger.Metadata {
        [
            "kafka.topic": .string(message.topic), "kafka.partition": .stringConvertible(message.partition),
            "kafka.offset": .stringConvertible(message.offset), "attempts": .stringConvertible(attempts),
        ]
    }

    // MARK: Helpers

    /// Sleeps for `duration` in short steps while `shouldContinue` holds; false when it stopped
    /// holding (or the task was cancelled).
    static func sleep(for duration: Duration, while shouldContinue: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            guard shouldContinue() else { return false }
            do {
                try await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
            } catch {
                return false
            }
        }
        return shouldContinue()
    }
}

/// Per-partition bookkeeping of a kafka source: at most `maxInFlight` events of a partition run at
/// once and more wait here, read ahead. The read-ahead is bounded for the whole source: once
/// `readAhead.maxRecords` records or `readAhead.maxBytes` bytes wait in partitions that are
/// flowing, the source stops taking records from the consumer (``waitForRoom()``) until half of that
/// started, so the consumer's bounded buffer holds the rest and librdkafka stops fetching.
///
/// The bound is generous on purpose: librdkafka hands over records a partition's fetch at a time
/// (up to 1 MiB each), so a small bound fills with one partition's records and leaves the other
/// partitions idle; pausing a busy partition instead costs a seek and a new fetch on every resume.
/// Both throttled the benchmark flow to about half its speed. A partition is paused only while one
/// of its events is retried (nothing after it may commit). Revoked partitions are forgotten: their
/// waiting records are dropped and their running events are not retried.
final class KafkaPartitionLanes: Sendable {
    struct Lane {
        let generation: UInt64
        var running = 0
        var waiting: Deque<KafkaMessage> = []
        /// What the waiting records cost in memory (`readAheadBytes` each).
        var waitingBytes = 0
        var retrying = 0
        var paused = false

        var waitingCount: Int { waiting.count }

        mutating func popWaiting() -> KafkaMessage? {
            guard let message = waiting.popFirst() else { return nil }
            waitingBytes -= message.readAheadBytes
            return message
        }
    }

    private struct State {
        var lanes: [KafkaTopicPartition: Lane] = [:]
        /// The reader waiting in ``waitForRoom()``.
        var roomWaiter: CheckedContinuation<Void, Never>?

        /// Records and bytes waiting in partitions that are not paused for a retry (those of a
        /// paused one must not hold the others back).
        var flowingReadAhead: (records: Int, bytes: Int) {
            var records = 0
            var bytes = 0
            for lane in lanes.values where !lane.paused {
                records += lane.waitingCount
                bytes += lane.waitingBytes
            }
            return (records, bytes)
        }

        /// Takes the reader's continuation when enough records started for it to go on.
        mutating func takeRoomWaiter(_ limit: ReadAheadLimit) -> CheckedContinuation<Void, Never>? {
            guard roomWaiter != nil else { return nil }
            let (records, bytes) = flowingReadAhead
            guard records <= limit.maxRecords / 2, bytes <= limit.maxBytes / 2 else { return nil }
            defer { roomWaiter = nil }
            return roomWaiter
        }
    }

    private enum Action {
        case none
        case pause
        case resume
    }

    /// Bounds of the records read ahead (waiting for a worker in flowing partitions).
    struct ReadAheadLimit: Sendable {
        var maxRecords: Int
        var maxBytes: Int

        /// The source's bounds: up to 100,000 records and 32 MiB.
        static let standard = ReadAheadLimit(maxRecords: 100_000, maxBytes: 32 << 20)
        /// What a record costs beyond its key and value (its object, topic, headers), roughly.
        static let recordOverheadBytes = 160
    }

    let maxInFlight: Int
    let readAhead: ReadAheadLimit
    private let consumer: KafkaConsumer
    private let state = NIOLockedValueBox(State())

    init(maxInFlight: Int, consumer: KafkaConsumer, readAhead: ReadAheadLimit = .standard) {
        self.maxInFlight = maxInFlight
        self.readAhead = readAhead
        self.consumer = consumer
    }

    /// Returns once the read-ahead is below its bounds, or when the task is cancelled.
    func waitForRoom() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let goOn = state.withLockedValue { state -> Bool in
                    let (records, bytes) = state.flowingReadAhead
                    if Task.isCancelled || (records < readAhead.maxRecords && bytes < readAhead.maxBytes) {
                        return true
                    }
                    state.roomWaiter = continuation
                    return false
                }
                if goOn { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { state in
                defer { state.roomWaiter = nil }
                return state.roomWaiter
            }?.resume()
        }
    }

    /// Takes a delivered record; true when it should start now (in a new worker), false when it
    /// waits for a worker of its partition.
    func admit(_ message: KafkaMessage) -> Bool {
        let partition = message.topicPartition
        return state.withLockedValue { state -> Bool in
            // Taken out of the dictionary while it changes, so its arrays are not copied.
            var lane =
                state.lanes.removeValue(forKey: partition) ?? Lane(generation: message.receipt.assignmentGeneration)
            if lane.generation != message.receipt.assignmentGeneration {
                lane = Lane(generation: message.receipt.assignmentGeneration)
            }
            defer { state.lanes[partition] = lane }
            if lane.running < maxInFlight {
                lane.running += 1
                return true
            }
            lane.waiting.append(message)
            lane.waitingBytes += message.readAheadBytes
            return false
        }
    }

    /// After a worker finished `message`: the next record of its partition for the same worker, or
    /// nil when the worker should end.
    func next(after message: KafkaMessage) -> KafkaMessage? {
        let partition = message.topicPartition
        let (next, waiter) = state.withLockedValue { state -> (KafkaMessage?, CheckedContinuation<Void, Never>?) in
            guard var lane = state.lanes.removeValue(forKey: partition) else { return (nil, nil) }
            guard lane.generation == message.receipt.assignmentGeneration else {
                state.lanes[partition] = lane
                return (nil, nil)
            }
            let next = lane.popWaiting()
            if next == nil { lane.running -= 1 }
            state.lanes[partition] = lane
            return (next, state.takeRoomWaiter(readAhead))
        }
        waiter?.resume()
        return next
    }

    /// An event of `message`'s partition must run again: the partition is paused meanwhile.
    func beginRetry(_ message: KafkaMessage) {
        update(message) { $0.retrying += 1 }
    }

    func endRetry(_ message: KafkaMessage) {
        update(message) { $0.retrying -= 1 }
    }

    /// Whether `message` still belongs to an assigned partition (not revoked since delivery).
    func isCurrent(_ message: KafkaMessage) -> Bool {
        state.withLockedValue { $0.lanes[message.topicPartition]?.generation == message.receipt.assignmentGeneration }
    }

    /// Forgets revoked partitions: waiting records are dropped, running events are not retried.
    func revoke(_ partitions: [KafkaTopicPartition]) {
        let waiter = state.withLockedValue { state in
            for partition in partitions { state.lanes[partition] = nil }
            return state.takeRoomWaiter(readAhead)
        }
        waiter?.resume()
    }

    private func update(_ message: KafkaMessage, _ change: (inout Lane) -> Void) {
        let partition = message.topicPartition
        let (action, waiter) = state.withLockedValue { state -> (Action, CheckedContinuation<Void, Never>?) in
            guard var lane = state.lanes[partition], lane.generation == message.receipt.assignmentGeneration else {
                return (.none, nil)
            }
            change(&lane)
            let action = Self.decide(&lane)
            state.lanes[partition] = lane
            // A partition paused for a retry no longer holds the reader back.
            return (action, state.takeRoomWaiter(readAhead))
        }
        perform(action, on: partition)
        waiter?.resume()
    }

    /// Paused while an event is retried; resumed once none is.
    private static func decide(_ lane: inout Lane) -> Action {
        let shouldPause = lane.retrying > 0
        if !lane.paused, shouldPause {
            lane.paused = true
            return .pause
        }
        if lane.paused, !shouldPause {
            lane.paused = false
            return .resume
        }
        return .none
    }

    private func perform(_ action: Action, on partition: KafkaTopicPartition) {
        switch action {
        case .none: break
        case .pause: consumer.pause([partition])
        case .resume: consumer.resume([partition])
        }
    }
}

extension KafkaMessage {
    /// What a record read ahead costs in memory, roughly.
    fileprivate var readAheadBytes: Int {
        (key?.count ?? 0) + (value?.count ?? 0) + KafkaPartitionLanes.ReadAheadLimit.recordOverheadBytes
    }
}
