/// Tracks which consumed offsets are finished and which offset may be committed per partition.
///
/// Messages are tracked in the order they were received (per partition, increasing offsets)
/// and may finish in any order. The committable offset of a partition is one past the last
/// offset of its longest finished prefix, so a commit never passes an unfinished message.
/// Offsets need not be contiguous (compaction and transaction markers leave gaps).
///
/// A pure value type: no locks and no I/O, so it is cheap to test exhaustively.
public struct OffsetTracker: Hashable, Sendable {
    struct PartitionState: Hashable, Sendable {
        /// Tracked offsets not yet in the finished prefix, in increasing order (from `head`).
        var offsets: [Int64] = []
        var finished: [Bool] = []
        var head = 0
        /// The last offset passed to `track`.
        var lastTracked: Int64?
        /// One past the finished prefix: the offset to commit.
        var committable: Int64?
        /// The offset last reported committed.
        var committed: Int64?

        var inFlight: Int { offsets.count - head }

        mutating func compactIfNeeded() {
            if head > 64 && head * 2 > offsets.count {
                offsets.removeFirst(head)
                finished.removeFirst(head)
                head = 0
            }
        }

        mutating func track(_ offset: Int64) -> Bool {
            if let last = lastTracked, offset <= last { return false }
            offsets.append(offset)
            finished.append(false)
            lastTracked = offset
            return true
        }

        mutating func markFinished(_ offset: Int64) -> Bool {
            guard let index = index(of: offset), !finished[index] else { return false }
            finished[index] = true
            if index == head {
                while head < offsets.count && finished[head] {
                    head += 1
                }
                committable = offsets[head - 1] + 1
                compactIfNeeded()
            }
            return true
        }

        mutating func rewind(to offset: Int64) {
            // Finished messages are never taken back: rewinding below the finished prefix acts as a
            // rewind to its end, and redelivered finished offsets are refused by `track`.
            let effective = max(offset, committable ?? offset)
            let keep = head + offsets[head...].prefix { $0 < effective }.count
            offsets.removeSubrange(keep...)
            finished.removeSubrange(keep...)
            if let last = lastTracked, last >= effective { lastTracked = effective - 1 }
        }

        /// Index of `offset` among the unfinished-prefix entries, by binary search.
        func index(of offset: Int64) -> Int? {
            var low = head
            var high = offsets.count
            while low < high {
                let middle = (low + high) / 2
                if offsets[middle] < offset { low = middle + 1 } else { high = middle }
            }
            return low < offsets.count && offsets[low] == offset ? low : nil
        }
    }

    private var states: [KafkaTopicPartition: PartitionState] = [:]

    /// Creates an empty tracker.
    public init() {}

    /// The partitions the tracker knows, sorted.
    public var partitions: [KafkaTopicPartition] { states.keys.sorted() }

    /// Records that `offset` of `partition` was received and is now in flight. Offsets must
    /// increase per partition; returns `false` (and ignores it) for an offset at or below the
    /// last tracked one.
    @discardableResult
    public mutating func track(_ offset: Int64, in partition: KafkaTopicPartition) -> Bool {
        guard offset >= 0 else { return false }
        // Changed in place: a copy of the state would copy its arrays on every call.
        return states[partition, default: PartitionState()].track(offset)
    }

    /// Marks a tracked offset finished (processed, dead-lettered, ... — its final outcome).
    /// Returns `false` when the offset is not in flight (unknown, already finished, or its
    /// partition was removed).
    @discardableResult
    public mutating func markFinished(_ offset: Int64, in partition: KafkaTopicPartition) -> Bool {
        states[partition]?.markFinished(offset) ?? false
    }

    /// Messages of `partition` tracked but not yet finished, or behind an unfinished one.
    public func inFlightCount(in partition: KafkaTopicPartition) -> Int {
        states[partition]?.inFlight ?? 0
    }

    /// Messages in flight across all partitions.
    public var inFlightCount: Int { states.values.reduce(0) { $0 + $1.inFlight } }

    /// The offset to commit for `partition` (one past its finished prefix), or `nil` when no
    /// message of it has finished yet.
    public func committableOffset(for partition: KafkaTopicPartition) -> Int64? {
        states[partition]?.committable
    }

    /// Committable offsets that differ from the last committed ones, sorted by partition.
    public func uncommittedOffsets() -> [KafkaTopicPartitionOffset] {
        states.compactMap { partition, state in
            guard let committable = state.committable, committable != state.committed else { return nil }
            return KafkaTopicPartitionOffset(partition, offset: committable)
        }
        .sorted { $0.topicPartition < $1.topicPartition }
    }

    /// Every partition's committable offset, committed before or not, sorted by partition: for a
    /// last commit, which must not trust an earlier commit whose result has not arrived yet.
    public func committableOffsets() -> [KafkaTopicPartitionOffset] {
        states.compactMap { partition, state in
            state.committable.map { KafkaTopicPartitionOffset(partition, offset: $0) }
        }
        .sorted { $0.topicPartition < $1.topicPartition }
    }

    /// Records that `offsets` were committed, so `uncommittedOffsets()` leaves them out until
    /// more messages finish. Unknown partitions are ignored.
    public mutating func markCommitted(_ offsets: [KafkaTopicPartitionOffset]) {
        for entry in offsets where states[entry.topicPartition] != nil {
            states[entry.topicPartition]?.committed = entry.offset
        }
    }

    /// Forgets that `partitions` were committed (after a failed commit), so their committable
    /// offsets are offered again.
    public mutating func markCommitFailed(_ partitions: [KafkaTopicPartition]) {
        for partition in partitions where states[partition] != nil {
            states[partition]?.committed = nil
        }
    }

    /// Stops tracking `partition` (revoked) and returns its uncommitted committable offset, if
    /// any. Later calls for it are ignored until it is tracked again.
    @discardableResult
    public mutating func removePartition(_ partition: KafkaTopicPartition) -> KafkaTopicPartitionOffset? {
        guard let state = states.removeValue(forKey: partition), let committable = state.committable,
            committable != state.committed
        else { return nil }
        return KafkaTopicPartitionOffset(partition, offset: committable)
    }

    /// Forgets every in-flight offset of `partition` at or above `offset` (those messages will be
    /// received again, for example after a pause rewound the partition), so they no longer hold
    /// back commits and can be tracked again.
    public mutating func rewind(_ partition: KafkaTopicPartition, to offset: Int64) {
        states[partition]?.rewind(to: offset)
    }
}
