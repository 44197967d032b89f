import FisoFlowTestSupport
import FisoKafka
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import FisoFlow

/// The Kafka source's read-ahead bound (no broker needed: the consumer is created, never run).
@Suite struct KafkaPartitionLanesTests {
    /// The consumer is never run, but librdkafka still tries its (closed) bootstrap port.
    private let quietLogger: Logger = {
        var logger = Logger(label: "test.lanes")
        logger.logLevel = .critical
        return logger
    }()

    private func makeLanes(maxInFlight: Int, maxRecords: Int) throws -> KafkaPartitionLanes {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                cluster: KafkaClientConfiguration(brokers: ["127.0.0.1:9"]), groupID: "lanes-test", topics: ["t"]
            ),
            logger: quietLogger
        )
        return KafkaPartitionLanes(
            maxInFlight: maxInFlight, consumer: consumer,
            readAhead: .init(maxRecords: maxRecords, maxBytes: 1 << 30)
        )
    }

    private func message(_ partition: Int32, _ offset: Int64) -> KafkaMessage {
        KafkaMessage(
            topic: "t", partition: partition, offset: offset, key: nil, value: Array("{}".utf8), headers: [],
            timestamp: nil
        )
    }

    /// Runs `waitForRoom()` in a task; the returned flag turns true once it returned.
    private func waitingReader(
        _ lanes: KafkaPartitionLanes, in group: inout ThrowingTaskGroup<Void, any Error>
    ) -> NIOLockedValueBox<Bool> {
        let released = NIOLockedValueBox(false)
        group.addTask {
            await lanes.waitForRoom()
            released.withLockedValue { $0 = true }
        }
        return released
    }

    @Test func theReaderWaitsWhileTheReadAheadIsFullAndGoesOnOnceHalfOfItStarted() async throws {
        let lanes = try makeLanes(maxInFlight: 1, maxRecords: 4)
        #expect(lanes.admit(message(0, 0)))
        for offset in 1...4 { #expect(!lanes.admit(message(0, Int64(offset)))) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let released = waitingReader(lanes, in: &group)
            try await Task.sleep(for: .milliseconds(100))
            #expect(!released.withLockedValue { $0 })
            #expect(lanes.next(after: message(0, 0))?.offset == 1)  // 3 wait: more than half
            try await Task.sleep(for: .milliseconds(100))
            #expect(!released.withLockedValue { $0 })
            #expect(lanes.next(after: message(0, 1))?.offset == 2)  // 2 wait: half
            try await group.waitForAll()
            #expect(released.withLockedValue { $0 })
        }
    }

    @Test func aPartitionPausedForARetryDoesNotHoldTheOthersBack() async throws {
        let lanes = try makeLanes(maxInFlight: 1, maxRecords: 4)
        #expect(lanes.admit(message(0, 0)))
        for offset in 1...4 { #expect(!lanes.admit(message(0, Int64(offset)))) }
        lanes.beginRetry(message(0, 0))
        // Returns at once: the only waiting records belong to the paused partition.
        await lanes.waitForRoom()
        lanes.endRetry(message(0, 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let released = waitingReader(lanes, in: &group)
            try await Task.sleep(for: .milliseconds(100))
            #expect(!released.withLockedValue { $0 }, "flowing again, the partition's waiting records count")
            lanes.revoke([KafkaTopicPartition(topic: "t", partition: 0)])
            try await group.waitForAll()
            #expect(released.withLockedValue { $0 })
        }
    }

    @Test func aStoppingReaderIsNotKeptWaiting() async throws {
        let lanes = try makeLanes(maxInFlight: 1, maxRecords: 2)
        #expect(lanes.admit(message(1, 0)))
        for offset in 1...2 { #expect(!lanes.admit(message(1, Int64(offset)))) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let released = waitingReader(lanes, in: &group)
            try await Task.sleep(for: .milliseconds(100))
            #expect(!released.withLockedValue { $0 })
            group.cancelAll()
            try await group.waitForAll()
            #expect(released.withLockedValue { $0 })
        }
    }
}
