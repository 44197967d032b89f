/// The consumer's state and every decision made about it, as a pure value: no librdkafka calls,
/// no locks, no continuations, no clocks and no threads.
///
/// Each method takes an input — records polled, a rebalance, a commit result, a message marked
/// processed, the reader wanting events, a step of the poll loop or of the close — and returns
/// what the caller must do: resume the waiting reader with an event, wake the poll thread, seek,
/// pause or resume partitions, commit offsets. `ConsumerState` keeps it behind a lock and does
/// those things after unlocking, so every rule here can be tested without a broker.
struct ConsumerStateMachine {
    struct Configuration: Sendable {
        /// Messages buffered for the reader before the poll thread stops taking more.
        var maxBufferedMessages: Int
        /// Commit processed offsets of revoked partitions and on close.
        var commitOnRevoke: Bool
        /// A numeric start offset: partitions without a committed offset start there.
        var startOffset: Int64?

        init(maxBufferedMessages: Int, commitOnRevoke: Bool, startOffset: Int64?) {
            self.maxBufferedMessages = maxBufferedMessages
            self.commitOnRevoke = commitOnRevoke
            self.startOffset = startOffset
        }

        init(_ configuration: KafkaConsumerConfiguration) {
            var startOffset: Int64?
            if case .offset(let offset) = configuration.startOffset { startOffset = offset }
            self.init(
                maxBufferedMessages: configuration.maxBufferedMessages,
                commitOnRevoke: configuration.commitOnRevoke,
                startOffset: startOffset
            )
        }
    }

    /// What the reader of `events` is resumed with.
    enum ReaderResumption {
        case event(KafkaConsumerEvent)
        /// The stream ended (shutdown).
        case endOfStream
        case failure(any Error)

        var result: Result<KafkaConsumerEvent?, any Error> {
            switch self {
            case .event(let event): .success(event)
            case .endOfStream: .success(nil)
            case .failure(let error): .failure(error)
            }
        }
    }

    /// The answer to a reader asking for the next event.
    enum NextEventAction {
        /// Resume the reader at once; `wakePollThread` when the poll thread waits for room that
        /// this made.
        case resume(ReaderResumption, wakePollThread: Bool)
        /// Nothing yet: park the reader until an action resumes it.
        case wait
    }

    /// What one iteration of the poll loop must do before polling.
    enum LoopAction {
        /// Leave the loop and close.
        case stop
        case work(LoopWork)
    }

    struct LoopWork {
        /// Rewinds of resumed partitions to their first undelivered message (before resuming).
        var seeks: [KafkaTopicPartitionOffset] = []
        var pause: [KafkaTopicPartition] = []
        var resume: [KafkaTopicPartition] = []
        /// Set when a commit round is due (requested, or the interval passed): send these offsets
        /// asynchronously (if any) and restart the commit interval.
        var commit: [KafkaTopicPartitionOffset]?
    }

    /// What to do with newly assigned partitions, inside the rebalance callback.
    struct AssignAction {
        /// Resolve this start offset for partitions without a committed offset before assigning.
        var resolveStartOffset: Int64?
        /// Route these partitions' messages to the message queue.
        var route: [KafkaTopicPartition]
        var reader: ReaderResumption?
    }

    /// What to do with revoked partitions, inside the rebalance callback: commit `commit`
    /// synchronously, then call `revocationCommitted(_:)`, then unassign.
    struct RevokeAction {
        var commit: [KafkaTopicPartitionOffset]
    }

    /// What a polled message did.
    struct PolledAction {
        var reader: ReaderResumption?
        /// The poll thread should stop taking messages.
        var bufferFull: Bool
    }

    /// The first step of the close.
    struct BeginCloseAction {
        var reader: ReaderResumption?
        /// Pause these partitions in librdkafka: nothing more is delivered.
        var pause: [KafkaTopicPartition]
    }

    enum DrainAction: Equatable {
        /// Messages are in flight: keep serving the group protocol and ask again.
        case keepWaiting
        /// Go on with the final commit.
        case stop
    }

    /// One assigned partition.
    struct AssignedPartition {
        /// Which assignment of the partition this is; receipts of older ones are ignored.
        var generation: UInt64
        var pausedByUser = false
        /// Where a user-paused partition must restart: its first message not delivered.
        var rewindPoint: Int64?
        /// Resumed by the user since the poll thread last looked.
        var resumeRequested = false
        /// Paused in librdkafka (the poll thread's view).
        var pausedInLibrdkafka = false
    }

    enum StreamState {
        case open
        /// Shutdown began: nothing more is delivered.
        case finished
        /// The consumer cannot continue; the reader gets the error.
        case failed(KafkaError)
    }

    let configuration: Configuration
    private(set) var events = EventQueue()
    private(set) var tracker = OffsetTracker()
    private(set) var partitions: [KafkaTopicPartition: AssignedPartition] = [:]
    private var nextGeneration: UInt64 = 1
    /// A reader is parked (its continuation is kept by the caller).
    private(set) var readerWaiting = false
    /// The poll thread stopped taking messages because the buffer is full; the reader wakes it
    /// once the buffer is half empty.
    private(set) var pollThreadWaitsForRoom = false
    private var asyncCommitRequested = false
    private var started = false
    private(set) var stopRequested = false
    private(set) var stream = StreamState.open
    /// The task running `run()` was cancelled: shutdown stops waiting for the broker.
    private(set) var closeAbandoned = false
    var closeReport: KafkaConsumer.CloseReport?

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    var failure: KafkaError? {
        if case .failed(let error) = stream { return error }
        return nil
    }

    var assignment: [KafkaTopicPartition] { partitions.keys.sorted() }

    var pausedPartitions: [KafkaTopicPartition] { partitions.filter(\.value.pausedByUser).keys.sorted() }

    var inFlightCount: Int { tracker.inFlightCount }

    func inFlightCount(in partition: KafkaTopicPartition) -> Int { tracker.inFlightCount(in: partition) }

    var bufferedMessageCount: Int { events.messageCount }

    // MARK: Reader

    /// The reader wants the next event.
    mutating func nextEvent(isCancelled: Bool) -> NextEventAction {
        if let event = popDeliverable() {
            return .resume(.event(event), wakePollThread: madeRoom())
        }
        switch stream {
        case .failed(let error): return .resume(.failure(error), wakePollThread: false)
        case .finished: return .resume(.endOfStream, wakePollThread: false)
        case .open: break
        }
        if isCancelled { return .resume(.failure(CancellationError()), wakePollThread: false) }
        if readerWaiting {
            let error = KafkaError(
                kind: .invalidArgument,
                message: "KafkaConsumer.events has one reader at a time; another task is already waiting"
            )
            return .resume(.failure(error), wakePollThread: false)
        }
        readerWaiting = true
        return .wait
    }

    /// The parked reader's task was cancelled; returns its resumption if it still waits.
    mutating func readerCancelled() -> ReaderResumption? {
        guard readerWaiting else { return nil }
        readerWaiting = false
        return .failure(CancellationError())
    }

    /// Events already buffered, up to `maxCount`, for a batch behind the first event.
    mutating func takeBufferedEvents(upTo maxCount: Int) -> (events: [KafkaConsumerEvent], wakePollThread: Bool) {
        var taken: [KafkaConsumerEvent] = []
        while taken.count < maxCount, let event = popDeliverable() { taken.append(event) }
        return (taken, madeRoom())
    }

    /// Whether the poll thread waits for room and the buffer is half empty; it stops waiting.
    private mutating func madeRoom() -> Bool {
        guard pollThreadWaitsForRoom, events.messageCount <= configuration.maxBufferedMessages / 2 else { return false }
        pollThreadWaitsForRoom = false
        return true
    }

    /// Hands the next event, the failure or the end to the parked reader, if any.
    private mutating func wakeReader() -> ReaderResumption? {
        guard readerWaiting else { return nil }
        let resumption: ReaderResumption
        if let event = popDeliverable() {
            resumption = .event(event)
        } else {
            switch stream {
            case .failed(let error): resumption = .failure(error)
            case .finished: resumption = .endOfStream
            case .open: return nil
            }
        }
        readerWaiting = false
        return resumption
    }

    /// The next event for the reader. A message starts being tracked (in flight) here, when it
    /// is handed over; one whose assignment ended or that was already finished is dropped.
    private mutating func popDeliverable() -> KafkaConsumerEvent? {
        while let event = events.popFirst() {
            guard case .message(let message) = event else { return event }
            let partition = message.topicPartition
            guard partitions[partition]?.generation == message.receipt.assignmentGeneration else { continue }
            if !tracker.track(message.offset, in: partition) {
                // An offset at or below one already delivered: librdkafka restarted the partition
                // there (a seek). Deliver again from there; only finished messages are skipped.
                tracker.rewind(partition, to: message.offset)
                guard tracker.track(message.offset, in: partition) else { continue }
            }
            return event
        }
        return nil
    }

    // MARK: Poll loop

    /// A message polled from librdkafka. It is dropped when its partition is not assigned or the
    /// stream ended; a user-paused partition remembers the first dropped offset to rewind there.
    mutating func messagePolled(_ message: KafkaMessage) -> PolledAction {
        let fullBefore = events.messageCount >= configuration.maxBufferedMessages
        let partition = message.topicPartition
        guard case .open = stream, let assigned = partitions[partition] else {
            return PolledAction(reader: nil, bufferFull: fullBefore)
        }
        if assigned.pausedByUser {
            partitions[partition]?.rewindPoint = min(assigned.rewindPoint ?? message.offset, message.offset)
            return PolledAction(reader: nil, bufferFull: fullBefore)
        }
        var message = message
        message.receipt.assignmentGeneration = assigned.generation
        events.append(.message(message))
        let reader = wakeReader()
        return PolledAction(reader: reader, bufferFull: events.messageCount >= configuration.maxBufferedMessages)
    }

    /// Whether the poll thread may take more messages; if not, the reader wakes it once it made
    /// room (`NextEventAction.resume(_, wakePollThread: true)`).
    mutating func pollThreadWantsMessages() -> Bool {
        let room = events.messageCount < configuration.maxBufferedMessages
        pollThreadWaitsForRoom = !room
        return room
    }

    /// The start of a poll-loop iteration. `commitDue`: the commit interval has passed.
    mutating func loopIteration(commitDue: Bool) -> LoopAction {
        if stopRequested { return .stop }
        var work = LoopWork()
        for partition in partitions.keys.sorted() {
            guard var state = partitions[partition] else { continue }
            if state.resumeRequested {
                state.resumeRequested = false
                if let offset = state.rewindPoint {
                    state.rewindPoint = nil
                    work.seeks.append(KafkaTopicPartitionOffset(partition, offset: offset))
                }
            }
            if state.pausedByUser && !state.pausedInLibrdkafka { work.pause.append(partition) }
            if !state.pausedByUser && state.pausedInLibrdkafka { work.resume.append(partition) }
            state.pausedInLibrdkafka = state.pausedByUser
            partitions[partition] = state
        }
        if asyncCommitRequested || commitDue {
            asyncCommitRequested = false
            work.commit = takeOffsetsToCommit()
        }
        return .work(work)
    }

    // MARK: Rebalances

    /// Partitions were assigned (rebalance callback).
    mutating func partitionsAssigned(_ assigned: [KafkaTopicPartition]) -> AssignAction {
        for partition in assigned {
            partitions[partition, default: AssignedPartition(generation: nextGeneration)].generation = nextGeneration
            nextGeneration += 1
        }
        var reader: ReaderResumption?
        if case .open = stream, !assigned.isEmpty {
            events.append(.partitionsAssigned(assigned))
            reader = wakeReader()
        }
        return AssignAction(resolveStartOffset: configuration.startOffset, route: assigned, reader: reader)
    }

    /// Partitions were revoked or lost (rebalance callback). Their tracking stops first (later
    /// completions are ignored) and their buffered messages are dropped; what was processed is
    /// committed unless the assignment was lost or the close was abandoned (it does not wait for
    /// a broker that may not answer).
    mutating func partitionsRevoked(_ revoked: [KafkaTopicPartition], lost: Bool) -> RevokeAction {
        let commitNow = configuration.commitOnRevoke && !lost && !closeAbandoned
        var offsets: [KafkaTopicPartitionOffset] = []
        for partition in revoked {
            if let offset = tracker.removePartition(partition), commitNow { offsets.append(offset) }
            partitions.removeValue(forKey: partition)
        }
        _ = events.removeMessages(of: Set(revoked))
        return RevokeAction(commit: offsets)
    }

    /// The revoke commit finished (or there was none): only now is the reader told, so the event
    /// means "committed and dropped".
    mutating func revocationCommitted(_ revoked: [KafkaTopicPartition]) -> ReaderResumption? {
        guard case .open = stream, !revoked.isEmpty else { return nil }
        events.append(.partitionsRevoked(revoked))
        return wakeReader()
    }

    // MARK: Offsets and commits

    /// A delivered message reached its final outcome. False when its assignment ended or it was
    /// already marked.
    mutating func markProcessed(_ receipt: KafkaMessageReceipt) -> Bool {
        guard partitions[receipt.topicPartition]?.generation == receipt.assignmentGeneration else { return false }
        return tracker.markFinished(receipt.offset, in: receipt.topicPartition)
    }

    /// Processed, not yet committed offsets of assigned partitions.
    func uncommittedOffsets() -> [KafkaTopicPartitionOffset] {
        tracker.uncommittedOffsets().filter { partitions[$0.topicPartition] != nil }
    }

    /// Offsets to commit now; they count as committed until `commitFailed(_:)` puts them back.
    mutating func takeOffsetsToCommit() -> [KafkaTopicPartitionOffset] {
        let offsets = uncommittedOffsets()
        tracker.markCommitted(offsets)
        return offsets
    }

    /// Offsets committed elsewhere (a transaction).
    mutating func markCommitted(_ offsets: [KafkaTopicPartitionOffset]) {
        tracker.markCommitted(offsets)
    }

    /// A commit of these partitions failed (or was not sent): offer them again next time.
    mutating func commitFailed(_ failed: [KafkaTopicPartition]) {
        tracker.markCommitFailed(failed)
    }

    mutating func requestAsyncCommit() { asyncCommitRequested = true }

    // MARK: Pause and resume

    /// Stops delivering `paused` (assigned ones): their buffered messages are taken back and
    /// the partition rewinds to the first of them on resume.
    mutating func pause(_ paused: [KafkaTopicPartition]) {
        let assigned = Set(paused.filter { partitions[$0] != nil })
        for partition in assigned {
            partitions[partition]?.pausedByUser = true
            partitions[partition]?.resumeRequested = false
        }
        for (partition, lowest) in events.removeMessages(of: assigned) {
            let previous = partitions[partition]?.rewindPoint ?? lowest
            partitions[partition]?.rewindPoint = min(previous, lowest)
        }
    }

    mutating func resume(_ resumed: [KafkaTopicPartition]) {
        for partition in resumed where partitions[partition]?.pausedByUser == true {
            partitions[partition]?.pausedByUser = false
            partitions[partition]?.resumeRequested = true
        }
    }

    // MARK: Lifecycle

    /// Whether this is the first `run()`.
    mutating func start() -> Bool {
        defer { started = true }
        return !started
    }

    mutating func requestStop() { stopRequested = true }

    /// Shutdown stops waiting for the broker (drain, final commit, leaving the group).
    mutating func abandonClose() {
        closeAbandoned = true
        stopRequested = true
    }

    /// The consumer cannot continue: the reader gets `error` (after the rebalance events still
    /// buffered) and the poll thread stops. The first failure wins.
    mutating func fail(_ error: KafkaError) -> ReaderResumption? {
        if failure == nil { stream = .failed(error) }
        stopRequested = true
        _ = events.removeAllMessages()
        return wakeReader()
    }

    /// The close begins: the stream ends (buffered messages are dropped) and every assigned
    /// partition is paused.
    mutating func beginClose() -> BeginCloseAction {
        if case .open = stream { stream = .finished }
        _ = events.removeAllMessages()
        return BeginCloseAction(reader: wakeReader(), pause: assignment)
    }

    /// Whether the close keeps waiting for delivered messages to be marked processed.
    func drainStep(deadlinePassed: Bool) -> DrainAction {
        guard failure == nil, inFlightCount > 0, !deadlinePassed, !closeAbandoned else { return .stop }
        return .keepWaiting
    }

    /// Offsets for the commit at close: every assigned partition's committable offset, also one
    /// already sent in an asynchronous commit, which may still fail after this one. None when
    /// `commitOnRevoke` is off or the consumer failed.
    mutating func takeFinalOffsets() -> [KafkaTopicPartitionOffset] {
        guard configuration.commitOnRevoke, failure == nil else { return [] }
        let offsets = tracker.committableOffsets().filter { partitions[$0.topicPartition] != nil }
        tracker.markCommitted(offsets)
        return offsets
    }
}
