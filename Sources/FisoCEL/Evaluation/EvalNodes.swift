import FisoJSON

/// A planned, executable expression node. Nodes are immutable and shared by all evaluations;
/// per-evaluation state lives in the ``EvaluationFrame``.
protocol EvalNode: AnyObject, Sendable {
    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue
}

extension EvalNode {
    /// The value when the node is a compile-time constant.
    var constantValue: CELValue? { (self as? ConstantNode)?.value }
}

final class ConstantNode: EvalNode {
    let value: CELValue
    init(_ value: CELValue) { self.value = value }
    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue { value }
}

/// Fails with a fixed error when evaluated (unbound functions in lenient environments).
final class ErrorNode: EvalNode {
    let error: CELEvaluationError
    init(_ error: CELEvaluationError) { self.error = error }
    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue { throw error }
}

/// A declared variable, resolved to a slot of the program's globals.
final class GlobalVariableNode: EvalNode {
    let index: Int
    let name: String
    init(index: Int, name: String) {
        self.index = index
        self.name = name
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        guard let value = frame.globals[index] else {
            throw CELEvaluationError(.unboundReference, "no value for variable '\(name)'")
        }
        return value
    }
}

/// A name that could not be resolved at compile time: tries each candidate in the activation,
/// longest qualified name first, then selects the remaining fields.
final class DynamicIdentifierNode: EvalNode {
    /// (qualified name, fields to select afterwards)
    let candidates: [(name: String, fields: [String])]
    let displayName: String

    init(candidates: [(name: String, fields: [String])], displayName: String) {
        self.candidates = candidates
        self.displayName = displayName
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        for candidate in candidates {
            guard var value = frame.activation[candidate.name] else { continue }
            for field in candidate.fields { value = try FieldSelection.select(field, from: value) }
            return value
        }
        throw CELEvaluationError(.unboundReference, "undeclared reference to '\(displayName)'")
    }
}

final class LocalVariableNode: EvalNode {
    let slot: Int
    let name: String
    init(slot: Int, name: String) {
        self.slot = slot
        self.name = name
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        guard let value = frame.locals[slot] else {
            throw CELEvaluationError(.unboundReference, "variable '\(name)' has no value here")
        }
        return value
    }
}

/// A `cel.block` slot: computed on first use, then reused within the block.
final class LazySlotNode: EvalNode {
    let slot: Int
    let expression: any EvalNode
    init(slot: Int, expression: any EvalNode) {
        self.slot = slot
        self.expression = expression
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        if let value = frame.locals[slot] { return value }
        let value = try expression.evaluate(frame)
        frame.locals[slot] = value
        return value
    }
}

final class BlockNode: EvalNode {
    let firstSlot: Int
    let slotCount: Int
    let result: any EvalNode
    init(firstSlot: Int, slotCount: Int, result: any EvalNode) {
        self.firstSlot = firstSlot
        self.slotCount = slotCount
        self.result = result
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        for slot in firstSlot..<firstSlot + slotCount { frame.locals[slot] = nil }
        return try result.evaluate(frame)
    }
}

final class BindNode: EvalNode {
    let slot: Int
    let value: any EvalNode
    let body: any EvalNode
    init(slot: Int, value: any EvalNode, body: any EvalNode) {
        self.slot = slot
        self.value = value
        self.body = body
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        frame.locals[slot] = try value.evaluate(frame)
        return try body.evaluate(frame)
    }
}

// MARK: Field access

/// Field selection on a value (`value.field`), shared by the selection nodes.
enum FieldSelection {
    static func select(_ field: String, from value: CELValue) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .map(let map):
            guard let result = map.value(forStringKey: field) else { throw .noSuchKey(.string(field)) }
            return result
        case .optional(let wrapped):
            // Selecting on an optional continues the optional chain.
            guard let wrapped else { return .optional(nil) }
            return try OptionalSelectNode.select(field, from: wrapped)
        default:
            throw unsupportedSelection(value, field)
        }
    }

    static func unsupportedSelection(_ value: CELValue, _ field: String) -> CELEvaluationError {
        CELEvaluationError(
            .noMatchingOverload, "type '\(value.runtimeType.name)' does not support field selection ('.\(field)')")
    }
}

/// `operand.f1.f2...`: a run of field selections. Over JSON-backed maps it walks the JSON
/// objects directly and converts only the value it ends on.
final class SelectPathNode: EvalNode {
    let operand: any EvalNode
    let fields: [String]
    init(operand: any EvalNode, fields: [String]) {
        self.operand = operand
        self.fields = fields
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var value = try operand.evaluate(frame)
        var index = 0
        if case .map(let map) = value, case .json(var object) = map.storage {
            while true {
                guard let member = object[fields[index]] else { throw .noSuchKey(.string(fields[index])) }
                index += 1
                if index < fields.count, case .object(let inner) = member {
                    object = inner
                    continue
                }
                value = CELValue(json: member)
                break
            }
        }
        while index < fields.count {
            value = try FieldSelection.select(fields[index], from: value)
            index += 1
        }
        return value
    }
}

/// `operand.?field`.
final class OptionalSelectNode: EvalNode {
    let operand: any EvalNode
    let field: String
    init(operand: any EvalNode, field: String) {
        self.operand = operand
        self.field = field
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let value = try operand.evaluate(frame)
        if case .optional(let wrapped) = value {
            guard let wrapped else { return .optional(nil) }
            return try OptionalSelectNode.select(field, from: wrapped)
        }
        return try OptionalSelectNode.select(field, from: value)
    }

    static func select(_ field: String, from value: CELValue) throws(CELEvaluationError) -> CELValue {
        guard case .map(let map) = value else { throw FieldSelection.unsupportedSelection(value, field) }
        return .optional(map.value(forStringKey: field))
    }
}

/// `has(operand.field)`.
final class PresenceTestNode: EvalNode {
    let operand: any EvalNode
    let field: String
    init(operand: any EvalNode, field: String) {
        self.operand = operand
        self.field = field
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var value = try operand.evaluate(frame)
        if case .optional(let wrapped) = value {
            guard let wrapped else { return .bool(false) }
            value = wrapped
        }
        guard case .map(let map) = value else { throw FieldSelection.unsupportedSelection(value, field) }
        return .bool(map.value(forStringKey: field) != nil)
    }
}

// MARK: Calls

final class UnaryCallNode: EvalNode {
    let function: @Sendable (CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue
    let argument: any EvalNode
    init(
        _ function: @escaping @Sendable (CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue,
        _ argument: any EvalNode
    ) {
        self.function = function
        self.argument = argument
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        try function(try argument.evaluate(frame), frame)
    }
}

final class BinaryCallNode: EvalNode {
    let function: @Sendable (CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue
    let left: any EvalNode
    let right: any EvalNode
    init(
        _ function: @escaping @Sendable (CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue,
        _ left: any EvalNode, _ right: any EvalNode
    ) {
        self.function = function
        self.left = left
        self.right = right
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let leftValue = try left.evaluate(frame)
        return try function(leftValue, try right.evaluate(frame), frame)
    }
}

final class TernaryCallNode: EvalNode {
    let function: @Sendable (CELValue, CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue
    let first: any EvalNode
    let second: any EvalNode
    let third: any EvalNode
    init(
        _ function:
            @escaping @Sendable (CELValue, CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) ->
            CELValue,
        _ first: any EvalNode, _ second: any EvalNode, _ third: any EvalNode
    ) {
        self.function = function
        self.first = first
        self.second = second
        self.third = third
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let a = try first.evaluate(frame)
        let b = try second.evaluate(frame)
        return try function(a, b, try third.evaluate(frame), frame)
    }
}

/// `a + b - c ...`: a left fold over binary operators, without nesting.
final class OperatorChainNode: EvalNode {
    struct Step: Sendable {
        let function: @Sendable (CELValue, CELValue, EvaluationFrame) throws(CELEvaluationError) -> CELValue
        let operand: any EvalNode
    }

    let first: any EvalNode
    let steps: [Step]
    init(first: any EvalNode, steps: [Step]) {
        self.first = first
        self.steps = steps
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var accumulator = try first.evaluate(frame)
        for step in steps {
            accumulator = try step.function(accumulator, try step.operand.evaluate(frame), frame)
        }
        return accumulator
    }
}

final class VariadicCallNode: EvalNode {
    let function: @Sendable ([CELValue], EvaluationFrame) throws(CELEvaluationError) -> CELValue
    let arguments: [any EvalNode]
    init(
        _ function: @escaping @Sendable ([CELValue], EvaluationFrame) throws(CELEvaluationError) -> CELValue,
        _ arguments: [any EvalNode]
    ) {
        self.function = function
        self.arguments = arguments
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var values: [CELValue] = []
        values.reserveCapacity(arguments.count)
        for argument in arguments { values.append(try argument.evaluate(frame)) }
        return try function(values, frame)
    }
}

// MARK: Logic

/// `a && b` and `a || b` with commutative error absorption: the deciding value (`false` for `&&`,
/// `true` for `||`) wins over errors and non-booleans on either side.
final class LogicalNode: EvalNode {
    let left: any EvalNode
    let right: any EvalNode
    /// The value that decides the result on its own: `false` for `&&`, `true` for `||`.
    let deciding: Bool
    let operatorName: String

    /// `a && b`.
    static func and(_ left: any EvalNode, _ right: any EvalNode) -> LogicalNode {
        LogicalNode(left, right, deciding: false, operatorName: OperatorName.logicalAnd)
    }

    /// `a || b`.
    static func or(_ left: any EvalNode, _ right: any EvalNode) -> LogicalNode {
        LogicalNode(left, right, deciding: true, operatorName: OperatorName.logicalOr)
    }

    private init(_ left: any EvalNode, _ right: any EvalNode, deciding: Bool, operatorName: String) {
        self.left = left
        self.right = right
        self.deciding = deciding
        self.operatorName = operatorName
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var pending: CELEvaluationError?
        do {
            switch try left.evaluate(frame) {
            case .bool(let value) where value == deciding: return .bool(deciding)
            case .bool: break
            case let other: pending = .noOverload(operatorName, other)
            }
        } catch {
            if error.isFatal { throw error }
            pending = error
        }
        let rightValue: CELValue
        do {
            rightValue = try right.evaluate(frame)
        } catch {
            if error.isFatal { throw error }
            throw pending ?? error
        }
        switch rightValue {
        case .bool(let value) where value == deciding: return .bool(deciding)
        case .bool:
            if let pending { throw pending }
            return .bool(!deciding)
        default: throw pending ?? .noOverload(operatorName, rightValue)
        }
    }
}

final class ConditionalNode: EvalNode {
    let condition: any EvalNode
    let whenTrue: any EvalNode
    let whenFalse: any EvalNode
    init(_ condition: any EvalNode, _ whenTrue: any EvalNode, _ whenFalse: any EvalNode) {
        self.condition = condition
        self.whenTrue = whenTrue
        self.whenFalse = whenFalse
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch try condition.evaluate(frame) {
        case .bool(true): return try whenTrue.evaluate(frame)
        case .bool(false): return try whenFalse.evaluate(frame)
        case let other: throw .noOverload(OperatorName.conditional, other)
        }
    }
}

// MARK: Aggregate literals

final class ListLiteralNode: EvalNode {
    let elements: [any EvalNode]
    /// Positions of `?element` entries, which are included only when the optional has a value.
    let optionalElements: [Bool]
    let hasOptionalElements: Bool
    init(elements: [any EvalNode], optionalElements: [Bool]) {
        self.elements = elements
        self.optionalElements = optionalElements
        hasOptionalElements = optionalElements.contains(true)
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var values: [CELValue] = []
        values.reserveCapacity(elements.count)
        for (position, element) in elements.enumerated() {
            let value = try element.evaluate(frame)
            if hasOptionalElements && optionalElements[position] {
                guard case .optional(let wrapped) = value else {
                    throw .invalid("optional list element must be an optional value, not \(value.runtimeType.name)")
                }
                if let wrapped { values.append(wrapped) }
            } else {
                values.append(value)
            }
        }
        return .list(CELList(values))
    }
}

final class MapLiteralNode: EvalNode {
    let keys: [any EvalNode]
    let values: [any EvalNode]
    let optionalEntries: [Bool]
    init(keys: [any EvalNode], values: [any EvalNode], optionalEntries: [Bool]) {
        self.keys = keys
        self.values = values
        self.optionalEntries = optionalEntries
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        var entries = OrderedDictionary<CELMapKey, CELValue>(minimumCapacity: keys.count)
        for position in 0..<keys.count {
            let key = try keys[position].evaluate(frame)
            var value = try values[position].evaluate(frame)
            guard let mapKey = CELMapKey(key) else {
                throw .invalid("unsupported key type for a map: \(key.runtimeType.name)")
            }
            if optionalEntries[position] {
                guard case .optional(let wrapped) = value else {
                    throw .invalid("optional map entry must be an optional value, not \(value.runtimeType.name)")
                }
                guard let wrapped else { continue }
                value = wrapped
            }
            guard entries.updateValue(value, forKey: mapKey) == nil else {
                throw .invalid("map literal has a repeated key: \(key)")
            }
        }
        return .map(CELMap(entries))
    }
}

// MARK: Optionals

/// `opt.or(other)`: `other` is evaluated only when `opt` is empty.
final class OptionalOrNode: EvalNode {
    let optional: any EvalNode
    let alternative: any EvalNode
    /// `orValue` unwraps: the alternative is a plain value.
    let unwrapping: Bool
    init(optional: any EvalNode, alternative: any EvalNode, unwrapping: Bool) {
        self.optional = optional
        self.alternative = alternative
        self.unwrapping = unwrapping
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let value = try optional.evaluate(frame)
        guard case .optional(let wrapped) = value else {
            throw .noOverload(unwrapping ? "orValue" : "or", value)
        }
        if let wrapped { return unwrapping ? wrapped : value }
        let other = try alternative.evaluate(frame)
        if !unwrapping {
            guard case .optional = other else { throw .noOverload("or", value, other) }
        }
        return other
    }
}

/// `opt.optMap(x, body)` and `opt.optFlatMap(x, body)`.
final class OptionalMapNode: EvalNode {
    let optional: any EvalNode
    let slot: Int
    let body: any EvalNode
    let flat: Bool
    init(optional: any EvalNode, slot: Int, body: any EvalNode, flat: Bool) {
        self.optional = optional
        self.slot = slot
        self.body = body
        self.flat = flat
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let value = try optional.evaluate(frame)
        guard case .optional(let wrapped) = value else {
            throw .noOverload(flat ? "optFlatMap" : "optMap", value)
        }
        guard let wrapped else { return .optional(nil) }
        frame.locals[slot] = wrapped
        let result = try body.evaluate(frame)
        if flat {
            guard case .optional = result else {
                throw .invalid("optFlatMap() expression must return an optional, not \(result.runtimeType.name)")
            }
            return result
        }
        return .optional(result)
    }
}

/// `text.matches(pattern)` with a pattern compiled once at plan time.
final class PrecompiledMatchNode: EvalNode {
    let target: any EvalNode
    let regex: CELRegex
    init(target: any EvalNode, regex: CELRegex) {
        self.target = target
        self.regex = regex
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let value = try target.evaluate(frame)
        guard case .string(let text) = value else { throw .noOverload("matches", value, .string(regex.pattern)) }
        return .bool(try regex.matches(text, frame: frame))
    }
}
