/// Limits and switches that apply while parsing.
struct ParserOptions: Sendable {
    var maximumDepth: Int
    var maximumSourceLength: Int
    var macrosEnabled: Bool
}

/// A recursive-descent parser for the CEL grammar (google/cel-spec `langdef.md`) that expands the
/// standard and extension macros as it goes.
///
/// Recursion is bounded: every nested expression passes through ``parseExpression()``, which counts
/// its depth, and no node is built whose height exceeds the limit, so hostile input such as 100,000
/// parentheses or unary minuses is a compile error rather than a stack overflow.
struct Parser {
    private var lexer: Lexer
    private var token: Token
    private var peeked: Token?
    private let options: ParserOptions
    private var depth = 0
    let source: SourceText

    static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package",
        "namespace", "return", "var", "void", "while",
    ]

    static func parse(_ source: SourceText, options: ParserOptions) throws(SyntaxProblem) -> Expr {
        guard source.bytes.count <= options.maximumSourceLength else {
            throw SyntaxProblem(message: "expression is longer than \(options.maximumSourceLength) bytes", offset: 0)
        }
        var parser = try Parser(source: source, options: options)
        let expression = try parser.parseExpression()
        guard case .end = parser.token.kind else { throw parser.unexpected(expected: "end of expression") }
        return expression
    }

    private init(source: SourceText, options: ParserOptions) throws(SyntaxProblem) {
        self.source = source
        self.options = options
        lexer = Lexer(source: source)
        token = try lexer.next()
    }

    // MARK: Token helpers

    private mutating func advance() throws(SyntaxProblem) {
        if let next = peeked {
            token = next
            peeked = nil
        } else {
            token = try lexer.next()
        }
    }

    private mutating func peek() throws(SyntaxProblem) -> Token {
        if let next = peeked { return next }
        let next = try lexer.next()
        peeked = next
        return next
    }

    private func isPunctuation(_ mark: Token.Punctuation) -> Bool {
        if case .punctuation(let current) = token.kind { return current == mark }
        return false
    }

    private mutating func accept(_ mark: Token.Punctuation) throws(SyntaxProblem) -> Bool {
        guard isPunctuation(mark) else { return false }
        try advance()
        return true
    }

    private mutating func expect(_ mark: Token.Punctuation) throws(SyntaxProblem) {
        guard isPunctuation(mark) else { throw unexpected(expected: "'\(mark.rawValue)'") }
        try advance()
    }

    func error(_ message: String, at offset: Int) -> SyntaxProblem {
        SyntaxProblem(message: message, offset: offset)
    }

    private func unexpected(expected: String) -> SyntaxProblem {
        error("unexpected \(token.kind.displayText), expected \(expected)", at: token.offset)
    }

    /// Builds a node, refusing trees taller than the nesting limit.
    private func make(_ kind: Expr.Kind, at offset: Int) throws(SyntaxProblem) -> Expr {
        let node = Expr(kind, offset: offset)
        guard node.height <= options.maximumDepth else { throw tooDeep(at: offset) }
        return node
    }

    private func tooDeep(at offset: Int) -> SyntaxProblem {
        error("expression nested too deeply (limit \(options.maximumDepth) levels)", at: offset)
    }

    // MARK: Expressions
    //
    // Every nesting level passes through parseExpression (which counts depth) and a handful of
    // small functions; operator chains are parsed with loops and explicit stacks, not recursion.

    private mutating func parseExpression() throws(SyntaxProblem) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= options.maximumDepth else { throw tooDeep(at: token.offset) }
        let condition = try parseLogical()
        guard isPunctuation(.question) else { return condition }
        return try parseConditional(condition)
    }

    @inline(never)
    private mutating func parseConditional(_ condition: Expr) throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        let whenTrue = try parseLogical()
        try expect(.colon)
        let whenFalse = try parseExpression()
        return try make(
            .call(function: OperatorName.conditional, arguments: [condition, whenTrue, whenFalse]), at: offset)
    }

    /// `a || b && c || ...`: chains of `&&` inside chains of `||`, each built as a balanced tree so
    /// long chains stay shallow.
    private mutating func parseLogical() throws(SyntaxProblem) -> Expr {
        var orTerms: [Expr] = []
        var orOffsets: [Int] = []
        while true {
            var andTerms = [try parseBinary()]
            var andOffsets: [Int] = []
            while isPunctuation(.and) {
                andOffsets.append(token.offset)
                try advance()
                andTerms.append(try parseBinary())
            }
            orTerms.append(try balance(andTerms[...], offsets: andOffsets[...], function: OperatorName.logicalAnd))
            guard isPunctuation(.or) else { break }
            orOffsets.append(token.offset)
            try advance()
        }
        return try balance(orTerms[...], offsets: orOffsets[...], function: OperatorName.logicalOr)
    }

    private func balance(_ terms: ArraySlice<Expr>, offsets: ArraySlice<Int>, function: String) throws(SyntaxProblem)
        -> Expr
    {
        if terms.count == 1 { return terms[terms.startIndex] }
        let middle = terms.startIndex + terms.count / 2
        let left = try balance(terms[..<middle], offsets: offsets[..<(middle - 1)], function: function)
        let right = try balance(terms[middle...], offsets: offsets[middle...], function: function)
        return try make(.call(function: function, arguments: [left, right]), at: offsets[middle - 1])
    }

    private func binaryOperator() -> (function: String, precedence: Int)? {
        switch token.kind {
        case .punctuation(.less): (OperatorName.less, 1)
        case .punctuation(.lessEqual): (OperatorName.lessOrEqual, 1)
        case .punctuation(.greater): (OperatorName.greater, 1)
        case .punctuation(.greaterEqual): (OperatorName.greaterOrEqual, 1)
        case .punctuation(.equal): (OperatorName.equals, 1)
        case .punctuation(.notEqual): (OperatorName.notEquals, 1)
        case .inKeyword: (OperatorName.in, 1)
        case .punctuation(.plus): (OperatorName.add, 2)
        case .punctuation(.minus): (OperatorName.subtract, 2)
        case .punctuation(.star): (OperatorName.multiply, 3)
        case .punctuation(.slash): (OperatorName.divide, 3)
        case .punctuation(.percent): (OperatorName.modulo, 3)
        default: nil
        }
    }

    /// An operand while parsing a binary expression: a node, or a chain still growing when `steps`
    /// is not empty.
    private struct PendingOperand {
        var first: Expr
        var steps: [Expr.ChainStep] = []
        var precedence = 0
    }

    /// Relations, additive and multiplicative operators, all left-associative, by operator
    /// precedence with explicit stacks. Runs of one precedence become one flat chain node.
    private mutating func parseBinary() throws(SyntaxProblem) -> Expr {
        var operands = [PendingOperand(first: try parseUnary())]
        var operators: [(function: String, precedence: Int, offset: Int)] = []
        while let (function, precedence) = binaryOperator() {
            while let top = operators.last, top.precedence >= precedence {
                operators.removeLast()
                try reduce(&operands, top)
            }
            operators.append((function, precedence, token.offset))
            try advance()
            operands.append(PendingOperand(first: try parseUnary()))
        }
        while let top = operators.popLast() { try reduce(&operands, top) }
        return try finish(operands[0])
    }

    private func reduce(
        _ operands: inout [PendingOperand], _ operation: (function: String, precedence: Int, offset: Int)
    )
        throws(SyntaxProblem)
    {
        let right = try finish(operands.removeLast())
        let step = Expr.ChainStep(function: operation.function, operand: right, offset: operation.offset)
        let last = operands.count - 1
        if !operands[last].steps.isEmpty && operands[last].precedence == operation.precedence {
            operands[last].steps.append(step)  // in place: the chain grows in amortized constant time
        } else {
            let left = try finish(operands[last])
            operands[last] = PendingOperand(first: left, steps: [step], precedence: operation.precedence)
        }
    }

    private func finish(_ operand: PendingOperand) throws(SyntaxProblem) -> Expr {
        if operand.steps.isEmpty { return operand.first }
        return try make(.operatorChain(first: operand.first, steps: operand.steps), at: operand.first.offset)
    }

    static func precedence(of function: String) -> Int {
        switch function {
        case OperatorName.add, OperatorName.subtract: 2
        case OperatorName.multiply, OperatorName.divide, OperatorName.modulo: 3
        default: 1
        }
    }

    private mutating func parseUnary() throws(SyntaxProblem) -> Expr {
        guard isPunctuation(.not) || isPunctuation(.minus) else { return try parsePostfix(try parsePrimary()) }
        return try parsePrefixed()
    }

    @inline(never)
    private mutating func parsePrefixed() throws(SyntaxProblem) -> Expr {
        let isNot = isPunctuation(.not)
        var offsets: [Int] = []
        while isPunctuation(isNot ? .not : .minus) {
            offsets.append(token.offset)
            guard offsets.count <= options.maximumDepth else { throw tooDeep(at: token.offset) }
            try advance()
        }
        var operand: Expr
        if !isNot, let literal = try negatedLiteral(at: offsets[offsets.count - 1]) {
            offsets.removeLast()
            operand = try parsePostfix(literal)
        } else {
            operand = try parsePostfix(try parsePrimary())
        }
        for offset in offsets.reversed() {
            let function = isNot ? OperatorName.logicalNot : OperatorName.negate
            operand = try make(.call(function: function, arguments: [operand]), at: offset)
        }
        return operand
    }

    /// After a minus, a numeric literal takes the sign itself, so `-9223372036854775808` is valid.
    private mutating func negatedLiteral(at minusOffset: Int) throws(SyntaxProblem) -> Expr? {
        switch token.kind {
        case .intLiteral(let magnitude):
            guard magnitude <= UInt64(Int64.max) + 1 else {
                throw error("integer literal out of range", at: token.offset)
            }
            let value = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
            try advance()
            return try make(.literal(.int(value)), at: minusOffset)
        case .doubleLiteral(let value):
            try advance()
            return try make(.literal(.double(-value)), at: minusOffset)
        default:
            return nil
        }
    }

    /// Selections, method calls, indexing and message construction after a primary expression.
    private mutating func parsePostfix(_ base: Expr) throws(SyntaxProblem) -> Expr {
        var expression = base
        while true {
            if isPunctuation(.dot) {
                expression = try parseSelection(on: expression)
            } else if isPunctuation(.leftBracket) {
                expression = try parseIndex(on: expression)
            } else if isPunctuation(.leftBrace), let typeName = qualifiedName(expression) {
                expression = try parseMessage(typeName: typeName, offset: token.offset)
            } else {
                return expression
            }
        }
    }

    @inline(never)
    private mutating func parseSelection(on expression: Expr) throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        let optional = try accept(.question)
        let name: String
        var quoted = false
        switch token.kind {
        case .identifier(let identifier): name = identifier
        case .quotedIdentifier(let identifier):
            name = identifier
            quoted = true
        default: throw unexpected(expected: "a field or method name after '.'")
        }
        let nameOffset = token.offset
        try advance()
        if !optional && !quoted && isPunctuation(.leftParen) {
            try advance()
            let arguments = try parseArguments(closing: .rightParen)
            return try memberCall(target: expression, function: name, arguments: arguments, offset: nameOffset)
        }
        return try make(.select(expression, field: name, optional: optional), at: offset)
    }

    @inline(never)
    private mutating func parseIndex(on expression: Expr) throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        let optional = try accept(.question)
        let index = try parseExpression()
        try expect(.rightBracket)
        let function = optional ? OperatorName.optionalIndex : OperatorName.index
        return try make(.call(function: function, arguments: [expression, index]), at: offset)
    }

    /// `a.b.c` as a dotted name when the expression is only identifiers and selections.
    private func qualifiedName(_ expression: Expr) -> String? {
        var segments: [String] = []
        var current = expression
        while true {
            switch current.kind {
            case .identifier(let name, let rootScoped):
                segments.append(rootScoped ? "." + name : name)
                return segments.reversed().joined(separator: ".")
            case .select(let operand, let field, false):
                segments.append(field)
                current = operand
            default:
                return nil
            }
        }
    }

    @inline(never)
    private mutating func parseMessage(typeName: String, offset: Int) throws(SyntaxProblem) -> Expr {
        try expect(.leftBrace)
        var fields: [Expr.MessageField] = []
        while !isPunctuation(.rightBrace) {
            let optional = try accept(.question)
            let name: String
            switch token.kind {
            case .identifier(let identifier), .quotedIdentifier(let identifier): name = identifier
            default: throw unexpected(expected: "a field name")
            }
            try advance()
            try expect(.colon)
            fields.append(Expr.MessageField(name: name, value: try parseExpression(), isOptional: optional))
            if !(try accept(.comma)) { break }
        }
        try expect(.rightBrace)
        return try make(.message(typeName: typeName, fields: fields), at: offset)
    }

    private mutating func parseArguments(closing: Token.Punctuation) throws(SyntaxProblem) -> [Expr] {
        var arguments: [Expr] = []
        if try accept(closing) { return arguments }
        while true {
            arguments.append(try parseExpression())
            if try accept(closing) { return arguments }
            guard try accept(.comma) else { throw unexpected(expected: "',' or '\(closing.rawValue)'") }
        }
    }

    private mutating func parsePrimary() throws(SyntaxProblem) -> Expr {
        switch token.kind {
        case .identifier(let name):
            let offset = token.offset
            try advance()
            return try identifierOrCall(name, rootScoped: false, offset: offset)
        case .punctuation(.dot):
            return try parseRootScoped()
        case .punctuation(.leftParen):
            return try parseParenthesized()
        case .punctuation(.leftBracket):
            return try parseList()
        case .punctuation(.leftBrace):
            return try parseMap()
        default:
            return try parseLiteral()
        }
    }

    @inline(never)
    private mutating func parseLiteral() throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        let value: CELValue
        switch token.kind {
        case .intLiteral(let magnitude):
            guard let exact = Int64(exactly: magnitude) else { throw error("integer literal out of range", at: offset) }
            value = .int(exact)
        case .uintLiteral(let number): value = .uint(number)
        case .doubleLiteral(let number): value = .double(number)
        case .stringLiteral(let text): value = .string(text)
        case .bytesLiteral(let bytes): value = .bytes(bytes)
        case .trueKeyword: value = .bool(true)
        case .falseKeyword: value = .bool(false)
        case .nullKeyword: value = .null
        default: throw unexpected(expected: "an expression")
        }
        try advance()
        return try make(.literal(value), at: offset)
    }

    @inline(never)
    private mutating func parseRootScoped() throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        guard case .identifier(let name) = token.kind else { throw unexpected(expected: "an identifier after '.'") }
        try advance()
        return try identifierOrCall(name, rootScoped: true, offset: offset)
    }

    @inline(never)
    private mutating func parseParenthesized() throws(SyntaxProblem) -> Expr {
        try advance()
        let inner = try parseExpression()
        try expect(.rightParen)
        return inner
    }

    @inline(never)
    private mutating func identifierOrCall(_ name: String, rootScoped: Bool, offset: Int) throws(SyntaxProblem)
        -> Expr
    {
        if Parser.reservedWords.contains(name) {
            throw error("reserved identifier '\(name)' cannot be used here", at: offset)
        }
        guard isPunctuation(.leftParen) else {
            return try make(.identifier(name, rootScoped: rootScoped), at: offset)
        }
        try advance()
        let arguments = try parseArguments(closing: .rightParen)
        return try globalCall(name, rootScoped: rootScoped, arguments: arguments, offset: offset)
    }

    private func globalCall(_ name: String, rootScoped: Bool, arguments: [Expr], offset: Int) throws(SyntaxProblem)
        -> Expr
    {
        if options.macrosEnabled, !rootScoped, name == "has" {
            guard arguments.count == 1 else { throw error("has() takes exactly one argument", at: offset) }
            guard case .select(let operand, let field, false) = arguments[0].kind else {
                throw error("invalid argument to has() macro: expected a field selection such as has(m.f)", at: offset)
            }
            return try make(.presenceTest(operand, field: field), at: offset)
        }
        return try make(.call(function: rootScoped ? "." + name : name, arguments: arguments), at: offset)
    }

    @inline(never)
    private mutating func parseList() throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        var elements: [Expr] = []
        var optional: [Bool] = []
        while !isPunctuation(.rightBracket) {
            optional.append(try accept(.question))
            elements.append(try parseExpression())
            if !(try accept(.comma)) { break }
        }
        try expect(.rightBracket)
        return try make(.list(elements: elements, optionalElements: optional), at: offset)
    }

    @inline(never)
    private mutating func parseMap() throws(SyntaxProblem) -> Expr {
        let offset = token.offset
        try advance()
        var entries: [Expr.MapEntry] = []
        while !isPunctuation(.rightBrace) {
            let optional = try accept(.question)
            let key = try parseExpression()
            try expect(.colon)
            let value = try parseExpression()
            entries.append(Expr.MapEntry(key: key, value: value, isOptional: optional))
            if !(try accept(.comma)) { break }
        }
        try expect(.rightBrace)
        return try make(.map(entries: entries), at: offset)
    }

    // MARK: Macros

    private func simpleName(_ expression: Expr, role: String) throws(SyntaxProblem) -> String {
        guard case .identifier(let name, false) = expression.kind else {
            throw error("\(role) must be a simple name", at: expression.offset)
        }
        return name
    }

    private func intLiteral(_ expression: Expr) -> Int64? {
        if case .literal(.int(let value)) = expression.kind, value >= 0 { return value }
        return nil
    }

    private func memberCall(target: Expr, function: String, arguments: [Expr], offset: Int) throws(SyntaxProblem)
        -> Expr
    {
        guard options.macrosEnabled else {
            return try make(.memberCall(target: target, function: function, arguments: arguments), at: offset)
        }
        func comprehension(_ kind: Comprehension.Kind, twoVariables: Bool, filtered: Bool) throws(SyntaxProblem)
            -> Expr
        {
            let variable = try simpleName(arguments[0], role: "the iteration variable of \(function)()")
            var secondVariable: String?
            var next = 1
            if twoVariables {
                let second = try simpleName(arguments[1], role: "the second iteration variable of \(function)()")
                guard second != variable else {
                    throw error("\(function)() needs two different variable names", at: arguments[1].offset)
                }
                secondVariable = second
                next = 2
            }
            let filter: Expr? = filtered ? arguments[next] : nil
            let body = arguments[filtered ? next + 1 : next]
            let node = Comprehension(
                kind: kind, range: target, variable: variable, secondVariable: secondVariable, filter: filter,
                body: body)
            return try make(.comprehension(node), at: offset)
        }
        switch (function, arguments.count) {
        case ("all", 2): return try comprehension(.all, twoVariables: false, filtered: false)
        case ("all", 3): return try comprehension(.all, twoVariables: true, filtered: false)
        case ("exists", 2): return try comprehension(.exists, twoVariables: false, filtered: false)
        case ("exists", 3): return try comprehension(.exists, twoVariables: true, filtered: false)
        case ("exists_one", 2), ("existsOne", 2):
            return try comprehension(.existsOne, twoVariables: false, filtered: false)
        case ("exists_one", 3), ("existsOne", 3):
            return try comprehension(.existsOne, twoVariables: true, filtered: false)
        case ("map", 2): return try comprehension(.map, twoVariables: false, filtered: false)
        case ("map", 3): return try comprehension(.map, twoVariables: false, filtered: true)
        case ("filter", 2): return try comprehension(.filter, twoVariables: false, filtered: false)
        case ("transformList", 3): return try comprehension(.transformList, twoVariables: true, filtered: false)
        case ("transformList", 4): return try comprehension(.transformList, twoVariables: true, filtered: true)
        case ("transformMap", 3): return try comprehension(.transformMap, twoVariables: true, filtered: false)
        case ("transformMap", 4): return try comprehension(.transformMap, twoVariables: true, filtered: true)
        case ("transformMapEntry", 3): return try comprehension(.transformMapEntry, twoVariables: true, filtered: false)
        case ("transformMapEntry", 4): return try comprehension(.transformMapEntry, twoVariables: true, filtered: true)
        case ("optMap", 2): return try comprehension(.optionalMap, twoVariables: false, filtered: false)
        case ("optFlatMap", 2): return try comprehension(.optionalFlatMap, twoVariables: false, filtered: false)
        default: break
        }
        if case .identifier("cel", false) = target.kind {
            switch (function, arguments.count) {
            case ("bind", 3):
                let variable = try simpleName(arguments[0], role: "the variable of cel.bind()")
                return try make(.bind(variable: variable, value: arguments[1], body: arguments[2]), at: offset)
            case ("block", 2):
                guard case .list(let slots, let optional) = arguments[0].kind, !optional.contains(true) else {
                    throw error("cel.block() needs a list literal of expressions", at: arguments[0].offset)
                }
                return try make(.block(slots: slots, result: arguments[1]), at: offset)
            case ("index", 1):
                guard let slot = intLiteral(arguments[0]) else {
                    throw error("cel.index() needs a non-negative int literal", at: arguments[0].offset)
                }
                return try make(.identifier("@index\(slot)", rootScoped: false), at: offset)
            case ("iterVar", 2), ("accuVar", 2):
                guard let first = intLiteral(arguments[0]), let second = intLiteral(arguments[1]) else {
                    throw error("cel.\(function)() needs two non-negative int literals", at: offset)
                }
                let prefix = function == "iterVar" ? "@it" : "@ac"
                return try make(.identifier("\(prefix):\(first):\(second)", rootScoped: false), at: offset)
            default: break
            }
        }
        return try make(.memberCall(target: target, function: function, arguments: arguments), at: offset)
    }
}
