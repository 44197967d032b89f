import FisoConcurrency
import Testing

@Suite struct AsyncSignalTests {
    @Test func aWaiterGetsTheValueFiredBeforeOrAfterItCame() async throws {
        let early = AsyncSignal<Int>()
        early.fire(7)
        #expect(try await early.wait() == 7)

        let late = AsyncSignal<Int>()
        async let value = late.wait()
        try await Task.sleep(for: .milliseconds(20))
        late.fire(9)
        #expect(try await value == 9)
    }

    @Test func theFirstFireWinsAndEveryWaiterGetsIt() async throws {
        let signal = AsyncSignal<String>()
        let values = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<50 { group.addTask { try? await signal.wait() } }
            try? await Task.sleep(for: .milliseconds(20))
            #expect(signal.fire("first"))
            #expect(!signal.fire("second"))
            var values: [String?] = []
            for await value in group { values.append(value) }
            return values
        }
        #expect(values.count == 50)
        #expect(values.allSatisfy { $0 == "first" })
        #expect(signal.value == "first")
    }

    @Test func aCancelledWaitEndsAtOnceAndLeavesTheSignalToOthers() async throws {
        let signal = AsyncSignal<Void>()
        let cancelled = Task { try await signal.wait() }
        let patient = Task { try await signal.wait() }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(!signal.isFired)
        signal.fire()
        try await patient.value
    }

    @Test func aTaskCancelledBeforeItWaitsDoesNotWait() async {
        let signal = AsyncSignal<Int>()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await signal.wait()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func waitingIgnoringCancellationOutlivesTheCancellation() async throws {
        let signal = AsyncSignal<Int>()
        let task = Task { await signal.waitIgnoringCancellation() }
        try await Task.sleep(for: .milliseconds(20))
        task.cancel()
        try await Task.sleep(for: .milliseconds(20))
        signal.fire(3)
        #expect(await task.value == 3)
    }
}

@Suite struct CancellingTests {
    @Test func theBodyIsCancelledWhenTheSignalFires() async {
        let signal = AsyncSignal<Void>()
        let sawCancellation = AsyncSignal<Bool>()
        Task {
            try? await Task.sleep(for: .milliseconds(20))
            signal.fire()
        }
        await signal.cancelling {
            let slept: Void? = try? await Task.sleep(for: .seconds(60))
            sawCancellation.fire(slept == nil && Task.isCancelled)
        }
        #expect(sawCancellation.value == true)
    }

    @Test func aBodyThatReturnsFirstEndsTheWaitWithoutTheSignal() async {
        let signal = AsyncSignal<Void>()
        let ran = AsyncSignal<Void>()
        await signal.cancelling { ran.fire() }
        #expect(ran.isFired)
        #expect(!signal.isFired)
    }
}
