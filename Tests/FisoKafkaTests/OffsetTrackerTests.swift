import FisoKafka
import Testing

@Suite("OffsetTracker")
struct OffsetTrackerTests {
    let p0 = KafkaTopicPartition(topic: "orders", partition: 0)
    let p1 = KafkaTopicPartition(topic: "orders", partition: 1)
    let p2 = KafkaTopicPartition(topic: "orders", partition: 2)

    @Test("nothing is committable before the first message finishes")
    func emptyAndUnfinished() {
        var tracker = OffsetTracker()
        #expect(tracker.committableOffset(for: p0) == nil)
        #expect(tracker.uncommittedOffsets().isEmpty)
        tracker.track(0, in: p0)
        tracker.track(1, in: p0)
        #expect(tracker.committableOffset(for: p0) == nil)
        #expect(tracker.inFlightCount(in: p0) == 2)
        #expect(tracker.inFlightCount == 2)
    }

    @Test("in-order completion commits one past each finished message")
    func inOrder() {
        var tracker = OffsetTracker()
        for offset in 0..<5 { tracker.track(Int64(offset), in: p0) }
        for offset in 0..<5 {
            let result1 = tracker.markFinished(Int64(offset), in: p0)
            #expect(result1)
            #expect(tracker.committableOffset(for: p0) == Int64(offset) + 1)
        }
        #expect(tracker.inFlightCount(in: p0) == 0)
    }

    @Test("out-of-order completion yields only the contiguous finished prefix")
    func outOfOrder() {
        var tracker = OffsetTracker()
        for offset in 10..<20 { tracker.track(Int64(offset), in: p0) }
        for offset: Int64 in [12, 15, 11, 19] { tracker.markFinished(offset, in: p0) }
        #expect(tracker.committableOffset(for: p0) == nil, "offset 10 is unfinished")
        tracker.markFinished(10, in: p0)
        #expect(tracker.committableOffset(for: p0) == 13, "10, 11, 12 finished; 13 is not")
        for offset: Int64 in [13, 14] { tracker.markFinished(offset, in: p0) }
        #expect(tracker.committableOffset(for: p0) == 16)
        #expect(tracker.inFlightCount(in: p0) == 4, "16, 17, 18 unfinished and 19 behind them")
        for offset: Int64 in [18, 17, 16] { tracker.markFinished(offset, in: p0) }
        #expect(tracker.committableOffset(for: p0) == 20)
        #expect(tracker.inFlightCount(in: p0) == 0)
    }

    @Test("gaps in offsets (compaction, transaction markers) do not block commits")
    func gaps() {
        var tracker = OffsetTracker()
        for offset: Int64 in [3, 7, 8, 20] { tracker.track(offset, in: p0) }
        tracker.markFinished(7, in: p0)
        tracker.markFinished(3, in: p0)
        #expect(tracker.committableOffset(for: p0) == 8)
        tracker.markFinished(20, in: p0)
        #expect(tracker.committableOffset(for: p0) == 8)
        tracker.markFinished(8, in: p0)
        #expect(tracker.committableOffset(for: p0) == 21)
    }

    @Test("unknown, repeated and duplicate offsets are refused")
    func refusals() {
        var tracker = OffsetTracker()
        let result2 = tracker.track(5, in: p0)
        #expect(result2)
        let result3 = tracker.track(5, in: p0)
        #expect(!result3, "same offset twice")
        let result4 = tracker.track(4, in: p0)
        #expect(!result4, "lower offset")
        let result5 = tracker.track(-1, in: p0)
        #expect(!result5, "negative offset")
        let result6 = tracker.markFinished(6, in: p0)
        #expect(!result6, "never tracked")
        let result7 = tracker.markFinished(5, in: p1)
        #expect(!result7, "other partition")
        let result8 = tracker.markFinished(5, in: p0)
        #expect(result8)
        let result9 = tracker.markFinished(5, in: p0)
        #expect(!result9, "already finished")
        #expect(tracker.committableOffset(for: p0) == 6)
    }

    @Test("partitions are independent")
    func partitionsIndependent() {
        var tracker = OffsetTracker()
        for offset in 0..<3 {
            tracker.track(Int64(offset), in: p0)
            tracker.track(Int64(offset), in: p1)
        }
        tracker.markFinished(0, in: p1)
        tracker.markFinished(1, in: p1)
        tracker.markFinished(1, in: p0)
        #expect(tracker.committableOffset(for: p0) == nil)
        #expect(tracker.committableOffset(for: p1) == 2)
        #expect(tracker.uncommittedOffsets() == [KafkaTopicPartitionOffset(p1, offset: 2)])
        #expect(tracker.partitions == [p0, p1])
    }

    @Test("committed offsets are reported once until more messages finish; failures offer them again")
    func commitBookkeeping() {
        var tracker = OffsetTracker()
        for offset in 0..<4 { tracker.track(Int64(offset), in: p0) }
        tracker.markFinished(0, in: p0)
        let first = tracker.uncommittedOffsets()
        #expect(first == [KafkaTopicPartitionOffset(p0, offset: 1)])
        tracker.markCommitted(first)
        #expect(tracker.uncommittedOffsets().isEmpty)
        tracker.markFinished(2, in: p0)
        #expect(tracker.uncommittedOffsets().isEmpty, "2 finished but 1 is not")
        tracker.markFinished(1, in: p0)
        #expect(tracker.uncommittedOffsets() == [KafkaTopicPartitionOffset(p0, offset: 3)])
        tracker.markCommitted(tracker.uncommittedOffsets())
        tracker.markCommitFailed([p0])
        #expect(tracker.uncommittedOffsets() == [KafkaTopicPartitionOffset(p0, offset: 3)])
    }

    @Test("the last commit offers every committable offset, also those committed already")
    func finalCommitOffersEverything() {
        var tracker = OffsetTracker()
        for offset in 0..<3 {
            tracker.track(Int64(offset), in: p0)
            tracker.track(Int64(offset), in: p1)
        }
        tracker.track(0, in: p2)
        tracker.markFinished(0, in: p0)
        tracker.markFinished(0, in: p1)
        tracker.markFinished(1, in: p1)
        // An asynchronous commit was sent for both; its result may still be a failure.
        tracker.markCommitted(tracker.uncommittedOffsets())
        #expect(tracker.uncommittedOffsets().isEmpty)
        #expect(
            tracker.committableOffsets() == [
                KafkaTopicPartitionOffset(p0, offset: 1), KafkaTopicPartitionOffset(p1, offset: 2),
            ])  // p2: nothing finished
    }

    @Test("removing a partition returns its uncommitted offset and ignores later completions")
    func removal() {
        var tracker = OffsetTracker()
        for offset in 0..<3 { tracker.track(Int64(offset), in: p0) }
        tracker.markFinished(0, in: p0)
        let result10 = tracker.removePartition(p0)
        #expect(result10 == KafkaTopicPartitionOffset(p0, offset: 1))
        let result11 = tracker.markFinished(1, in: p0)
        #expect(!result11)
        #expect(tracker.inFlightCount == 0)
        let result12 = tracker.removePartition(p0)
        #expect(result12 == nil)
        // Tracked again (re-assigned): starts fresh.
        let result13 = tracker.track(1, in: p0)
        #expect(result13)
        tracker.markFinished(1, in: p0)
        #expect(tracker.committableOffset(for: p0) == 2)

        var committed = OffsetTracker()
        committed.track(0, in: p1)
        committed.markFinished(0, in: p1)
        committed.markCommitted(committed.uncommittedOffsets())
        let result14 = committed.removePartition(p1)
        #expect(result14 == nil, "already committed")
    }

    @Test("rewind forgets undelivered offsets so they can be tracked again, never finished ones")
    func rewind() {
        var tracker = OffsetTracker()
        for offset in 0..<10 { tracker.track(Int64(offset), in: p0) }
        tracker.markFinished(0, in: p0)
        tracker.markFinished(1, in: p0)
        tracker.rewind(p0, to: 5)
        #expect(tracker.inFlightCount(in: p0) == 3, "2, 3, 4 stay in flight")
        let result15 = tracker.track(5, in: p0)
        #expect(result15, "5 is delivered again")
        let result16 = tracker.track(5, in: p0)
        #expect(!result16)
        for offset: Int64 in [2, 3, 4, 5] { tracker.markFinished(offset, in: p0) }
        #expect(tracker.committableOffset(for: p0) == 6)
        // Rewinding below the finished prefix cannot take finished messages back.
        tracker.rewind(p0, to: 1)
        let result17 = tracker.track(3, in: p0)
        #expect(!result17)
        let result18 = tracker.track(6, in: p0)
        #expect(result18)
        #expect(tracker.committableOffset(for: p0) == 6)
    }

    @Test("matches a simple model under random completion orders")
    func randomizedAgainstModel() {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<200 {
            var tracker = OffsetTracker()
            var offsets: [Int64] = []
            var next: Int64 = Int64(generator.next() % 5)
            for _ in 0..<Int(generator.next() % 60 + 1) {
                offsets.append(next)
                tracker.track(next, in: p0)
                next += Int64(generator.next() % 3 + 1)  // gaps of 0-2
            }
            var finished = Set<Int64>()
            for offset in offsets.shuffled(using: &generator) {
                let result19 = tracker.markFinished(offset, in: p0)
                #expect(result19)
                finished.insert(offset)
                // Model: one past the last offset of the longest finished prefix.
                let prefix = offsets.prefix { finished.contains($0) }
                let expected = prefix.last.map { $0 + 1 }
                #expect(tracker.committableOffset(for: p0) == expected)
                #expect(tracker.inFlightCount(in: p0) == offsets.count - prefix.count)
            }
        }
    }
}

/// A small deterministic generator so the randomized test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
