import NIOConcurrencyHelpers

/// What an instance was made for: a call with other settings gets another instance.
struct ReactorInstanceKey: Hashable, Sendable {
    var environment: [String: String]
    var memoryBytes: Int
    /// Made from a template whose `poll_oneoff` never waits (Wasmtime, see ``InlinePollGuard``).
    var guarded = false
}

/// Why an instance leaves the pool after a call, if it does.
enum ReactorRecycling: Sendable {
    /// It goes back to the pool (unless it reached its call limit).
    case keep
    /// The call failed (trap, timeout, exit, invalid output…): its state cannot be trusted.
    case failed
    /// Its memory grew past the recycle bound.
    case memoryGrew
    /// The call was stopped before it finished, to run again elsewhere: an inline call past its
    /// budget, or a guarded instance that called `poll_oneoff`.
    case retried

    /// What becomes of an instance after a call that ended with `termination` and `output`: replaced
    /// after any failure (an exit other than 0, output the transformer will refuse, a denied memory
    /// growth), or when its memory is above `memoryBound`; kept otherwise.
    init(
        after termination: WasmExecution.Termination, output: [UInt8], memoryGrowthDenied: Bool, memoryBytes: Int,
        memoryBound: Int
    ) {
        if case .failed = termination {
            self = .failed
        } else if case .exited(let code) = termination, code != 0 || !ReactorABI.isAcceptable(output) {
            self = .failed
        } else if memoryGrowthDenied {
            self = .failed
        } else if memoryBytes > memoryBound {
            self = .memoryGrew
        } else {
            self = .keep
        }
    }
}

/// Warm instances of one compiled reactor module, reused across calls.
///
/// At most ``WasmReactorPoolSettings/maxInstances`` are alive: ``WasmTransformer`` never runs more
/// calls of a module at once, so a call always finds an idle instance or room for a new one. A
/// caller that runs more calls at once (the engine used directly) gets a throw-away instance for
/// the excess. Instances are made lazily, by the call that needs one, on that call's thread.
///
/// When the compiled module is released (a hot reload swapped it out and its last call ended), the
/// pool and its idle instances are released with it.
final class ReactorInstancePool<Instance: AnyObject>: Sendable {
    /// One instance, held by the pool or by the one call using it.
    final class Lease: @unchecked Sendable {
        // @unchecked: `instance` is used by one thread at a time; the pool's lock hands a lease
        // from the call that returns it to the call that takes it.
        let instance: Instance
        let key: ReactorInstanceKey
        fileprivate(set) var calls = 0
        /// Made beyond the pool's size; discarded after its call.
        fileprivate let isOverflow: Bool

        fileprivate init(instance: Instance, key: ReactorInstanceKey, isOverflow: Bool) {
            self.instance = instance
            self.key = key
            self.isOverflow = isOverflow
        }
    }

    private struct State {
        var idle: [Lease] = []
        var live = 0
        var statistics = WasmInstancePoolStatistics()
    }

    let settings: WasmReactorPoolSettings
    private let state = NIOLockedValueBox(State())

    init(settings: WasmReactorPoolSettings) {
        self.settings = settings
    }

    var statistics: WasmInstancePoolStatistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.live = state.live
            statistics.idle = state.idle.count
            return statistics
        }
    }

    /// An idle instance made for `key`, or a new one from `make` (called without the lock held).
    /// An idle instance made for another key is discarded when the pool is full. With `throwaway`,
    /// always a new instance, discarded after its call and not counted against the pool's size.
    func acquire<Failure: Error>(
        _ key: ReactorInstanceKey,
        throwaway: Bool = false,
        make: () throws(Failure) -> Instance
    ) throws(Failure) -> Lease {
        let (reused, discarded, overflow): (Lease?, Lease?, Bool) = state.withLockedValue { state in
            if throwaway { return (nil, nil, true) }
            if let index = state.idle.lastIndex(where: { $0.key == key }) {
                state.statistics.reuses += 1
                return (state.idle.remove(at: index), nil, false)
            }
            var discarded: Lease?
            if state.live >= max(1, settings.maxInstances), !state.idle.isEmpty {
                discarded = state.idle.removeFirst()
                state.live -= 1
            }
            let overflow = state.live >= max(1, settings.maxInstances)
            if !overflow { state.live += 1 }
            return (nil, discarded, overflow)
        }
        _ = discarded  // released here, outside the lock
        if let reused { return reused }
        do {
            let instance = try make()
            state.withLockedValue { $0.statistics.created += 1 }
            return Lease(instance: instance, key: key, isOverflow: overflow)
        } catch {
            if !overflow { state.withLockedValue { $0.live -= 1 } }
            throw error
        }
    }

    /// An idle instance made for `key`, for a call that runs only on a warm instance (inline);
    /// nil when none is idle.
    func acquireIdle(_ key: ReactorInstanceKey) -> Lease? {
        state.withLockedValue { state in
            guard let index = state.idle.lastIndex(where: { $0.key == key }) else { return nil }
            state.statistics.reuses += 1
            state.statistics.inlineCalls += 1
            return state.idle.remove(at: index)
        }
    }

    /// Gives `lease` back after a call that ended with `termination` and `output`, kept or recycled
    /// as ``ReactorRecycling/init(after:output:memoryGrowthDenied:memoryBytes:memoryBound:)``
    /// decides for the call's memory limit. Read what the call left in the instance first: once
    /// released, another call may take it.
    func release(
        _ lease: Lease, after termination: WasmExecution.Termination, output: [UInt8], memoryGrowthDenied: Bool,
        memoryBytes: Int, memoryLimitBytes: Int
    ) {
        let recycling = ReactorRecycling(
            after: termination, output: output, memoryGrowthDenied: memoryGrowthDenied, memoryBytes: memoryBytes,
            memoryBound: settings.recycleBound(memoryLimitBytes: memoryLimitBytes))
        release(lease, recycling)
    }

    /// Gives `lease` back after a call: kept for the next call, or discarded (and so released,
    /// outside the lock) for `recycling`, or when it served its last call.
    func release(_ lease: Lease, _ recycling: ReactorRecycling) {
        lease.calls += 1
        state.withLockedValue { state in
            switch recycling {
            case .failed: state.statistics.recycledAfterFailure += 1
            case .memoryGrew: state.statistics.recycledAfterMemoryGrowth += 1
            case .retried:
                state.statistics.retries += 1
            case .keep:
                if lease.isOverflow { break }
                if lease.calls >= max(1, settings.maxCallsPerInstance) {
                    state.statistics.recycledAfterMaxCalls += 1
                    break
                }
                state.idle.append(lease)
                return
            }
            if !lease.isOverflow { state.live -= 1 }
        }
    }
}
