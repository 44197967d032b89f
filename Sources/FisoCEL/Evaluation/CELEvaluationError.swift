/// Why evaluating a CEL program failed.
public struct CELEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The category of a runtime error.
    public enum Code: String, Sendable {
        /// No overload of a function or operator accepts the argument types.
        case noMatchingOverload = "no_matching_overload"
        /// A map has no such key (`m.k`, `m['k']`).
        case noSuchKey = "no_such_key"
        /// A list index is outside the list.
        case indexOutOfRange = "index_out_of_range"
        case divisionByZero = "division_by_zero"
        /// Integer, timestamp or duration arithmetic left its range, or a conversion lost range.
        case overflow = "overflow"
        /// An argument has the right type but an unacceptable value (bad format, bad regex...).
        case invalidArgument = "invalid_argument"
        /// A variable, or function, that the evaluation context does not provide.
        case unboundReference = "unbound_reference"
        /// The evaluation exceeded its cost limit.
        case costLimitExceeded = "cost_limit_exceeded"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func noOverload(_ function: String, _ arguments: CELValue...) -> CELEvaluationError {
        noOverload(function, arguments: arguments)
    }

    static func noOverload(_ function: String, arguments: [CELValue]) -> CELEvaluationError {
        let types = arguments.map(\.runtimeType.name).joined(separator: ", ")
        return CELEvaluationError(
            .noMatchingOverload, "no matching overload for '\(displayName(function))' applied to (\(types))")
    }

    static func noSuchKey(_ key: CELValue) -> CELEvaluationError {
        if case .string(let text) = key { return CELEvaluationError(.noSuchKey, "no such key: '\(text)'") }
        return CELEvaluationError(.noSuchKey, "no such key: \(key)")
    }

    static let divisionByZero = CELEvaluationError(.divisionByZero, "division by zero")
    static let moduloByZero = CELEvaluationError(.divisionByZero, "modulus by zero")

    static func overflow(_ what: String) -> CELEvaluationError {
        CELEvaluationError(.overflow, "\(what) overflow")
    }

    static func range(_ message: String) -> CELEvaluationError { CELEvaluationError(.overflow, message) }

    static func invalid(_ message: String) -> CELEvaluationError { CELEvaluationError(.invalidArgument, message) }

    /// Operators are stored as `_+_`, `-_`, `@in`...; messages show them as written.
    static func displayName(_ function: String) -> String {
        switch function {
        case "@in": return "in"
        case "_[_]": return "[]"
        case "_[?_]": return "[?]"
        default:
            if function.hasPrefix("_") || function.hasSuffix("_") {
                let stripped = function.trimmingUnderscores
                return stripped.isEmpty ? function : stripped
            }
            return function
        }
    }
}

extension String {
    fileprivate var trimmingUnderscores: String {
        var scalars = Substring(self)
        while scalars.first == "_" { scalars.removeFirst() }
        while scalars.last == "_" { scalars.removeLast() }
        return String(scalars)
    }
}
