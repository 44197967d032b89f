/// The mutable state of one evaluation: the variables the program reads, the slots of
/// comprehension and `cel.bind` variables, and the remaining cost budget.
///
/// A frame belongs to a single evaluation on a single thread; programs themselves are immutable.
/// Variables and local slots share one allocation.
final class EvaluationFrame {
    /// The program's referenced variables, resolved from the activation (nil when unbound).
    let globals: UnsafeMutablePointer<CELValue?>
    /// Local variable slots; nil marks a lazily computed `cel.block` slot not yet evaluated.
    let locals: UnsafeMutablePointer<CELValue?>
    /// The activation, for names that could only be resolved at run time.
    let activation: CELActivation
    private let slotCount: Int
    /// Cost units left before the evaluation fails with ``CELEvaluationError/Code/costLimitExceeded``.
    private(set) var remainingCost: Int64
    private let costLimit: Int64

    init(globalNames: [String], activation: CELActivation, localCount: Int, costLimit: Int64) {
        self.activation = activation
        self.costLimit = costLimit
        remainingCost = costLimit
        slotCount = globalNames.count + localCount
        globals = UnsafeMutablePointer<CELValue?>.allocate(capacity: max(slotCount, 1))
        locals = globals + globalNames.count
        // One element at a time: these compile to direct copies, not generic runtime loops.
        for (index, name) in globalNames.enumerated() { (globals + index).initialize(to: activation[name]) }
        for index in 0..<localCount { (locals + index).initialize(to: nil) }
    }

    deinit {
        for index in 0..<slotCount { (globals + index).deinitialize(count: 1) }
        globals.deallocate()
    }

    /// Spends `units` of the budget; throws once it is exhausted.
    @inline(__always)
    func charge(_ units: Int) throws(CELEvaluationError) {
        remainingCost &-= Int64(units)
        if remainingCost < 0 { throw costExceeded }
    }

    /// Spends one unit per `divisor` elements of work, at least one.
    @inline(__always)
    func charge(size: Int, per divisor: Int = 1) throws(CELEvaluationError) {
        try charge(1 + size / divisor)
    }

    var costExceeded: CELEvaluationError {
        CELEvaluationError(.costLimitExceeded, "evaluation exceeded its cost limit of \(costLimit)")
    }

    /// The cost spent so far.
    var spentCost: Int64 { costLimit - max(remainingCost, 0) }

    /// A frame for folding constant sub-expressions at compile time.
    static func forConstantFolding() -> EvaluationFrame {
        EvaluationFrame(globalNames: [], activation: CELActivation(), localCount: 0, costLimit: 1_000_000)
    }
}

extension CELEvaluationError {
    /// Errors that the commutative `&&`/`||` and the `all`/`exists` macros must not absorb.
    var isFatal: Bool { code == .costLimitExceeded }
}
