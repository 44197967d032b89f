import Dispatch
import Foundation
import Synchronization

/// Starts a dedicated OS thread. librdkafka's blocking calls (poll, flush, commit, transactions)
/// run on such threads so they never occupy Swift concurrency's cooperative pool or an event loop.
func startDedicatedThread(name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.start()
}

/// A flag that is raised once; tasks can wait for it without blocking a thread.
final class OneShotSignal: Sendable {
    private struct State {
        var raised = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    init() {}

    var isRaised: Bool { state.withLock { $0.raised } }

    func raise() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.raised else { return [] }
            state.raised = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let raised = state.withLock { state -> Bool in
                if state.raised { return true }
                state.waiters.append(continuation)
                return false
            }
            if raised { continuation.resume() }
        }
    }
}

/// One dedicated thread that runs blocking librdkafka calls in submission order, so callers can
/// `await` them. Closing lets queued jobs finish, then ends the thread.
final class BlockingWorker: Sendable {
    private final class Queue: Sendable {
        struct State {
            var jobs: [@Sendable () -> Void] = []
            var closed = false
        }

        let state = Mutex(State())
        let available = DispatchSemaphore(value: 0)

        func loop() {
            while true {
                available.wait()
                let job = state.withLock { state -> (@Sendable () -> Void)? in
                    state.jobs.isEmpty ? nil : state.jobs.removeFirst()
                }
                guard let job else { return }  // Woken with no job: closed.
                job()
            }
        }
    }

    private let queue = Queue()

    init(name: String) {
        let queue = self.queue
        startDedicatedThread(name: name) { queue.loop() }
    }

    deinit { close() }

    /// Runs `body` on the worker thread and returns its result.
    func run<Value: Sendable>(
        _ body: @escaping @Sendable () -> Result<Value, KafkaError>
    ) async throws(KafkaError) -> Value {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Value, KafkaError>, Never>) in
            let accepted = queue.state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.jobs.append { continuation.resume(returning: body()) }
                return true
            }
            if accepted {
                queue.available.signal()
            } else {
                continuation.resume(
                    returning: .failure(KafkaError(kind: .closed, message: "the Kafka client is closed")))
            }
        }
        return try result.get()
    }

    /// Lets queued jobs finish, then ends the thread. Later `run` calls fail with `.closed`.
    func close() {
        let first = queue.state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        // One extra signal wakes the thread with an empty queue, which ends it.
        if first { queue.available.signal() }
    }
}
