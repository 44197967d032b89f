/// The optional types library: `optional.of`, `optional.none`, `optional.ofNonZeroValue`,
/// `hasValue()`, `value()`, `optional.unwrap(list)` / `list.unwrapOpt()`. (`or`, `orValue`,
/// `optMap`, `optFlatMap`, `.?field` and `[?index]` are planned as special nodes.)
enum OptionalFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.global("optional.of", arity: 1, .unary { value, _ in .optional(value) })
        registry.global("optional.none", arity: 0, .variadic { _, _ in .optional(nil) })
        registry.global(
            "optional.ofNonZeroValue", arity: 1,
            .unary { value, _ in
                .optional(value.isZeroValue ? nil : value)
            })
        registry.member(
            "hasValue", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .optional(let wrapped) = value else { throw .noOverload("hasValue", value) }
                return .bool(wrapped != nil)
            })
        registry.member(
            "value", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .optional(let wrapped) = value else { throw .noOverload("value", value) }
                guard let wrapped else { throw .invalid("optional.none() dereference") }
                return wrapped
            })
        // Fallbacks for non-constant receivers are handled by OptionalOrNode; these keep the
        // functions known to the registry for error messages.
        registry.member(
            "or", arguments: 1,
            .binary { value, other, _ throws(CELEvaluationError) in
                guard case .optional(let wrapped) = value, case .optional = other else {
                    throw .noOverload("or", value, other)
                }
                return wrapped == nil ? other : value
            })
        registry.member(
            "orValue", arguments: 1,
            .binary { value, other, _ throws(CELEvaluationError) in
                guard case .optional(let wrapped) = value else { throw .noOverload("orValue", value, other) }
                return wrapped ?? other
            })
        let unwrap = FunctionImplementation.unary { value, frame throws(CELEvaluationError) in
            guard case .list(let list) = value else { throw .noOverload("optional.unwrap", value) }
            try frame.charge(size: list.count, per: 4)
            var values: [CELValue] = []
            for element in list {
                guard case .optional(let wrapped) = element else {
                    throw .noOverload("optional.unwrap", element)
                }
                if let wrapped { values.append(wrapped) }
            }
            return .list(CELList(values))
        }
        registry.global("optional.unwrap", arity: 1, unwrap)
        registry.member("unwrapOpt", arguments: 0, unwrap)
    }
}

/// The lists and sets extensions: `distinct`, `flatten`, `lists.range`, `reverse`, `slice`,
/// `sort`, `first`, `last`, `sets.contains`, `sets.equivalent`, `sets.intersects`.
enum ListFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.member(
            "distinct", arguments: 0,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .list(let list) = value else { throw .noOverload("distinct", value) }
                try frame.charge(size: list.count * list.count, per: 8)
                var unique: [CELValue] = []
                for element in list where !unique.contains(where: { $0.isEqual(to: element) }) {
                    unique.append(element)
                }
                return .list(CELList(unique))
            })
        registry.member(
            "flatten", arguments: 0,
            .unary { value, frame throws(CELEvaluationError) in
                try flatten(value, depth: 1, frame)
            })
        registry.member(
            "flatten", arguments: 1,
            .binary { value, depth, frame throws(CELEvaluationError) in
                guard case .int(let levels) = depth else { throw .noOverload("flatten", value, depth) }
                guard levels >= 0 else { throw .invalid("flatten() depth must not be negative") }
                return try flatten(value, depth: levels, frame)
            })
        registry.global(
            "lists.range", arity: 1,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .int(let count) = value else { throw .noOverload("lists.range", value) }
                guard count >= 0 else { return .list(CELList([])) }
                guard count <= 16_777_216 else { throw .invalid("lists.range(\(count)) is too large") }
                try frame.charge(size: Int(clamping: count), per: 4)
                return .list(CELList((0..<count).map { .int($0) }))
            })
        registry.member(
            "slice", arguments: 2,
            .ternary { value, start, end, frame throws(CELEvaluationError) in
                guard case .list(let list) = value, case .int(let first) = start, case .int(let last) = end else {
                    throw .noOverload("slice", value, start, end)
                }
                guard first >= 0, last >= 0, first <= last, last <= Int64(list.count) else {
                    throw CELEvaluationError(
                        .indexOutOfRange, "cannot slice(\(first), \(last)) a list of size \(list.count)")
                }
                try frame.charge(size: Int(last - first), per: 4)
                return .list(CELList(Array(list[Int(first)..<Int(last)])))
            })
        registry.member(
            "sort", arguments: 0,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .list(let list) = value else { throw .noOverload("sort", value) }
                var elements = list.elements
                guard let first = elements.first else { return value }
                try frame.charge(
                    size: elements.count * max(1, Int.bitWidth - elements.count.leadingZeroBitCount), per: 4)
                for element in elements {
                    guard element.runtimeType == first.runtimeType, CELValue.order(element, first) != nil else {
                        throw CELEvaluationError(
                            .noMatchingOverload,
                            "sort() needs elements of one comparable type, found \(element.runtimeType.name)")
                    }
                }
                elements.sort { CELValue.order($0, $1) == .less }
                return .list(CELList(elements))
            })
        registry.member(
            "first", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .list(let list) = value else { throw .noOverload("first", value) }
                return .optional(list.first)
            })
        registry.member(
            "last", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .list(let list) = value else { throw .noOverload("last", value) }
                return .optional(list.last)
            })
        registry.global(
            "sets.contains", arity: 2,
            .binary { a, b, frame throws(CELEvaluationError) in
                let (left, right) = try lists("sets.contains", a, b, frame)
                return .bool(right.allSatisfy { element in left.contains { $0.isEqual(to: element) } })
            })
        registry.global(
            "sets.equivalent", arity: 2,
            .binary { a, b, frame throws(CELEvaluationError) in
                let (left, right) = try lists("sets.equivalent", a, b, frame)
                return .bool(
                    right.allSatisfy { element in left.contains { $0.isEqual(to: element) } }
                        && left.allSatisfy { element in right.contains { $0.isEqual(to: element) } })
            })
        registry.global(
            "sets.intersects", arity: 2,
            .binary { a, b, frame throws(CELEvaluationError) in
                let (left, right) = try lists("sets.intersects", a, b, frame)
                return .bool(right.contains { element in left.contains { $0.isEqual(to: element) } })
            })
    }

    private static func lists(_ name: String, _ a: CELValue, _ b: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> ([CELValue], [CELValue])
    {
        guard case .list(let left) = a, case .list(let right) = b else { throw .noOverload(name, a, b) }
        try frame.charge(size: left.count * right.count, per: 8)
        return (left.elements, right.elements)
    }

    private static func flatten(_ value: CELValue, depth: Int64, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .list(let list) = value else { throw .noOverload("flatten", value) }
        var output: [CELValue] = []
        try appendFlattened(list, depth: depth, into: &output, frame)
        return .list(CELList(output))
    }

    private static func appendFlattened(
        _ list: CELList, depth: Int64, into output: inout [CELValue], _ frame: EvaluationFrame
    ) throws(CELEvaluationError) {
        try frame.charge(size: list.count, per: 4)
        for element in list {
            if depth > 0, case .list(let inner) = element {
                try appendFlattened(inner, depth: depth - 1, into: &output, frame)
            } else {
                output.append(element)
            }
        }
    }
}
