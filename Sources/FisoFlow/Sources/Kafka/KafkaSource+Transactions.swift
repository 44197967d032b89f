import FisoKafka
import FisoQuantities
import Foundation
import Logging
import NIOConcurrencyHelpers

/// `commitPolicy: kafka_transaction`: records are processed in batches, one Kafka transaction per
/// batch.
///
/// 1. The source takes the records the consumer has ready (at most `maxInFlight` per assigned
///    partition) and begins a transaction.
/// 2. The batch runs through the flow concurrently (at most `maxInFlight` events of a partition at
///    once). The kafka sink does not produce: it hands its record to the batch.
/// 3. If every event was delivered, the batch's records are produced at once (in the order of the
///    records they came from), the consumed offsets are added to the transaction
///    (`sendOffsetsToTransaction`, with the consumer's group metadata so a zombie member is fenced)
///    and the transaction commits. Output records and offsets become visible together.
/// 4. If anything fails (an event, a produce, the offsets, the commit, or a partition revoked in
///    the meantime) the transaction is aborted, the consumer is closed without committing, and a
///    new consumer re-reads from the committed offsets after the flow's backoff. An event that can
///    never succeed therefore holds its partition (there is no dead-letter topic with this policy).
///
/// The transactional id is `<transactionalId>-<host name>-<n>`: unique per source instance (so
/// replicas and a flow's old and new version during a reload do not fence each other), and the same
/// after a process restart on the same host (so the new process aborts the transaction its
/// predecessor left open). Consumer-group fencing (KIP-447) keeps a stale member from committing.
extension KafkaSource {
    private static let instanceCounter = NIOLockedValueBox(0)

    /// Transactional ids of this process's `kafka_transaction` sources.
    static func uniqueTransactionalID(_ base: String) -> String {
        let number = instanceCounter.withLockedValue { count in
            count += 1
            return count
        }
        var name = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        return "\(base)-\(host)-\(number)"
    }

    private enum RoundEnd {
        case stopped
        case failed(any Error, started: Bool, producerUnusable: Bool)
    }

    func runTransactional(pipeline: Pipeline, lifecycle: SourceLifecycle) async throws {
        guard var configuration = transactionalProducer else {
            throw FlowFactory.BuildError(description: "kafka_transaction needs a transactional producer")
        }
        configuration.transactionalID = Self.uniqueTransactionalID(configuration.transactionalID ?? flowName)
        var producer = try await startTransactionalProducer(configuration)
        var started = false
        var attempt = 0
        var generator = SystemRandomNumberGenerator()
        rounds: while !lifecycle.isStopRequested {
            let consumer: KafkaConsumer
            do {
                consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
            } catch {
                await producer.shutdown()
                throw error
            }
            switch await runRound(consumer: consumer, producer: producer, pipeline: pipeline, lifecycle: lifecycle) {
            case .stopped:
                await producer.shutdown()
                return
            case .failed(let error, let roundStarted, let producerUnusable):
                started = started || roundStarted
                guard started else {
                    await producer.shutdown()
                    throw error
                }
                attempt += 1
                let wait = errorHandling.backoff.delay(beforeRetry: attempt, using: &generator)
                logger.error(
                    "Kafka transaction failed and was aborted; re-reading from the committed offsets",
                    metadata: [
                        "error": .string("\(error)"), "attempts": .stringConvertible(attempt),
                        "retry_in": .string(GoDuration.format(.milliseconds(Int64((wait.seconds * 1000).rounded())))),
                    ]
                )
                if producerUnusable {
                    await producer.shutdown()
                    while true {
                        do {
                            producer = try await startTransactionalProducer(configuration)
                            break
                        } catch {
                            logger.error(
                                "Kafka transactional producer could not start", metadata: ["error": .string("\(error)")]
                            )
                            guard await Self.sleep(for: wait, while: { !lifecycle.isStopRequested }) else { return }
                        }
                    }
                }
                guard await Self.sleep(for: wait, while: { !lifecycle.isStopRequested }) else { break rounds }
            }
        }
        await producer.shutdown()
    }

    private func startTransactionalProducer(_ configuration: KafkaProducerConfiguration) async throws -> KafkaProducer {
        var logger = logger
        logger[metadataKey: "kafka.transactional_id"] = .string(configuration.transactionalID ?? "")
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        do {
            try await producer.initTransactions(timeout: .seconds(30))
        } catch {
            await producer.shutdown()
            throw error
        }
        return producer
    }

    /// One consumer's life: transactions until the source stops or one fails.
    private func runRound(
        consumer: KafkaConsumer, producer: KafkaProducer, pipeline: Pipeline, lifecycle: SourceLifecycle
    ) async -> RoundEnd {
        let control = TransactionLoopControl()
        var started = false
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await consumer.run() }
                try await consumer.checkConnectivity(timeout: Self.connectTimeout)
                lifecycle.markStarted()
                started = true
                group.addTask {
                    // Cancelled when the round ends without a stop request.
                    guard (try? await lifecycle.waitForStopRequest()) != nil else { return }
                    if control.requestStop() { consumer.triggerShutdown() }
                }
                var iterator = consumer.events.makeAsyncIterator()
                while true {
                    let limit = min(10_000, settings.maxInFlight * max(1, consumer.assignment.count))
                    let batch = try await iterator.nextBatch(maxCount: limit)
                    if batch.isEmpty { break }
                    let messages = batch.compactMap { event -> KafkaMessage? in
                        if case .message(let message) = event { return message }
                        return nil
                    }
                    if messages.isEmpty { continue }
                    // Stopping: these records are not committed; the group's next member reads them.
                    guard control.beginTransaction() else { break }
                    try await runTransaction(messages, consumer: consumer, producer: producer, pipeline: pipeline)
                    if control.endTransaction() { consumer.triggerShutdown() }
                }
                group.cancelAll()
                consumer.triggerShutdown()
                try await group.waitForAll()
            }
            return .stopped
        } catch {
            consumer.triggerShutdown()
            let unusable = (error as? KafkaError)?.requiresNewProducer ?? false || error is TransactionAbortFailed
            return .failed(error, started: started, producerUnusable: unusable)
        }
    }

    /// Processes `messages` in one transaction and commits it with their offsets; aborts and throws
    /// on any failure.
    private func runTransaction(
        _ messages: [KafkaMessage], consumer: KafkaConsumer, producer: KafkaProducer, pipeline: Pipeline
    ) async throws {
        try producer.beginTransaction()
        do {
            let batch = KafkaTransactionBatch()
            if let failure = await processBatch(messages, into: batch, pipeline: pipeline) {
                throw failure
            }
            let records = batch.orderedRecords
            if !records.isEmpty {
                for result in await producer.produce(batch: records) {
                    if case .failure(let error) = result { throw error }
                }
            }
            for message in messages where !consumer.markProcessed(message.receipt) {
                throw TransactionEventFailed(
                    description: "partition \(message.topicPartition) was revoked during the transaction"
                )
            }
            let offsets = consumer.uncommittedOffsets()
            try await producer.sendOffsetsToTransaction(offsets, consumer: consumer)
            try await commit(producer)
            consumer.markCommitted(offsets)
        } catch {
            do {
                // Bounded: when the abort does not finish, recreating the producer (same transactional
                // id) aborts the open transaction on the broker anyway.
                try await producer.abortTransaction(timeout: .seconds(10))
            } catch let abortError {
                throw TransactionAbortFailed(
                    description: "\(error); aborting the transaction failed too: \(abortError)")
            }
            throw error
        }
    }

    /// Commits, repeating the call while librdkafka says repeating can succeed.
    private func commit(_ producer: KafkaProducer) async throws {
        var attempts = 0
        while true {
            let failure: KafkaError
            do {
                try await producer.commitTransaction()
                return
            } catch {
                failure = error
            }
            guard failure.isRetriable, !failure.requiresAbort, attempts < 3 else { throw failure }
            attempts += 1
            try await Task.sleep(for: .milliseconds(100 * attempts))
        }
    }

    /// Runs the batch through the flow (at most `maxInFlight` events of a partition at once);
    /// returns the first failure, if any.
    private func processBatch(
        _ messages: [KafkaMessage], into batch: KafkaTransactionBatch, pipeline: Pipeline
    ) async -> TransactionEventFailed? {
        let failure = NIOLockedValueBox<TransactionEventFailed?>(nil)
        var partitions: [KafkaTopicPartition: [Int]] = [:]
        for (index, message) in messages.enumerated() { partitions[message.topicPartition, default: []].append(index) }
        await withDiscardingTaskGroup { group in
            for indices in partitions.values {
                let cursor = NIOLockedValueBox(0)
                for _ in 0..<min(indices.count, settings.maxInFlight) {
                    group.addTask {
                        while true {
                            let position = cursor.withLockedValue { position -> Int? in
                                guard position < indices.count else { return nil }
                                defer { position += 1 }
                                return position
                            }
                            guard let position else { return }
                            let index = indices[position]
                            let message = messages[index]
                            let slot = KafkaTransactionSlot(batch: batch, index: index)
                            let problem = await processInTransaction(message, slot: slot, pipeline: pipeline)
                            if let problem {
                                failure.withLockedValue { $0 = $0 ?? problem }
                                return
                            }
                        }
                    }
                }
            }
        }
        return failure.withLockedValue { $0 }
    }

    /// One event of a transaction; nil when it was delivered (its record is in the batch).
    private func processInTransaction(
        _ message: KafkaMessage, slot: KafkaTransactionSlot, pipeline: Pipeline
    ) async -> TransactionEventFailed? {
        let outcome: EventOutcome
        switch KafkaEventDecoder.event(from: message, flow: flowName, headerPolicy: settings.headerPolicy) {
        case .success(let event):
            outcome = await pipeline.process(event, context: DeliveryContext(transaction: slot))
        case .failure(let failure):
            pipeline.recordRejected()
            outcome = await pipeline.deadLetter(failure.event, error: failure.error)
        }
        switch outcome {
        case .delivered: return nil
        case .deadLettered(let error), .failed(let error):
            return TransactionEventFailed(
                description:
                    "event of \(message.topicPartition)@\(message.offset) failed: \(error.code.rawValue): \(error.message)"
            )
        }
    }
}

/// An event of a transaction did not reach the sink; the transaction is aborted.
struct TransactionEventFailed: Error, CustomStringConvertible {
    var description: String
}

/// Aborting a failed transaction failed as well; the producer is recreated.
struct TransactionAbortFailed: Error, CustomStringConvertible {
    var description: String
}

/// Whether a transaction is open, and whether the source was asked to stop: a stop waits for the
/// open transaction to finish, and no transaction begins once stopping.
final class TransactionLoopControl: Sendable {
    private let state = NIOLockedValueBox<(stopping: Bool, inTransaction: Bool)>((false, false))

    /// Returns false when stopping.
    func beginTransaction() -> Bool {
        state.withLockedValue { state in
            guard !state.stopping else { return false }
            state.inTransaction = true
            return true
        }
    }

    /// Returns true when a stop was requested meanwhile (the caller then shuts the consumer down).
    func endTransaction() -> Bool {
        state.withLockedValue { state in
            state.inTransaction = false
            return state.stopping
        }
    }

    /// Returns true when no transaction is open (the caller shuts the consumer down now).
    func requestStop() -> Bool {
        state.withLockedValue { state in
            state.stopping = true
            return !state.inTransaction
        }
    }
}
