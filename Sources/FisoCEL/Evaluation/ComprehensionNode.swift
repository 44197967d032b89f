import FisoJSON

/// The iteration macros: `all`, `exists`, `exists_one`, `map`, `filter` and the two-variable
/// `transformList`, `transformMap`, `transformMapEntry`.
///
/// Each iteration charges `iterationCost` (the static size of the loop body), so the cost limit
/// bounds nested comprehensions however they are combined.
final class ComprehensionNode: EvalNode {
    let kind: Comprehension.Kind
    let range: any EvalNode
    /// Slot of the element/key (one variable) or index/key (two variables).
    let firstSlot: Int
    /// Slot of the value variable of two-variable forms.
    let secondSlot: Int?
    let filter: (any EvalNode)?
    let body: any EvalNode
    let iterationCost: Int
    let macroName: String

    init(
        kind: Comprehension.Kind, range: any EvalNode, firstSlot: Int, secondSlot: Int?, filter: (any EvalNode)?,
        body: any EvalNode, iterationCost: Int, macroName: String
    ) {
        self.kind = kind
        self.range = range
        self.firstSlot = firstSlot
        self.secondSlot = secondSlot
        self.filter = filter
        self.body = body
        self.iterationCost = iterationCost
        self.macroName = macroName
    }

    /// A list or map being iterated, with the values of the loop variables at each position.
    private struct Cursor {
        let source: CELValue
        let count: Int
        let twoVariables: Bool

        /// (first variable, second variable) at `position`.
        func variables(at position: Int) -> (CELValue, CELValue) {
            switch source {
            case .list(let list):
                let element = list[position]
                return twoVariables ? (.int(Int64(position)), element) : (element, .null)
            case .map(let map):
                if twoVariables { return map.entry(at: position) }
                let (key, _) = map.entry(at: position)
                return (key, .null)
            default:
                return (.null, .null)
            }
        }
    }

    @inline(__always)
    private func bind(_ cursor: Cursor, _ position: Int, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        try frame.charge(iterationCost)
        let (first, second) = cursor.variables(at: position)
        frame.locals[firstSlot] = first
        if let secondSlot { frame.locals[secondSlot] = second }
        return first
    }

    private func predicate(_ node: any EvalNode, _ frame: EvaluationFrame) throws(CELEvaluationError) -> Bool {
        let value = try node.evaluate(frame)
        guard case .bool(let result) = value else {
            throw CELEvaluationError(
                .noMatchingOverload, "\(macroName)() predicate must be a bool, not \(value.runtimeType.name)")
        }
        return result
    }

    func evaluate(_ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        let rangeValue = try range.evaluate(frame)
        let count: Int
        switch rangeValue {
        case .list(let list): count = list.count
        case .map(let map): count = map.count
        default:
            throw CELEvaluationError(
                .noMatchingOverload, "\(macroName)() cannot iterate over a value of type \(rangeValue.runtimeType.name)"
            )
        }
        let cursor = Cursor(source: rangeValue, count: count, twoVariables: secondSlot != nil)
        switch kind {
        case .all, .exists:
            // The first decisive result wins; otherwise the first error is reported.
            let decisive = kind == .exists
            var pending: CELEvaluationError?
            for position in 0..<count {
                _ = try bind(cursor, position, frame)
                do {
                    if try predicate(body, frame) == decisive { return .bool(decisive) }
                } catch {
                    if error.isFatal { throw error }
                    if pending == nil { pending = error }
                }
            }
            if let pending { throw pending }
            return .bool(!decisive)
        case .existsOne:
            var matches = 0
            for position in 0..<count {
                _ = try bind(cursor, position, frame)
                if try predicate(body, frame) { matches += 1 }
            }
            return .bool(matches == 1)
        case .map, .filter, .transformList:
            var results: [CELValue] = []
            results.reserveCapacity(count)
            for position in 0..<count {
                let first = try bind(cursor, position, frame)
                if let filter, !(try predicate(filter, frame)) { continue }
                if kind == .filter {
                    if try predicate(body, frame) { results.append(first) }
                } else {
                    results.append(try body.evaluate(frame))
                }
            }
            return .list(CELList(results))
        case .transformMap, .transformMapEntry:
            var entries = OrderedDictionary<CELMapKey, CELValue>(minimumCapacity: count)
            for position in 0..<count {
                let first = try bind(cursor, position, frame)
                if let filter, !(try predicate(filter, frame)) { continue }
                let value = try body.evaluate(frame)
                if kind == .transformMap {
                    guard let key = CELMapKey(first) else { continue }
                    entries[key] = value
                } else {
                    guard case .map(let entry) = value else {
                        throw CELEvaluationError(
                            .noMatchingOverload,
                            "transformMapEntry() expression must return a map, not \(value.runtimeType.name)")
                    }
                    for (entryKey, entryValue) in entry {
                        guard let key = CELMapKey(entryKey) else { continue }
                        guard entries.updateValue(entryValue, forKey: key) == nil else {
                            throw .invalid("transformMapEntry() produced the key \(entryKey) twice")
                        }
                    }
                }
            }
            return .map(CELMap(entries))
        case .optionalMap, .optionalFlatMap:
            // Planned as OptionalMapNode; never reached.
            throw .invalid("internal error: optional map planned as a comprehension")
        }
    }
}
