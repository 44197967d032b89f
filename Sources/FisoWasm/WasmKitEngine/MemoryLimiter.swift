import NIOConcurrencyHelpers
@_spi(Fuzzing) import WasmKit

/// Caps one store's linear memory and remembers whether it ever had to say no, so that a failure
/// after a denied growth can be reported as `out_of_memory` rather than as whatever the module
/// made of the failed allocation (a trap, an exit code).
final class MemoryLimiter: ResourceLimiter {
    /// Tables hold function references (8 bytes each); this bounds them to 80 MiB.
    static let maximumTableElements = 10_000_000

    let limitBytes: Int
    private let largestDeniedRequest = NIOLockedValueBox<Int?>(nil)

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
    }

    /// The largest memory size (bytes) a growth asked for and was denied, if any.
    var deniedRequest: Int? {
        largestDeniedRequest.withLockedValue { $0 }
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired > limitBytes else { return true }
        largestDeniedRequest.withLockedValue { $0 = max($0 ?? 0, desired) }
        return false
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        desired <= Self.maximumTableElements
    }
}
