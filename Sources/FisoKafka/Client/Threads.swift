import DequeModule
import Dispatch
import FisoConcurrency
import NIOConcurrencyHelpers

/// Raised when the task waiting for a blocking job was cancelled, so the job can stop between
/// slices of work (or not start at all).
final class CancellationFlag: Sendable {
    private let raised = NIOLockedValueBox(false)

    init() {}

    var isRaised: Bool { raised.withLockedValue { $0 } }

    func raise() { raised.withLockedValue { $0 = true } }
}

/// One dedicated thread that runs blocking librdkafka calls in submission order, so callers can
/// `await` them. Closing lets queued jobs finish, then ends the thread.
final class BlockingWorker: Sendable {
    private final class Queue: Sendable {
        struct State {
            var jobs = Deque<@Sendable () -> Void>()
            var closed = false
        }

        let state = NIOLockedValueBox(State())
        let available = DispatchSemaphore(value: 0)

        func loop() {
            while true {
                available.wait()
                let job = state.withLockedValue { $0.jobs.popFirst() }
                guard let job else { return }  // Woken with no job: closed.
                job()
            }
        }

        /// Queues `job`; false once closed.
        func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
            let accepted = state.withLockedValue { state -> Bool in
                guard !state.closed else { return false }
                state.jobs.append(job)
                return true
            }
            if accepted { available.signal() }
            return accepted
        }
    }

    private let queue = Queue()

    init(name: String) {
        let queue = self.queue
        DedicatedThread.start(name: name) { queue.loop() }
    }

    deinit { close() }

    /// Runs `body` on the worker thread and returns its result.
    ///
    /// Follows the cancellation rule: when the calling task is cancelled, the wait ends at once
    /// with a `.cancelled` error saying `cancelled` (what became of the call). A job that has not
    /// started yet is skipped; a running one sees its flag raised and may stop early. What a
    /// call finishes after its waiter left goes to `whenAbandoned` (its owner accounts for it).
    func run<Value: Sendable>(
        cancelled: @autoclosure @escaping @Sendable () -> String,
        whenAbandoned: (@Sendable (Result<Value, KafkaError>) -> Void)? = nil,
        _ body: @escaping @Sendable (CancellationFlag) -> Result<Value, KafkaError>
    ) async throws(KafkaError) -> Value {
        if Task.isCancelled { throw KafkaError(kind: .cancelled, message: cancelled()) }
        let flag = CancellationFlag()
        let outcome = AsyncSignal<Result<Value, KafkaError>>()
        let accepted = queue.submit {
            let result =
                flag.isRaised ? .failure(KafkaError(kind: .cancelled, message: cancelled())) : body(flag)
            if !outcome.fire(result) || flag.isRaised { whenAbandoned?(result) }
        }
        guard accepted else { throw KafkaError(kind: .closed, message: "the Kafka client is closed") }
        let result: Result<Value, KafkaError>
        do {
            result = try await outcome.wait()
        } catch {
            flag.raise()
            throw KafkaError(kind: .cancelled, message: cancelled())
        }
        return try result.get()
    }

    /// Runs `body` on the worker thread and returns its result, even if the calling task is
    /// cancelled meanwhile: for calls that must finish (bounded, short).
    func runIgnoringCancellation<Value: Sendable>(
        _ body: @escaping @Sendable () -> Result<Value, KafkaError>
    ) async throws(KafkaError) -> Value {
        let outcome = AsyncSignal<Result<Value, KafkaError>>()
        guard queue.submit({ outcome.fire(body()) }) else {
            throw KafkaError(kind: .closed, message: "the Kafka client is closed")
        }
        return try await outcome.waitIgnoringCancellation().get()
    }

    /// Lets queued jobs finish, then ends the thread. Later `run` calls fail with `.closed`.
    func close() {
        let first = queue.state.withLockedValue { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        // One extra signal wakes the thread with an empty queue, which ends it.
        if first { queue.available.signal() }
    }
}

/// Runs a blocking call on a thread of its own and waits for it without blocking the task (for
/// calls that must not queue behind a worker's jobs, such as the flush at shutdown). The wait
/// ignores cancellation: the call must be bounded, for example by `flag`.
func runOnOwnThread<Value: Sendable>(
    name: String,
    _ body: @escaping @Sendable () -> Value
) async -> Value {
    let outcome = AsyncSignal<Value>()
    DedicatedThread.start(name: name) { outcome.fire(body()) }
    return await outcome.waitIgnoringCancellation()
}
