/// The outcome of comparing two ordered values; `unordered` when a NaN is involved.
enum CELOrdering {
    case less, equal, greater, unordered

    init(_ comparison: Int) {
        self = comparison < 0 ? .less : (comparison > 0 ? .greater : .equal)
    }

    init<T: Comparable>(_ left: T, _ right: T) {
        self = left < right ? .less : (left == right ? .equal : .greater)
    }

    init(_ left: Double, _ right: Double) {
        if left < right {
            self = .less
        } else if left > right {
            self = .greater
        } else if left == right {
            self = .equal
        } else {
            self = .unordered
        }
    }
}

extension CELValue {
    /// CEL runtime equality: heterogeneous across numeric types, false across other types.
    package func isEqual(to other: CELValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let left), .bool(let right)): return left == right
        case (.string(let left), .string(let right)): return CELStrings.equal(left, right)
        case (.int(let left), .int(let right)): return left == right
        case (.int, .uint), (.int, .double), (.uint, .int), (.uint, .uint), (.uint, .double), (.double, .int),
            (.double, .uint), (.double, .double):
            return CELValue.compareNumbers(self, other) == .equal
        case (.bytes(let left), .bytes(let right)): return left == right
        case (.list(let left), .list(let right)):
            guard left.count == right.count else { return false }
            for index in 0..<left.count where !left[index].isEqual(to: right[index]) { return false }
            return true
        case (.map(let left), .map(let right)):
            guard left.count == right.count else { return false }
            for (key, value) in left {
                guard let otherValue = right.value(forKey: key), value.isEqual(to: otherValue) else { return false }
            }
            return true
        case (.timestamp(let left), .timestamp(let right)): return left == right
        case (.duration(let left), .duration(let right)): return left == right
        case (.type(let left), .type(let right)): return left == right
        case (.optional(let left), .optional(let right)):
            switch (left, right) {
            case (nil, nil): return true
            case (let left?, let right?): return left.isEqual(to: right)
            default: return false
            }
        case (.opaque(let left), .opaque(let right)): return left.isEqual(to: right)
        default: return false
        }
    }

    /// Compares two numbers of any numeric types on one number line; nil if either is not a number.
    static func compareNumbers(_ left: CELValue, _ right: CELValue) -> CELOrdering? {
        switch (left, right) {
        case (.int(let a), .int(let b)): return CELOrdering(a, b)
        case (.uint(let a), .uint(let b)): return CELOrdering(a, b)
        case (.double(let a), .double(let b)): return CELOrdering(a, b)
        case (.int(let a), .uint(let b)): return a < 0 ? .less : CELOrdering(UInt64(a), b)
        case (.uint(let a), .int(let b)): return b < 0 ? .greater : CELOrdering(a, UInt64(b))
        // Int/double comparisons use the double value of the integer, as the reference
        // implementations do; doubles beyond the integer range order correctly either way.
        case (.int(let a), .double(let b)): return CELOrdering(Double(a), b)
        case (.double(let a), .int(let b)): return CELOrdering(a, Double(b))
        case (.uint(let a), .double(let b)): return CELOrdering(Double(a), b)
        case (.double(let a), .uint(let b)): return CELOrdering(a, Double(b))
        default: return nil
        }
    }

    /// The order of two values for `<`, `<=`, `>`, `>=`; nil when the types have no ordering.
    static func order(_ left: CELValue, _ right: CELValue) -> CELOrdering? {
        switch (left, right) {
        case (.string(let a), .string(let b)): return CELOrdering(CELStrings.compare(a, b))
        case (.bool(let a), .bool(let b)): return a == b ? .equal : (a ? .greater : .less)
        case (.bytes(let a), .bytes(let b)): return CELOrdering(CELStrings.compareBytes(a, b))
        case (.timestamp(let a), .timestamp(let b)): return CELOrdering(a, b)
        case (.duration(let a), .duration(let b)): return CELOrdering(a, b)
        default: return compareNumbers(left, right)
        }
    }
}
