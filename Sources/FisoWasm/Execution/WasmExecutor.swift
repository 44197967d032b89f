import DequeModule
import FisoConcurrency
import Foundation
import HeapModule
import NIOConcurrencyHelpers
import Synchronization

/// A bounded pool of threads that run modules, off the network event loops and off Swift's
/// cooperative thread pool (a module blocks its thread for as long as it runs).
///
/// Callers suspend (`await`) while a pool thread runs their module. A call whose module is still
/// running at its timeout is answered at the timeout, and the pool starts a replacement thread
/// at once; the module itself is stopped by its engine later (WasmKit: when its fuel runs out),
/// and then its thread leaves the pool. So a runaway module never shrinks the pool for others;
/// its own calls stay limited by its concurrency slots, which it holds until it really stops.
public final class WasmExecutor: Sendable {
    /// Default size of a pool: twice the processor count, at least 4, so that a few runaway
    /// modules (each held to its own concurrency limit) cannot occupy every thread.
    public static let defaultThreadCount = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)

    /// A process-wide pool of ``defaultThreadCount`` threads, started on first use.
    public static let shared = WasmExecutor()

    /// The number of threads the pool keeps ready (runaway calls past their timeout aside).
    public let threadCount: Int
    private let name: String
    private let queue: JobQueue
    private let timer: DeadlineTimer

    /// Starts a pool of `threadCount` threads named `name`.
    public init(threadCount: Int = WasmExecutor.defaultThreadCount, name: String = "fiso-wasm") {
        self.threadCount = max(1, threadCount)
        self.name = name
        self.queue = JobQueue(workers: self.threadCount)
        self.timer = DeadlineTimer(name: "\(name)-deadlines")
        for _ in 0..<self.threadCount {
            Self.startWorker(queue: queue, name: name)
        }
    }

    private static func startWorker(queue: JobQueue, name: String) {
        DedicatedThread.start(name: name, stackSize: 8 << 20) {
            while let job = queue.next() {
                let retire = job()
                if queue.finished(retiring: retire) { return }
            }
        }
    }

    deinit {
        queue.stop()
        timer.stop()
    }

    /// Threads running a module right now, including modules past their timeout that their
    /// engine has not stopped yet.
    public var busyThreads: Int { queue.counts.busy }

    /// Jobs waiting for a thread.
    public var queuedJobs: Int { queue.counts.queued }

    /// Threads in the pool: ``threadCount``, plus one for each module still running past its
    /// timeout.
    public var liveThreads: Int { queue.counts.workers }

    /// Lets the threads finish the queued jobs, then stops them. Later submissions never run.
    public func shutdown() {
        queue.stop()
        timer.stop()
    }

    /// Thrown for work submitted after ``shutdown()``.
    public struct ShutDown: Error, CustomStringConvertible {
        public var description: String { "the WASM executor has been shut down" }
    }

    /// Runs `work` on a pool thread and returns its result: for blocking work such as compiling
    /// a module or reloading it, which must not run on an event loop.
    ///
    /// - Throws: ``ShutDown`` after ``shutdown()``, or what `work` throws.
    public func run<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = queue.push {
                continuation.resume(with: Swift.Result { try work() })
                return false
            }
            if !accepted { continuation.resume(throwing: ShutDown()) }
        }
    }

    /// How a timed run ended, for the caller.
    enum Outcome<Value: Sendable>: Sendable {
        /// The work finished before its timeout.
        case finished(Value, queued: Duration, running: Duration)
        /// The timeout passed first; the work goes on until its engine stops it.
        case timedOut(queued: Duration, running: Duration)
        /// The caller was cancelled first. Work that had not started yet never runs; work already
        /// running goes on, and `whenDone` still runs when it ends.
        case cancelled(queued: Duration)
    }

    /// Runs `work` on a pool thread, answering at `timeout` after it started if it is still
    /// running then. `whenDone` runs on the pool thread once `work` has really returned (or was
    /// skipped because the caller was cancelled before it started).
    func run<Value: Sendable>(
        timeout: Duration,
        work: @escaping @Sendable () -> Value,
        whenDone: @escaping @Sendable () -> Void
    ) async -> Outcome<Value> {
        let clock = ContinuousClock()
        let submitted = clock.now
        // Whichever comes first answers: the work, the timer, the caller's cancellation, or a
        // shut-down queue. The job reads it to skip work whose caller has gone.
        let answer = AsyncSignal<Outcome<Value>>()
        let timer = self.timer
        let queue = self.queue
        let name = self.name
        return await withTaskCancellationHandler {
            let accepted = queue.push {
                let started = clock.now
                guard !answer.isFired else {
                    whenDone()
                    return false
                }
                // Decided under one lock, so that exactly one of "the work finished" and "the
                // timer fired first" wins: the timer's side gives the pool a replacement thread
                // and retires this one once its runaway work has stopped.
                let race = NIOLockedValueBox((finished: false, retire: false))
                let timerID = timer.schedule(at: started + timeout) {
                    answer.fire(.timedOut(queued: started - submitted, running: clock.now - started))
                    let replace = race.withLockedValue { state -> Bool in
                        guard !state.finished else { return false }
                        state.retire = true
                        return true
                    }
                    if replace, queue.addWorker() { Self.startWorker(queue: queue, name: name) }
                }
                let value = work()
                let finished = clock.now
                timer.cancel(timerID)
                let retire = race.withLockedValue { state -> Bool in
                    state.finished = true
                    return state.retire
                }
                whenDone()
                answer.fire(.finished(value, queued: started - submitted, running: finished - started))
                return retire
            }
            if !accepted {
                whenDone()
                answer.fire(.cancelled(queued: .zero))
            }
            // Cancellation reaches this wait through the signal (`onCancel` fires it), which is
            // also what tells a job that has not started to skip its work.
            return await answer.waitIgnoringCancellation()
        } onCancel: {
            answer.fire(.cancelled(queued: clock.now - submitted))
        }
    }
}

/// The pool's work queue. Every mutable field is guarded by `condition`, which is why the class
/// can be shared between threads.
private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    /// A job returns whether its thread should leave the pool afterwards.
    typealias Job = @Sendable () -> Bool

    private var jobs = Deque<Job>()
    private var busy = 0
    private var stopping = false
    /// Threads that take jobs from this queue, and how many it should have.
    private var workers: Int
    private let targetWorkers: Int
    /// Jobs queued, readable without the lock (for the spinning worker).
    private let queuedCount = Atomic(0)
    /// Whether a worker is spinning for the next job (at most one does).
    private let spinning = Atomic(false)
    /// How long an idle worker polls for the next job before it sleeps: under a stream of calls the
    /// next one usually comes within microseconds, and waking a sleeping thread costs more than a
    /// warm reactor call.
    private static let spinDuration = Duration.microseconds(50)

    init(workers: Int) {
        self.workers = workers
        self.targetWorkers = workers
    }

    var counts: (busy: Int, queued: Int, workers: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (busy, jobs.count, workers)
    }

    /// Counts one more worker, whose thread the caller starts; `false` when stopping.
    func addWorker() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        workers += 1
        return true
    }

    /// Queues `job`; `false` (and the job dropped) once the queue is stopped.
    func push(_ job: @escaping Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        queuedCount.add(1, ordering: .relaxed)
        condition.signal()
        return true
    }

    /// The next job, waiting for one; `nil` once the queue is stopped and empty.
    func next() -> Job? {
        if let job = spinForJob() { return job }
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty {
            if stopping {
                workers -= 1
                return nil
            }
            condition.wait()
        }
        return takeLocked()
    }

    /// Polls for a job for ``spinDuration`` if no other worker is polling; nil when none came.
    private func spinForJob() -> Job? {
        guard spinning.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return nil
        }
        defer { spinning.store(false, ordering: .releasing) }
        let clock = ContinuousClock()
        let deadline = clock.now + Self.spinDuration
        while clock.now < deadline {
            guard queuedCount.load(ordering: .relaxed) > 0 else { continue }
            condition.lock()
            defer { condition.unlock() }
            if stopping { return nil }
            if !jobs.isEmpty { return takeLocked() }
        }
        return nil
    }

    /// Takes the first job; the caller holds the lock and checked there is one.
    private func takeLocked() -> Job {
        queuedCount.subtract(1, ordering: .relaxed)
        let job = jobs.removeFirst()
        busy += 1
        return job
    }

    /// Records a finished job; returns whether the thread leaves the pool (its job had run past
    /// its timeout, and a replacement took its place then).
    func finished(retiring: Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        busy -= 1
        if retiring, workers > targetWorkers {
            workers -= 1
            return true
        }
        return false
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }
}

/// One thread that runs actions at their deadlines. Every mutable field is guarded by
/// `condition`, which is why the class can be shared between threads.
///
/// Deadlines sit in a min-heap; a cancelled one stays there until it comes up and is dropped then
/// (nearly every deadline is cancelled, by a call that finished in time, so cancelling must be
/// cheap). Scheduling a deadline wakes the thread only when it would otherwise look too late;
/// while calls keep coming it wakes at least every 100 ms by itself, so a steady stream of calls
/// costs no wake-up per call.
final class DeadlineTimer: @unchecked Sendable {
    private struct Entry: Comparable {
        var deadline: ContinuousClock.Instant
        var id: UInt64

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.id) < (rhs.deadline, rhs.id)
        }
    }

    private static let idleTick: Duration = .milliseconds(100)
    private static let idleBeforeSleeping: Duration = .seconds(1)
    /// Cancelled entries allowed in the heap before it is rebuilt without them: with long
    /// timeouts and many short calls they would otherwise pile up until their deadlines.
    private static let cancelledEntriesBeforeCompaction = 1024

    private let condition = NSCondition()
    private let name: String
    private var entries = Heap<Entry>()
    /// The actions of the entries not cancelled yet.
    private var actions: [UInt64: @Sendable () -> Void] = [:]
    private var nextID: UInt64 = 0
    private var started = false
    private var stopping = false
    /// When the timer thread looks next; `nil` while it sleeps until signalled.
    private var wakeTime: ContinuousClock.Instant?

    init(name: String) {
        self.name = name
    }

    /// Runs `action` on the timer thread at `deadline`, unless cancelled first.
    func schedule(at deadline: ContinuousClock.Instant, action: @escaping @Sendable () -> Void) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        entries.insert(Entry(deadline: deadline, id: nextID))
        actions[nextID] = action
        if !started {
            started = true
            DedicatedThread.start(name: name) { [self] in loop() }
        } else if wakeTime.map({ deadline < $0 }) ?? true {
            condition.signal()
        }
        return nextID
    }

    func cancel(_ id: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        guard actions.removeValue(forKey: id) != nil else { return }
        if entries.count - actions.count > Self.cancelledEntriesBeforeCompaction {
            entries = Heap(entries.unordered.filter { actions[$0.id] != nil })
        }
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// The earliest entry not cancelled; drops the cancelled ones before it. Called with the lock
    /// held.
    private func firstLiveEntry() -> Entry? {
        while let first = entries.min {
            if actions[first.id] != nil { return first }
            entries.removeMin()
        }
        return nil
    }

    private func loop() {
        let clock = ContinuousClock()
        var lastBusy = clock.now
        condition.lock()
        while !stopping {
            let now = clock.now
            let first = firstLiveEntry()
            if let first, first.deadline <= now {
                entries.removeMin()
                let action = actions.removeValue(forKey: first.id)
                condition.unlock()
                action?()
                condition.lock()
                continue
            }
            let next: ContinuousClock.Instant?
            if let first {
                lastBusy = now
                next = first.deadline
            } else if now - lastBusy < Self.idleBeforeSleeping {
                next = now + Self.idleTick
            } else {
                next = nil
            }
            wakeTime = next
            if let next {
                let remaining = now.duration(to: next)
                let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) * 1e-18
                _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
            } else {
                condition.wait()
            }
            wakeTime = nil
        }
        condition.unlock()
    }
}
