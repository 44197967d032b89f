/// The code behind a function overload set, by number of arguments. Receiver-style functions get
/// the receiver as their first argument. Implementations dispatch on the runtime types themselves
/// and throw "no matching overload" for types they do not accept.
enum FunctionImplementation: Sendable {
    case unary(@Sendable (CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue)
    case binary(@Sendable (CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue)
    case ternary(@Sendable (CELValue, CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue)
    case variadic(@Sendable ([CELValue], EvaluationFrame) throws(CELEvaluationError) -> CELValue)

    func call(_ arguments: [CELValue], _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch self {
        case .unary(let function): try function(arguments[0], frame)
        case .binary(let function): try function(arguments[0], arguments[1], frame)
        case .ternary(let function): try function(arguments[0], arguments[1], arguments[2], frame)
        case .variadic(let function): try function(arguments, frame)
        }
    }
}

/// One registered overload set.
struct RegisteredFunction: Sendable {
    let implementation: FunctionImplementation
    /// Whether calls with constant arguments may be evaluated at compile time.
    let isPure: Bool
}

/// Functions by name, call style and argument count.
struct FunctionRegistry: Sendable {
    private struct Entry: Sendable {
        /// By argument count; `-1` accepts any count.
        var global: [Int: RegisteredFunction] = [:]
        /// By argument count, not counting the receiver.
        var member: [Int: RegisteredFunction] = [:]
    }

    private var entries: [String: Entry] = [:]

    mutating func global(
        _ name: String, arity: Int, pure: Bool = true, _ implementation: FunctionImplementation
    ) {
        entries[name, default: Entry()].global[arity] = RegisteredFunction(implementation: implementation, isPure: pure)
    }

    mutating func member(
        _ name: String, arguments: Int, pure: Bool = true, _ implementation: FunctionImplementation
    ) {
        entries[name, default: Entry()].member[arguments] = RegisteredFunction(
            implementation: implementation, isPure: pure)
    }

    /// Registers the same implementation in both call styles (`size(x)` and `x.size()`).
    mutating func both(_ name: String, arity: Int, _ implementation: FunctionImplementation) {
        global(name, arity: arity, implementation)
        member(name, arguments: arity - 1, implementation)
    }

    func global(_ name: String, argumentCount: Int) -> RegisteredFunction? {
        guard let entry = entries[name] else { return nil }
        return entry.global[argumentCount] ?? entry.global[-1]
    }

    func member(_ name: String, argumentCount: Int) -> RegisteredFunction? {
        guard let entry = entries[name] else { return nil }
        return entry.member[argumentCount] ?? entry.member[-1]
    }

    func hasGlobal(_ name: String) -> Bool { !(entries[name]?.global.isEmpty ?? true) }

    func isKnown(_ name: String) -> Bool { entries[name] != nil }

    mutating func add(_ function: CELFunction) {
        let implementation = function.implementation
        let wrapped = FunctionImplementation.variadic { arguments, _ throws(CELEvaluationError) in
            try implementation(arguments)
        }
        switch function.style {
        case .global: global(function.name, arity: function.arity ?? -1, pure: false, wrapped)
        case .receiver: member(function.name, arguments: function.arity.map { $0 - 1 } ?? -1, pure: false, wrapped)
        }
    }
}

/// A function supplied by the application, callable from expressions.
///
/// ```swift
/// let shout = CELFunction(name: "shout", style: .receiver, arity: 1) { arguments in
///     guard case .string(let text) = arguments[0] else {
///         throw CELEvaluationError(.noMatchingOverload, "shout() needs a string")
///     }
///     return .string(text.uppercased() + "!")
/// }
/// ```
public struct CELFunction: Sendable {
    /// How the function is called: `name(a, b)` or `a.name(b)`.
    public enum CallStyle: Sendable {
        case global
        /// Called on a receiver, which is passed as the first argument.
        case receiver
    }

    public let name: String
    public let style: CallStyle
    /// The number of arguments, counting the receiver; nil accepts any number.
    public let arity: Int?
    let implementation: @Sendable ([CELValue]) throws(CELEvaluationError) -> CELValue

    public init(
        name: String, style: CallStyle = .global, arity: Int?,
        implementation: @escaping @Sendable ([CELValue]) throws(CELEvaluationError) -> CELValue
    ) {
        self.name = name
        self.style = style
        self.arity = arity
        self.implementation = implementation
    }
}
