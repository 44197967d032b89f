import Testing

@testable import FisoKafka

/// The consumer's rules, without a broker: each test feeds `ConsumerStateMachine` inputs and
/// checks the actions it returns.
@Suite("Consumer state machine")
struct ConsumerStateMachineTests {
    typealias Machine = ConsumerStateMachine

    let p0 = KafkaTopicPartition(topic: "orders", partition: 0)
    let p1 = KafkaTopicPartition(topic: "orders", partition: 1)
    let p2 = KafkaTopicPartition(topic: "orders", partition: 2)

    func machine(
        maxBufferedMessages: Int = 100,
        commitOnRevoke: Bool = true,
        startOffset: Int64? = nil
    ) -> Machine {
        Machine(
            configuration: Machine.Configuration(
                maxBufferedMessages: maxBufferedMessages,
                commitOnRevoke: commitOnRevoke,
                startOffset: startOffset
            )
        )
    }

    func message(_ partition: KafkaTopicPartition, _ offset: Int64) -> KafkaMessage {
        KafkaMessage(
            topic: partition.topic,
            partition: partition.partition,
            offset: offset,
            key: nil,
            value: nil,
            headers: [],
            timestamp: nil
        )
    }

    func offset(_ partition: KafkaTopicPartition, _ offset: Int64) -> KafkaTopicPartitionOffset {
        KafkaTopicPartitionOffset(partition, offset: offset)
    }

    // MARK: Assignments

    @Test("each assignment gets a new generation; receipts of an earlier one no longer count")
    func assignmentGenerations() {
        var machine = machine()
        let assign = machine.partitionsAssigned([p0, p1])
        #expect(assign.route == [p0, p1])
        #expect(assign.resolveStartOffset == nil)
        #expect(describe(assign.reader) == nil, "no reader is waiting")
        #expect(machine.assignment == [p0, p1])
        #expect(machine.partitions[p0]?.generation == 1)
        #expect(machine.partitions[p1]?.generation == 2)

        _ = machine.messagePolled(message(p0, 5))
        _ = machine.messagePolled(message(p2, 9))
        #expect(machine.bufferedMessageCount == 1, "a message of a partition not assigned is dropped")
        #expect(machine.read() == "assigned orders[0],orders[1]")
        let first = machine.nextMessage()
        #expect(first?.receipt.assignmentGeneration == 1)

        let revoke = machine.partitionsRevoked([p0], lost: false)
        #expect(revoke.commit.isEmpty, "nothing was processed")
        #expect(describe(machine.revocationCommitted([p0])) == nil)
        #expect(machine.read() == "revoked orders[0]")
        #expect(machine.assignment == [p1])
        #expect(first.map { machine.markProcessed($0.receipt) } == false, "its partition was revoked")

        _ = machine.partitionsAssigned([p0])
        #expect(machine.partitions[p0]?.generation == 3)
        _ = machine.messagePolled(message(p0, 5))
        #expect(machine.read() == "assigned orders[0]")
        let again = machine.nextMessage()
        #expect(again?.receipt.assignmentGeneration == 3)
        #expect(first.map { machine.markProcessed($0.receipt) } == false, "a receipt of the earlier assignment")
        #expect(again.map { machine.markProcessed($0.receipt) } == true)
        #expect(again.map { machine.markProcessed($0.receipt) } == false, "already marked")
    }

    @Test("a numeric start offset is resolved on every assignment")
    func numericStartOffset() {
        var machine = machine(startOffset: 42)
        #expect(machine.partitionsAssigned([p0]).resolveStartOffset == 42)
    }

    @Test("a message buffered before a revoke is not delivered after it")
    func revokeDropsBufferedMessages() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0, p1])
        #expect(machine.read() == "assigned orders[0],orders[1]")
        _ = machine.messagePolled(message(p0, 1))
        _ = machine.messagePolled(message(p1, 1))
        _ = machine.partitionsRevoked([p0], lost: false)
        #expect(machine.bufferedMessageCount == 1)
        #expect(machine.read() == "orders[1]@1#2")
        #expect(machine.read() == "wait")
        #expect(describe(machine.revocationCommitted([p0])) == "revoked orders[0]")
    }

    // MARK: The reader

    @Test("a parked reader is resumed by the next event; a second reader and a cancelled one fail")
    func parkedReader() {
        var machine = machine()
        #expect(machine.read() == "wait")
        #expect(machine.readerWaiting)
        #expect(machine.read() == "kafka error invalidArgument", "one reader at a time")

        let assign = machine.partitionsAssigned([p0])
        #expect(describe(assign.reader) == "assigned orders[0]")
        #expect(!machine.readerWaiting)

        #expect(machine.read() == "wait")
        let polled = machine.messagePolled(message(p0, 3))
        #expect(describe(polled.reader) == "orders[0]@3#1")
        #expect(!polled.bufferFull)
        #expect(machine.inFlightCount == 1, "a message is tracked when it is handed over")

        #expect(machine.read() == "wait")
        #expect(describe(machine.readerCancelled()) == "cancelled")
        #expect(describe(machine.readerCancelled()) == nil, "resumed only once")
        #expect(machine.read(isCancelled: true) == "cancelled")
    }

    @Test("a failure reaches the reader after the rebalance events still buffered; the first failure wins")
    func failure() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        _ = machine.messagePolled(message(p0, 0))
        #expect(describe(machine.fail(KafkaError(kind: .consumer, message: "first"))) == nil)
        #expect(machine.bufferedMessageCount == 0, "buffered messages are dropped")
        #expect(machine.read() == "assigned orders[0]")
        #expect(machine.read() == "kafka error consumer")
        _ = machine.fail(KafkaError(kind: .closed, message: "second"))
        #expect(machine.failure?.message == "first")
        #expect(machine.read() == "kafka error consumer")
        #expect(machine.loopIteration(commitDue: false).work == nil, "the poll thread stops")
        #expect(describe(machine.messagePolled(message(p0, 1)).reader) == nil)
        #expect(machine.bufferedMessageCount == 0)
    }

    @Test("a reader parked when the consumer fails gets the error")
    func failureWakesReader() {
        var machine = machine()
        #expect(machine.read() == "wait")
        #expect(describe(machine.fail(KafkaError(kind: .consumer, message: "fatal"))) == "kafka error consumer")
    }

    // MARK: Buffering and backpressure

    @Test("buffered events are handed out in batches; a full buffer stops the poll thread until half is read")
    func bufferAndBackpressure() {
        var machine = machine(maxBufferedMessages: 4)
        _ = machine.partitionsAssigned([p0])
        let full = (0..<4).map { machine.messagePolled(message(p0, Int64($0))).bufferFull }
        #expect(full == [false, false, false, true])
        #expect(machine.pollThreadWantsMessages() == false)
        #expect(machine.pollThreadWaitsForRoom)

        #expect(machine.nextEvent(isCancelled: false).summary == "assigned orders[0] wake=false")
        #expect(machine.nextEvent(isCancelled: false).summary == "orders[0]@0#1 wake=false", "3 left, more than half")
        let batch = machine.takeBufferedEvents(upTo: 1)
        #expect(batch.events.map(describe) == ["orders[0]@1#1"])
        #expect(batch.wakePollThread, "2 of 4 left: the poll thread may go on")
        #expect(!machine.pollThreadWaitsForRoom)
        let rest = machine.takeBufferedEvents(upTo: 10)
        #expect(rest.events.map(describe) == ["orders[0]@2#1", "orders[0]@3#1"])
        #expect(!rest.wakePollThread, "it was woken already")
        #expect(machine.pollThreadWantsMessages() == true)
        #expect(machine.inFlightCount(in: p0) == 4)
    }

    // MARK: Offsets and commits

    @Test("offsets are committable up to the first unfinished message, whatever the completion order")
    func outOfOrderCompletion() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        for offset in 10..<15 { _ = machine.messagePolled(message(p0, Int64(offset))) }
        let events = machine.takeBufferedEvents(upTo: 10).events
        #expect(events.count == 6)
        let receipts = machine.receipts(events)
        for index in [2, 4, 1] { #expect(machine.markProcessed(receipts[index]) == true) }
        #expect(machine.uncommittedOffsets().isEmpty, "offset 10 is unfinished")
        #expect(machine.inFlightCount(in: p0) == 5)
        #expect(machine.markProcessed(receipts[0]) == true)
        #expect(machine.uncommittedOffsets() == [offset(p0, 13)])
        #expect(machine.inFlightCount(in: p0) == 2, "13 is unfinished and 14 waits behind it")
        #expect(machine.takeOffsetsToCommit() == [offset(p0, 13)])
        #expect(machine.uncommittedOffsets().isEmpty, "sent, counted as committed")
        #expect(machine.markProcessed(receipts[3]) == true)
        #expect(machine.uncommittedOffsets() == [offset(p0, 15)])
    }

    @Test("background commits happen when due or requested; a failed commit is offered again")
    func loopCommits() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        _ = machine.messagePolled(message(p0, 0))
        let receipts = machine.receipts(machine.takeBufferedEvents(upTo: 10).events)

        #expect(machine.loopIteration(commitDue: false).work?.commit == nil)
        #expect(machine.loopIteration(commitDue: true).work?.commit == [], "a round with nothing to send")
        #expect(machine.markProcessed(receipts[0]) == true)
        machine.requestAsyncCommit()
        #expect(machine.loopIteration(commitDue: false).work?.commit == [offset(p0, 1)])
        #expect(machine.loopIteration(commitDue: false).work?.commit == nil, "the request was served")
        #expect(machine.loopIteration(commitDue: true).work?.commit == [], "already sent")
        machine.commitFailed([p0])
        #expect(machine.loopIteration(commitDue: true).work?.commit == [offset(p0, 1)])

        machine.commitFailed([p0])
        #expect(machine.uncommittedOffsets() == [offset(p0, 1)])
        machine.markCommitted([offset(p0, 1)])
        #expect(machine.uncommittedOffsets().isEmpty, "committed through a transaction")
    }

    @Test("on revoke, what was processed is committed before the reader is told")
    func commitOnRevoke() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0, p1])
        _ = machine.messagePolled(message(p0, 0))
        _ = machine.messagePolled(message(p0, 1))
        _ = machine.messagePolled(message(p1, 5))
        let receipts = machine.receipts(machine.takeBufferedEvents(upTo: 10).events)
        for receipt in receipts { #expect(machine.markProcessed(receipt) == true) }
        _ = machine.messagePolled(message(p0, 2))
        #expect(machine.read() == "orders[0]@2#1")

        let revoke = machine.partitionsRevoked([p0, p1], lost: false)
        #expect(revoke.commit == [offset(p0, 2), offset(p1, 6)])
        #expect(machine.inFlightCount == 0, "revoked partitions are no longer tracked")
        #expect(machine.read() == "wait", "not told before the commit")
        #expect(describe(machine.revocationCommitted([p0, p1])) == "revoked orders[0],orders[1]")
    }

    @Test("nothing is committed on revoke when the assignment was lost, commits are off, or the close was abandoned")
    func noCommitOnRevoke() {
        func processedMachine(commitOnRevoke: Bool = true) -> Machine {
            var machine = self.machine(commitOnRevoke: commitOnRevoke)
            _ = machine.partitionsAssigned([p0])
            _ = machine.messagePolled(message(p0, 0))
            for receipt in machine.receipts(machine.takeBufferedEvents(upTo: 10).events) {
                _ = machine.markProcessed(receipt)
            }
            return machine
        }
        var lost = processedMachine()
        #expect(lost.partitionsRevoked([p0], lost: true).commit.isEmpty)
        var off = processedMachine(commitOnRevoke: false)
        #expect(off.partitionsRevoked([p0], lost: false).commit.isEmpty)
        var abandoned = processedMachine()
        abandoned.abandonClose()
        #expect(abandoned.partitionsRevoked([p0], lost: false).commit.isEmpty)
        var committing = processedMachine()
        #expect(committing.partitionsRevoked([p0], lost: false).commit == [offset(p0, 1)])
    }

    // MARK: Pause, resume and rewinds

    @Test("pausing takes back undelivered messages; resuming seeks to the first of them")
    func pauseAndRewind() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0, p1])
        for offset in 5...7 { _ = machine.messagePolled(message(p0, Int64(offset))) }
        _ = machine.messagePolled(message(p1, 1))
        #expect(machine.read() == "assigned orders[0],orders[1]")
        #expect(machine.read() == "orders[0]@5#1")

        machine.pause([p0, p2])
        #expect(machine.pausedPartitions == [p0], "a partition not assigned is ignored")
        #expect(machine.bufferedMessageCount == 1, "orders[0]@6 and @7 were taken back")
        #expect(machine.partitions[p0]?.rewindPoint == 6)
        _ = machine.messagePolled(message(p0, 8))
        #expect(machine.bufferedMessageCount == 1, "fetched while paused: dropped")
        #expect(machine.partitions[p0]?.rewindPoint == 6, "the rewind point is the lowest dropped offset")

        let paused = machine.loopIteration(commitDue: false).work
        #expect(paused?.pause == [p0])
        #expect(paused?.seeks == [])
        #expect(machine.loopIteration(commitDue: false).work?.pause == [], "already paused in librdkafka")

        machine.resume([p0, p1])
        #expect(machine.pausedPartitions == [])
        let resumed = machine.loopIteration(commitDue: false).work
        #expect(resumed?.seeks == [offset(p0, 6)])
        #expect(resumed?.resume == [p0], "only the partition paused in librdkafka")
        #expect(machine.loopIteration(commitDue: false).work?.seeks == [], "one seek per resume")

        #expect(machine.read() == "orders[1]@1#2")
        _ = machine.messagePolled(message(p0, 6))
        #expect(machine.read() == "orders[0]@6#1", "nothing was skipped")
        #expect(machine.inFlightCount(in: p0) == 2)
    }

    @Test("a pause undone before the poll thread looked changes nothing in librdkafka")
    func pauseThenResumeBeforeLoop() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        machine.pause([p0])
        machine.resume([p0])
        let work = machine.loopIteration(commitDue: false).work
        #expect(work?.pause == [])
        #expect(work?.resume == [])
        #expect(work?.seeks == [], "nothing was taken back")
    }

    @Test("a redelivered offset after a seek rewinds the tracking; finished messages are not delivered again")
    func redeliveryAfterRetryPause() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        for offset in 0...2 { _ = machine.messagePolled(message(p0, Int64(offset))) }
        let receipts = machine.receipts(machine.takeBufferedEvents(upTo: 10).events)
        #expect(machine.markProcessed(receipts[0]) == true)
        #expect(machine.inFlightCount(in: p0) == 2)

        // librdkafka restarted the partition at 0 (a seek after a retry pause).
        for offset in 0...2 { _ = machine.messagePolled(message(p0, Int64(offset))) }
        let again = machine.takeBufferedEvents(upTo: 10).events
        #expect(again.map(describe) == ["orders[0]@1#1", "orders[0]@2#1"])
        #expect(machine.inFlightCount(in: p0) == 2)
        for receipt in machine.receipts(again) { #expect(machine.markProcessed(receipt) == true) }
        #expect(machine.uncommittedOffsets() == [offset(p0, 3)])
    }

    @Test("a revoke ends a pause")
    func revokeEndsPause() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0])
        machine.pause([p0])
        _ = machine.partitionsRevoked([p0], lost: false)
        #expect(machine.pausedPartitions == [])
        _ = machine.partitionsAssigned([p0])
        #expect(machine.partitions[p0]?.pausedByUser == false)
        #expect(machine.partitions[p0]?.rewindPoint == nil)
    }

    // MARK: Lifecycle and close

    @Test("run starts once; a stop request ends the poll loop")
    func startAndStop() {
        var machine = machine()
        #expect(machine.start() == true)
        #expect(machine.start() == false, "only once")
        #expect(machine.loopIteration(commitDue: false).work != nil)
        machine.requestStop()
        #expect(machine.loopIteration(commitDue: false).work == nil)
    }

    @Test("the close ends the stream, pauses the assignment, drains, and commits every committable offset")
    func close() {
        var machine = machine()
        _ = machine.partitionsAssigned([p0, p1])
        _ = machine.messagePolled(message(p0, 0))
        _ = machine.messagePolled(message(p0, 1))
        let receipts = machine.receipts(machine.takeBufferedEvents(upTo: 10).events)
        #expect(machine.read() == "wait")

        let begin = machine.beginClose()
        #expect(describe(begin.reader) == "end")
        #expect(begin.pause == [p0, p1])
        #expect(describe(machine.messagePolled(message(p0, 2)).reader) == nil)
        #expect(machine.read() == "end")

        #expect(machine.drainStep(deadlinePassed: false) == .keepWaiting)
        #expect(machine.markProcessed(receipts[0]) == true)
        #expect(machine.takeOffsetsToCommit() == [offset(p0, 1)], "an asynchronous commit, result unknown")
        #expect(machine.drainStep(deadlinePassed: false) == .keepWaiting)
        #expect(machine.drainStep(deadlinePassed: true) == .stop)
        #expect(machine.markProcessed(receipts[1]) == true)
        #expect(machine.drainStep(deadlinePassed: false) == .stop)
        #expect(machine.takeFinalOffsets() == [offset(p0, 2)])

        _ = machine.markProcessed(receipts[0])
        machine.commitFailed([p0])
        #expect(machine.takeFinalOffsets() == [offset(p0, 2)], "also what an earlier commit already sent")
    }

    @Test("the final commit is skipped when commits are off or the consumer failed; an abandoned close stops draining")
    func closeWithoutCommit() {
        func drained(commitOnRevoke: Bool = true) -> Machine {
            var machine = self.machine(commitOnRevoke: commitOnRevoke)
            _ = machine.partitionsAssigned([p0])
            _ = machine.messagePolled(message(p0, 0))
            _ = machine.messagePolled(message(p0, 1))
            let receipts = machine.receipts(machine.takeBufferedEvents(upTo: 10).events)
            _ = machine.markProcessed(receipts[0])
            _ = machine.beginClose()
            return machine
        }
        var off = drained(commitOnRevoke: false)
        #expect(off.takeFinalOffsets() == [])
        var failed = drained()
        _ = failed.fail(KafkaError(kind: .consumer, message: "fatal"))
        #expect(failed.drainStep(deadlinePassed: false) == .stop)
        #expect(failed.takeFinalOffsets() == [])
        var abandoned = drained()
        #expect(abandoned.drainStep(deadlinePassed: false) == .keepWaiting, "offset 1 is in flight")
        abandoned.abandonClose()
        #expect(abandoned.drainStep(deadlinePassed: false) == .stop)
        #expect(abandoned.takeFinalOffsets() == [offset(p0, 1)], "sent, though not awaited")
    }
}

// MARK: - Helpers

/// Events are not `Equatable`; tests compare short descriptions.
private func describe(_ event: KafkaConsumerEvent) -> String {
    switch event {
    case .message(let message):
        "\(message.topicPartition)@\(message.offset)#\(message.receipt.assignmentGeneration)"
    case .partitionsAssigned(let partitions):
        "assigned \(partitions.map(\.description).joined(separator: ","))"
    case .partitionsRevoked(let partitions):
        "revoked \(partitions.map(\.description).joined(separator: ","))"
    }
}

private func describe(_ resumption: ConsumerStateMachine.ReaderResumption?) -> String? {
    switch resumption {
    case nil: nil
    case .event(let event): describe(event)
    case .endOfStream: "end"
    case .failure(let error as KafkaError): "kafka error \(error.kind)"
    case .failure(let error): error is CancellationError ? "cancelled" : "\(error)"
    }
}

extension ConsumerStateMachine.NextEventAction {
    fileprivate var summary: String {
        switch self {
        case .wait: "wait"
        case .resume(let resumption, let wake): "\(describe(resumption) ?? "") wake=\(wake)"
        }
    }
}

extension ConsumerStateMachine.LoopAction {
    fileprivate var work: ConsumerStateMachine.LoopWork? {
        if case .work(let work) = self { return work }
        return nil
    }
}

extension ConsumerStateMachine {
    /// The reader asks for the next event: its description, or "wait" when it is parked.
    fileprivate mutating func read(isCancelled: Bool = false) -> String {
        switch nextEvent(isCancelled: isCancelled) {
        case .wait: "wait"
        case .resume(let resumption, _): describe(resumption) ?? ""
        }
    }

    /// The next event, which must be a message.
    fileprivate mutating func nextMessage() -> KafkaMessage? {
        guard case .resume(.event(.message(let message)), _) = nextEvent(isCancelled: false) else { return nil }
        return message
    }

    /// The receipts of the messages among `events`.
    fileprivate func receipts(_ events: [KafkaConsumerEvent]) -> [KafkaMessageReceipt] {
        events.compactMap { event in
            if case .message(let message) = event { return message.receipt }
            return nil
        }
    }
}
