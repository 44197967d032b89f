// The concurrency toolkit every Fiso module uses: one signal (``AsyncSignal``), one semaphore
// (``AsyncSemaphore``), dedicated threads for blocking work (``DedicatedThread``); shared mutable
// state lives in `NIOLockedValueBox` (swift-nio), queues are swift-collections' `Deque` and
// `Heap`.
//
// # The cancellation rule
//
// 1. A wait ends when what it waits for happens or when the waiting task is cancelled, whichever
//    comes first. Cancellation ends it at once with `CancellationError` (or the module's own
//    "cancelled" error where a function throws a typed error).
// 2. A cancelled waiter leaves nothing behind: no permit taken, no signal consumed, no slot held.
//    The others are served as if it had never come.
// 3. Work already handed off (a job on a thread, a record given to librdkafka) is not undone by
//    cancelling its waiter. The waiter stops waiting; the owner of the work finishes it or gives
//    it up, and accounts for it (logs, metrics, a shutdown report).
// 4. A wait that must not end early (a runtime waiting for a child it started) says so in its
//    name: `…IgnoringCancellation`.
//
// Locks: `NIOLockedValueBox`, never held across an `await` or a blocking C call. It is a
// pthread mutex, which ThreadSanitizer understands (the standard library's `Mutex` is not
// visible to it).
