/// A compiled regular expression in RE2 syntax, matched in time linear in the text (a Thompson
/// NFA simulation without backtracking), so `matches` cannot be made to run for exponential time.
struct CELRegex: Sendable {
    enum Instruction: Sendable {
        case scalar(UInt32)
        case foldedScalar([UInt32])
        case characterClass(RegexCharacterClass)
        case any
        case anyExceptNewline
        /// Continue at both targets; the first has priority (irrelevant for a yes/no match).
        case split(Int, Int)
        case jump(Int)
        case assertion(RegexAssertion)
        case match
    }

    let pattern: String
    let instructions: [Instruction]
    static let maximumInstructions = 20_000

    init(_ pattern: String) throws(CELRegexError) {
        self.pattern = pattern
        let node = try RegexParser.parse(pattern)
        var compiler = RegexCompiler()
        try compiler.emit(node)
        compiler.append(.match)
        instructions = compiler.instructions
    }

    /// Whether the pattern matches anywhere in `text`; charges the evaluation for the work.
    func matches(_ text: String, frame: EvaluationFrame) throws(CELEvaluationError) -> Bool {
        let scalars = Array(text.unicodeScalars)
        try frame.charge(size: (scalars.count + 1) * instructions.count, per: 64)
        return matches(scalars)
    }

    func matches(_ scalars: [Unicode.Scalar]) -> Bool {
        var current = ThreadList(capacity: instructions.count)
        var next = ThreadList(capacity: instructions.count)
        var stack: [Int] = []
        if add(0, to: &current, at: 0, in: scalars, stack: &stack) { return true }
        for position in 0..<scalars.count {
            let scalar = scalars[position]
            next.clear()
            for pc in current.members {
                let advances: Bool
                switch instructions[pc] {
                case .scalar(let value): advances = scalar.value == value
                case .foldedScalar(let values): advances = values.contains(scalar.value)
                case .characterClass(let set): advances = set.contains(scalar)
                case .any: advances = true
                case .anyExceptNewline: advances = scalar != "\n"
                default: advances = false
                }
                if advances, add(pc + 1, to: &next, at: position + 1, in: scalars, stack: &stack) { return true }
            }
            // Unanchored search: a match may also start at the next position.
            if add(0, to: &next, at: position + 1, in: scalars, stack: &stack) { return true }
            swap(&current, &next)
        }
        return false
    }

    /// Adds `pc` and everything reachable from it without consuming input; true on reaching `match`.
    private func add(
        _ start: Int, to list: inout ThreadList, at position: Int, in scalars: [Unicode.Scalar], stack: inout [Int]
    ) -> Bool {
        stack.removeAll(keepingCapacity: true)
        stack.append(start)
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            switch instructions[pc] {
            case .match: return true
            case .jump(let target): stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assertion(let assertion):
                if holds(assertion, at: position, in: scalars) { stack.append(pc + 1) }
            default: break
            }
        }
        return false
    }

    private func holds(_ assertion: RegexAssertion, at position: Int, in scalars: [Unicode.Scalar]) -> Bool {
        let before: Unicode.Scalar? = position > 0 ? scalars[position - 1] : nil
        let after: Unicode.Scalar? = position < scalars.count ? scalars[position] : nil
        switch assertion {
        case .beginText: return position == 0
        case .endText: return position == scalars.count
        case .beginLine: return before == nil || before == "\n"
        case .endLine: return after == nil || after == "\n"
        case .wordBoundary: return isWord(before) != isWord(after)
        case .notWordBoundary: return isWord(before) == isWord(after)
        }
    }

    private func isWord(_ scalar: Unicode.Scalar?) -> Bool {
        guard let scalar, scalar.isASCII else { return false }
        let value = scalar.value
        return (value >= 48 && value <= 57) || (value >= 65 && value <= 90) || (value >= 97 && value <= 122)
            || value == 95
    }
}

/// A set of program counters with O(1) insert, membership and clear (a sparse set).
private struct ThreadList {
    private var dense: [Int]
    private var sparse: [Int]
    private(set) var count = 0

    init(capacity: Int) {
        dense = Array(repeating: 0, count: capacity)
        sparse = Array(repeating: 0, count: capacity)
    }

    var members: ArraySlice<Int> { dense[0..<count] }

    /// Inserts `value`; false when it was already present.
    mutating func insert(_ value: Int) -> Bool {
        let slot = sparse[value]
        if slot < count && dense[slot] == value { return false }
        sparse[value] = count
        dense[count] = value
        count += 1
        return true
    }

    mutating func clear() { count = 0 }
}

/// Thompson construction from the parsed expression to instructions.
private struct RegexCompiler {
    var instructions: [CELRegex.Instruction] = []

    mutating func append(_ instruction: CELRegex.Instruction) {
        instructions.append(instruction)
    }

    private mutating func reserve() throws(CELRegexError) -> Int {
        guard instructions.count < CELRegex.maximumInstructions else {
            throw CELRegexError(message: "expression too large")
        }
        instructions.append(.match)
        return instructions.count - 1
    }

    mutating func emit(_ node: RegexNode) throws(CELRegexError) {
        guard instructions.count < CELRegex.maximumInstructions else {
            throw CELRegexError(message: "expression too large")
        }
        switch node {
        case .empty:
            break
        case .literal(let scalar, let caseInsensitive):
            if caseInsensitive {
                let variants = RegexCase.variants(of: scalar)
                append(variants.count == 1 ? .scalar(scalar.value) : .foldedScalar(variants))
            } else {
                append(.scalar(scalar.value))
            }
        case .characterClass(let set):
            append(.characterClass(set))
        case .anyCharacter(let includingNewline):
            append(includingNewline ? .any : .anyExceptNewline)
        case .assertion(let assertion):
            append(.assertion(assertion))
        case .concatenation(let items):
            for item in items { try emit(item) }
        case .alternation(let branches):
            var jumps: [Int] = []
            for (index, branch) in branches.enumerated() {
                if index < branches.count - 1 {
                    let split = try reserve()
                    try emit(branch)
                    jumps.append(try reserve())
                    instructions[split] = .split(split + 1, instructions.count)
                } else {
                    try emit(branch)
                }
            }
            for jump in jumps { instructions[jump] = .jump(instructions.count) }
        case .repetition(let inner, let minimum, let maximum, let greedy):
            for _ in 0..<minimum { try emit(inner) }
            if let maximum {
                // Optional copies: x{2,4} = xx(x(x)?)?
                var splits: [Int] = []
                for _ in minimum..<maximum {
                    let split = try reserve()
                    splits.append(split)
                    try emit(inner)
                }
                let end = instructions.count
                for split in splits { instructions[split] = greedy ? .split(split + 1, end) : .split(end, split + 1) }
            } else {
                // Kleene star after the mandatory copies.
                let split = try reserve()
                try emit(inner)
                append(.jump(split))
                let end = instructions.count
                instructions[split] = greedy ? .split(split + 1, end) : .split(end, split + 1)
            }
        }
    }
}
