import Foundation
import Glibc
import Synchronization

/// Calls on an engine that can interrupt them quickly run inline: on the thread that asked for
/// them, skipping the hand-off to a ``WasmExecutor`` thread and back, which costs more than a short
/// call itself (a warm C reactor call takes about 5 µs, a fresh C command instance about 70 µs, the
/// two thread wake-ups 30–100 µs). Reactor calls run inline when a warm instance is idle (making
/// one runs `_initialize`, which can be slow); command calls always try.
///
/// What keeps this safe with a hostile module:
/// - an inline call gets a budget of ``budget`` (wall-clock) instead of the module's timeout; a
///   call still running then is interrupted, its instance discarded, and the call run again on an
///   executor thread with the full timeout; the module's next ``suspensionCalls`` calls skip the
///   inline attempt;
/// - a host call that could block (WASI `poll_oneoff`, which the engine cannot interrupt) is
///   never made by an instance that may run inline (see `InlinePollGuard`): the call is stopped
///   there and run again on an ordinary instance on an executor thread; a module that polls
///   twice within ``WasmInlineState/demotionWindow`` calls gives up inline calls for good;
/// - only threads with ``requiredStackBytes`` of stack left run calls inline.
///
/// So a caller's thread is held for at most the budget plus one epoch tick per call. Only the
/// Wasmtime engine qualifies (WasmKit's fuel-based stop takes far longer). `FISO_WASM_INLINE=off`
/// turns inline calls off for the process, ``WasmModuleConfiguration/allowsInlineCalls`` for one
/// module.
public enum WasmInlineCalls {
    /// The environment variable that turns inline calls off (`off`).
    public static let variable = "FISO_WASM_INLINE"

    /// Whether inline calls are allowed in this process.
    public static let isEnabled: Bool = ProcessInfo.processInfo.environment[variable] != "off"

    /// How long an inline call may run before it is moved to an executor thread: at least this,
    /// at most this plus one epoch tick.
    public static let budget: Duration = .milliseconds(2)

    /// Calls that skip the inline attempt after one ran past the budget.
    public static let suspensionCalls = 1000

    /// Stack the calling thread must have left: the engine's limit for wasm frames (512 KiB in
    /// Wasmtime) and room for the host functions the module calls.
    static let requiredStackBytes = 2 << 20

    /// Whether the calling thread has ``requiredStackBytes`` of stack left.
    static func threadHasStackRoom() -> Bool {
        guard let low = ThreadStack.lowAddress() else { return false }
        var marker = 0
        let here = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        return here > low && here - low >= UInt(requiredStackBytes)
    }
}

/// The lowest address of the calling thread's stack, looked up once per thread.
private enum ThreadStack {
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key, nil) == 0 ? key : nil
    }()

    /// glibc's `pthread_getattr_np` (a GNU extension the Glibc module does not show).
    private typealias GetAttributes = @convention(c) (pthread_t, UnsafeMutablePointer<pthread_attr_t>) -> Int32
    private static let getAttributes: GetAttributes? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "pthread_getattr_np"
    )
    .map { unsafeBitCast($0, to: GetAttributes.self) }

    static func lowAddress() -> UInt? {
        guard let key, let getAttributes else { return nil }
        if let cached = pthread_getspecific(key) { return UInt(bitPattern: cached) }
        // Filled by glibc (the type's Swift initialiser is not visible here).
        let attributes = UnsafeMutablePointer<pthread_attr_t>.allocate(capacity: 1)
        defer { attributes.deallocate() }
        guard getAttributes(pthread_self(), attributes) == 0 else { return nil }
        defer { pthread_attr_destroy(attributes) }
        var address: UnsafeMutableRawPointer?
        var size = 0
        guard pthread_attr_getstack(attributes, &address, &size) == 0, let address else { return nil }
        pthread_setspecific(key, address)
        return UInt(bitPattern: address)
    }
}

/// One compiled module's inline bookkeeping (see ``WasmInlineCalls``), for engines whose
/// instances can be made from a guarded template (a `poll_oneoff` that never waits).
final class WasmInlineState: Sendable {
    /// A module that polls twice within this many calls stops using guarded instances.
    static let demotionWindow = 100

    /// Whether the engine made a guarded template for the module.
    private let hasGuardedTemplate: Bool
    /// Set once the module polled twice within ``demotionWindow`` calls: no more guarded
    /// instances, no inline calls.
    private let demoted = Atomic(false)
    /// Calls on guarded instances since the last poll (starts at the window, so that a first poll
    /// never demotes).
    private let callsSincePoll = Atomic(WasmInlineState.demotionWindow)
    /// Calls left that skip the inline attempt, after one ran past the inline budget.
    private let suspension = Atomic(0)
    /// Inline calls stopped in `poll_oneoff`, whose executor run must use an ordinary instance.
    private let unguardedRuns = Atomic(0)

    init(hasGuardedTemplate: Bool) {
        self.hasGuardedTemplate = hasGuardedTemplate
    }

    var isDemoted: Bool { demoted.load(ordering: .relaxed) }

    /// Whether a call should use a guarded instance.
    var usesGuardedInstances: Bool { hasGuardedTemplate && !isDemoted }

    /// Whether a call with `timeout` may be tried inline on this thread now (counting down a
    /// suspension).
    func mayTryInline(timeout: Duration) -> Bool {
        guard usesGuardedInstances, timeout > WasmInlineCalls.budget else { return false }
        if suspension.load(ordering: .relaxed) > 0 {
            suspension.subtract(1, ordering: .relaxed)
            return false
        }
        return WasmInlineCalls.threadHasStackRoom()
    }

    /// Counts a call made on a guarded instance.
    func countGuardedCall() {
        callsSincePoll.add(1, ordering: .relaxed)
    }

    /// A guarded instance was stopped in `poll_oneoff`; demotes the module when the last poll was
    /// recent. `inline`: the executor's run of the same call must use an ordinary instance.
    func recordPoll(inline: Bool) {
        if callsSincePoll.exchange(0, ordering: .relaxed) < Self.demotionWindow {
            demoted.store(true, ordering: .relaxed)
        }
        if inline { unguardedRuns.add(1, ordering: .relaxed) }
    }

    /// An inline call ran past the budget: the next calls skip the inline attempt.
    func recordBudgetOverrun() {
        suspension.store(WasmInlineCalls.suspensionCalls, ordering: .relaxed)
    }

    /// Whether this executor run repeats an inline call stopped in `poll_oneoff` (and so must use
    /// an ordinary instance).
    func takeUnguardedRun() -> Bool {
        var current = unguardedRuns.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = unguardedRuns.compareExchange(
                expected: current, desired: current - 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
