/// The functions every environment has: CEL's standard definitions plus the extension libraries
/// (strings, math, encoders, optionals, lists, sets, network).
enum StandardLibrary {
    static let registry: FunctionRegistry = {
        var registry = FunctionRegistry()
        Operators.register(into: &registry)
        Conversions.register(into: &registry)
        StringFunctions.register(into: &registry)
        TimeFunctions.register(into: &registry)
        MathFunctions.register(into: &registry)
        EncoderFunctions.register(into: &registry)
        OptionalFunctions.register(into: &registry)
        ListFunctions.register(into: &registry)
        NetworkFunctions.register(into: &registry)
        return registry
    }()
}

/// Operators: arithmetic, comparison, equality, membership, indexing and logical not.
enum Operators {
    static func register(into registry: inout FunctionRegistry) {
        registry.global(OperatorName.add, arity: 2, .binary(add))
        registry.global(OperatorName.subtract, arity: 2, .binary(subtract))
        registry.global(OperatorName.multiply, arity: 2, .binary(multiply))
        registry.global(OperatorName.divide, arity: 2, .binary(divide))
        registry.global(OperatorName.modulo, arity: 2, .binary(modulo))
        registry.global(OperatorName.negate, arity: 1, .unary(negate))
        registry.global(OperatorName.logicalNot, arity: 1, .unary(not))
        registry.global(OperatorName.equals, arity: 2, .binary { a, b, _ in .bool(a.isEqual(to: b)) })
        registry.global(OperatorName.notEquals, arity: 2, .binary { a, b, _ in .bool(!a.isEqual(to: b)) })
        registry.global(
            OperatorName.less, arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                .bool(try order(OperatorName.less, a, b) == .less)
            })
        registry.global(
            OperatorName.lessOrEqual, arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                let result = try order(OperatorName.lessOrEqual, a, b)
                return .bool(result == .less || result == .equal)
            })
        registry.global(
            OperatorName.greater, arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                .bool(try order(OperatorName.greater, a, b) == .greater)
            })
        registry.global(
            OperatorName.greaterOrEqual, arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                let result = try order(OperatorName.greaterOrEqual, a, b)
                return .bool(result == .greater || result == .equal)
            })
        registry.global(OperatorName.in, arity: 2, .binary(contains))
        registry.global(OperatorName.index, arity: 2, .binary(index))
        registry.global(OperatorName.optionalIndex, arity: 2, .binary(optionalIndex))
    }

    static func order(_ function: String, _ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELOrdering {
        guard let result = CELValue.order(a, b) else { throw .noOverload(function, a, b) }
        return result
    }

    static func add(_ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (result, overflow) = x.addingReportingOverflow(y)
            if overflow { throw .overflow("int") }
            return .int(result)
        case (.double(let x), .double(let y)): return .double(x + y)
        case (.string(let x), .string(let y)):
            try frame.charge(size: x.utf8.count + y.utf8.count, per: 16)
            return .string(x + y)
        case (.uint(let x), .uint(let y)):
            let (result, overflow) = x.addingReportingOverflow(y)
            if overflow { throw .overflow("uint") }
            return .uint(result)
        case (.list(let x), .list(let y)):
            try frame.charge(size: x.count + y.count, per: 4)
            return .list(x.concatenating(y))
        case (.bytes(let x), .bytes(let y)):
            try frame.charge(size: x.count + y.count, per: 16)
            return .bytes(x + y)
        case (.timestamp(let time), .duration(let span)), (.duration(let span), .timestamp(let time)):
            guard let result = time.adding(span) else { throw .range("timestamp out of range") }
            return .timestamp(result)
        case (.duration(let x), .duration(let y)):
            let (result, overflow) = x.nanoseconds.addingReportingOverflow(y.nanoseconds)
            if overflow { throw .range("duration out of range") }
            return .duration(CELDuration(nanoseconds: result))
        default:
            throw .noOverload(OperatorName.add, a, b)
        }
    }

    static func subtract(_ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (result, overflow) = x.subtractingReportingOverflow(y)
            if overflow { throw .overflow("int") }
            return .int(result)
        case (.double(let x), .double(let y)): return .double(x - y)
        case (.uint(let x), .uint(let y)):
            let (result, overflow) = x.subtractingReportingOverflow(y)
            if overflow { throw .overflow("uint") }
            return .uint(result)
        case (.timestamp(let x), .timestamp(let y)):
            guard let result = x.difference(y) else { throw .range("duration out of range") }
            return .duration(result)
        case (.timestamp(let time), .duration(let span)):
            guard span.nanoseconds != .min, let result = time.adding(CELDuration(nanoseconds: -span.nanoseconds))
            else { throw .range("timestamp out of range") }
            return .timestamp(result)
        case (.duration(let x), .duration(let y)):
            let (result, overflow) = x.nanoseconds.subtractingReportingOverflow(y.nanoseconds)
            if overflow { throw .range("duration out of range") }
            return .duration(CELDuration(nanoseconds: result))
        default:
            throw .noOverload(OperatorName.subtract, a, b)
        }
    }

    static func multiply(_ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (result, overflow) = x.multipliedReportingOverflow(by: y)
            if overflow { throw .overflow("int") }
            return .int(result)
        case (.double(let x), .double(let y)): return .double(x * y)
        case (.uint(let x), .uint(let y)):
            let (result, overflow) = x.multipliedReportingOverflow(by: y)
            if overflow { throw .overflow("uint") }
            return .uint(result)
        default:
            throw .noOverload(OperatorName.multiply, a, b)
        }
    }

    static func divide(_ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            if y == 0 { throw .divisionByZero }
            let (result, overflow) = x.dividedReportingOverflow(by: y)
            if overflow { throw .overflow("int") }
            return .int(result)
        case (.double(let x), .double(let y)): return .double(x / y)
        case (.uint(let x), .uint(let y)):
            if y == 0 { throw .divisionByZero }
            return .uint(x / y)
        default:
            throw .noOverload(OperatorName.divide, a, b)
        }
    }

    static func modulo(_ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            if y == 0 { throw .moduloByZero }
            let (result, overflow) = x.remainderReportingOverflow(dividingBy: y)
            if overflow { throw .overflow("int") }
            return .int(result)
        case (.uint(let x), .uint(let y)):
            if y == 0 { throw .moduloByZero }
            return .uint(x % y)
        default:
            throw .noOverload(OperatorName.modulo, a, b)
        }
    }

    static func negate(_ a: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch a {
        case .int(let x):
            if x == .min { throw .overflow("int") }
            return .int(-x)
        case .double(let x): return .double(-x)
        default: throw .noOverload(OperatorName.negate, a)
        }
    }

    static func not(_ a: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        guard case .bool(let value) = a else { throw .noOverload(OperatorName.logicalNot, a) }
        return .bool(!value)
    }

    static func contains(_ element: CELValue, _ container: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        switch container {
        case .list(let list):
            try frame.charge(size: list.count, per: 4)
            for candidate in list where candidate.isEqual(to: element) { return .bool(true) }
            return .bool(false)
        case .map(let map):
            return .bool(map.containsKey(element))
        default:
            throw .noOverload(OperatorName.in, element, container)
        }
    }

    static func listIndex(_ index: CELValue, count: Int) throws(CELEvaluationError) -> Int? {
        let position: Int64
        switch index {
        case .int(let value): position = value
        case .uint(let value):
            guard let exact = Int64(exactly: value) else { return nil }
            position = exact
        case .double(let value):
            guard let exact = Int64(exactly: value) else {
                throw .invalid("list index must be an integer, not \(CELFormatting.doubleString(value))")
            }
            position = exact
        default:
            throw CELEvaluationError(.noMatchingOverload, "list index must be an int, not \(index.runtimeType.name)")
        }
        guard position >= 0, position < Int64(count) else { return nil }
        return Int(position)
    }

    static func index(_ container: CELValue, _ key: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        switch container {
        case .list(let list):
            guard let position = try listIndex(key, count: list.count) else {
                throw CELEvaluationError(.indexOutOfRange, "index out of range: \(key) (list size \(list.count))")
            }
            return list[position]
        case .map(let map):
            guard let value = map.value(forKey: key) else { throw .noSuchKey(key) }
            return value
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalIndex(wrapped, key, frame)
        default:
            throw .noOverload(OperatorName.index, container, key)
        }
    }

    static func optionalIndex(_ container: CELValue, _ key: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        switch container {
        case .list(let list):
            guard let position = try listIndex(key, count: list.count) else { return .optional(nil) }
            return .optional(list[position])
        case .map(let map):
            return .optional(map.value(forKey: key))
        case .optional(let wrapped):
            guard let wrapped else { return .optional(nil) }
            return try optionalIndex(wrapped, key, frame)
        default:
            throw .noOverload(OperatorName.optionalIndex, container, key)
        }
    }
}
