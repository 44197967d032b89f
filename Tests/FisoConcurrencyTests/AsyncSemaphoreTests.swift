import FisoConcurrency
import NIOConcurrencyHelpers
import Testing

@Suite struct AsyncSemaphoreTests {
    @Test func permitsAreBoundedAndCounted() async throws {
        let semaphore = AsyncSemaphore(permits: 2)
        #expect(semaphore.tryAcquire())
        try await semaphore.acquire()
        #expect(!semaphore.tryAcquire())
        #expect(semaphore.counts == (2, 0))
        semaphore.release()
        #expect(semaphore.tryAcquire())
        semaphore.release()
        semaphore.release()
        #expect(semaphore.counts == (0, 0))
        #expect(semaphore.peakInUse == 2)
    }

    @Test func waitersGetPermitsInTheOrderTheyAsked() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = NIOLockedValueBox<[Int]>([])
        // Start them one at a time, each once the one before is queued, so the order they asked in
        // is known.
        var tasks: [Task<Void, any Error>] = []
        for number in 0..<5 {
            tasks.append(
                Task {
                    try await semaphore.acquire()
                    order.withLockedValue { $0.append(number) }
                    semaphore.release()
                })
            while semaphore.counts.waiting < number + 1 { try await Task.sleep(for: .milliseconds(1)) }
        }
        semaphore.release()
        for task in tasks { try await task.value }
        #expect(order.withLockedValue { $0 } == [0, 1, 2, 3, 4])
    }

    @Test func aCancelledWaiterLeavesTheQueueWithoutAPermit() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let cancelled = Task { try await semaphore.acquire() }
        let patient = Task { try await semaphore.acquire() }
        while semaphore.counts.waiting < 2 { try await Task.sleep(for: .milliseconds(1)) }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(semaphore.counts == (1, 1))
        semaphore.release()
        try await patient.value
        #expect(semaphore.counts == (1, 0))
        semaphore.release()
        #expect(semaphore.counts == (0, 0))
    }

    @Test func aTaskCancelledBeforeItAsksGetsNoPermitEvenWhenOneIsFree() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await semaphore.acquire()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(semaphore.counts == (1, 0))
    }

    @Test func manyTasksNeverExceedThePermits() async throws {
        let semaphore = AsyncSemaphore(permits: 3)
        let running = NIOLockedValueBox((now: 0, most: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await semaphore.withPermit {
                        running.withLockedValue {
                            $0.now += 1
                            $0.most = max($0.most, $0.now)
                        }
                        await Task.yield()
                        running.withLockedValue { $0.now -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(running.withLockedValue { $0.most } <= 3)
        #expect(semaphore.peakInUse <= 3)
        #expect(semaphore.counts == (0, 0))
    }
}
