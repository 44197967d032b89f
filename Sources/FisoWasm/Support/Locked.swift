import Foundation

/// A value guarded by a lock.
///
/// Used instead of the standard library's `Mutex` because this lock is a `pthread_mutex` (through
/// `NSLock`), which ThreadSanitizer understands: it sees the ordering the lock gives and reports
/// no false races, where `Mutex`'s futex-based implementation is invisible to it.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only ever read or written inside `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
