/// Turns a parsed expression into a tree of evaluation nodes: resolves names against local
/// bindings, declared variables and type names; resolves functions to their implementations;
/// assigns slots to macro variables; and folds constant sub-expressions.
struct Planner {
    let environment: CELEnvironment
    let source: SourceText
    private(set) var globalNames: [String] = []
    private var globalIndex: [String: Int] = [:]
    /// Visible local names, innermost last.
    private var scopes: [(name: String, node: any EvalNode)] = []
    private var nextSlot = 0
    private(set) var localSlotCount = 0
    /// `""`, `"a."`, `"a.b."` for container `a.b`, most specific first.
    private let containerPrefixes: [String]

    init(environment: CELEnvironment, source: SourceText) {
        self.environment = environment
        self.source = source
        var prefixes: [String] = []
        var container = environment.options.container
        while !container.isEmpty {
            prefixes.append(container + ".")
            if let dot = container.lastIndex(of: ".") {
                container = String(container[..<dot])
            } else {
                container = ""
            }
        }
        prefixes.append("")
        containerPrefixes = prefixes
    }

    private var registry: FunctionRegistry { environment.registry }
    private var strict: Bool { !environment.options.allowsUndeclaredReferences }

    private func error(_ message: String, at offset: Int) -> SyntaxProblem {
        SyntaxProblem(message: message, offset: offset)
    }

    // MARK: Scopes

    private func local(_ name: String) -> (any EvalNode)? {
        for scope in scopes.reversed() where scope.name == name { return scope.node }
        return nil
    }

    private mutating func allocateSlot() -> Int {
        let slot = nextSlot
        nextSlot += 1
        localSlotCount = max(localSlotCount, nextSlot)
        return slot
    }

    private mutating func pushLocal(_ name: String) -> Int {
        let slot = allocateSlot()
        scopes.append((name, LocalVariableNode(slot: slot, name: name)))
        return slot
    }

    private mutating func popLocals(_ count: Int) {
        scopes.removeLast(count)
        nextSlot -= count
    }

    private mutating func global(_ name: String) -> any EvalNode {
        if let index = globalIndex[name] { return GlobalVariableNode(index: index, name: name) }
        let index = globalNames.count
        globalNames.append(name)
        globalIndex[name] = index
        return GlobalVariableNode(index: index, name: name)
    }

    private func candidates(_ name: String, rootScoped: Bool) -> [String] {
        rootScoped ? [name] : containerPrefixes.map { $0 + name }
    }

    // MARK: Planning

    /// Plans one node. Each kind is planned by its own non-inlined method so this function, which
    /// recurses once per nesting level, keeps a small stack frame.
    mutating func plan(_ expression: Expr) throws(SyntaxProblem) -> any EvalNode {
        switch expression.kind {
        case .literal(let value):
            return ConstantNode(value)
        case .identifier(let name, let rootScoped):
            return try planIdentifier(name, rootScoped: rootScoped, offset: expression.offset)
        case .select(let operand, let field, let optional):
            return try planSelect(expression, operand: operand, field: field, optional: optional)
        case .presenceTest(let operand, let field):
            return try planPresenceTest(operand, field: field)
        case .operatorChain(let first, let steps):
            return try planOperatorChain(first, steps)
        case .call(let function, let arguments):
            return try planCall(function, arguments, offset: expression.offset)
        case .memberCall(let target, let function, let arguments):
            return try planMemberCall(target, function, arguments, offset: expression.offset)
        case .list(let elements, let optionalElements):
            return try planList(elements, optionalElements: optionalElements)
        case .map(let entries):
            return try planMap(entries)
        case .message(let typeName, _):
            throw error(
                "cannot construct message '\(typeName)': protocol buffer message types are not supported",
                at: expression.offset)
        case .comprehension(let comprehension):
            return try planComprehension(comprehension)
        case .bind(let variable, let value, let body):
            return try planBind(variable, value: value, body: body)
        case .block(let slots, let result):
            return try planBlock(slots, result: result)
        }
    }

    @inline(never)
    private mutating func planIdentifier(_ name: String, rootScoped: Bool, offset: Int) throws(SyntaxProblem)
        -> any EvalNode
    {
        if !rootScoped, let node = local(name) { return node }
        return try resolveQualified(root: name, rootScoped: rootScoped, fields: [], offset: offset)
    }

    @inline(never)
    private mutating func planSelect(_ expression: Expr, operand: Expr, field: String, optional: Bool)
        throws(SyntaxProblem) -> any EvalNode
    {
        if !optional, let parts = qualifiedParts(expression), parts.rootScoped || local(parts.root) == nil {
            return try resolveQualified(
                root: parts.root, rootScoped: parts.rootScoped, fields: parts.fields, offset: expression.offset)
        }
        let operandNode = try plan(operand)
        if optional {
            return fold(OptionalSelectNode(operand: operandNode, field: field), when: operandNode.constantValue != nil)
        }
        return selecting([field], from: operandNode)
    }

    @inline(never)
    private mutating func planPresenceTest(_ operand: Expr, field: String) throws(SyntaxProblem) -> any EvalNode {
        let operandNode = try plan(operand)
        return fold(PresenceTestNode(operand: operandNode, field: field), when: operandNode.constantValue != nil)
    }

    @inline(never)
    private mutating func planList(_ elements: [Expr], optionalElements: [Bool]) throws(SyntaxProblem)
        -> any EvalNode
    {
        var nodes: [any EvalNode] = []
        nodes.reserveCapacity(elements.count)
        for element in elements { nodes.append(try plan(element)) }
        let node = ListLiteralNode(elements: nodes, optionalElements: optionalElements)
        return fold(node, when: nodes.allSatisfy { $0.constantValue != nil })
    }

    @inline(never)
    private mutating func planMap(_ entries: [Expr.MapEntry]) throws(SyntaxProblem) -> any EvalNode {
        var keys: [any EvalNode] = []
        var values: [any EvalNode] = []
        for entry in entries {
            keys.append(try plan(entry.key))
            values.append(try plan(entry.value))
        }
        let node = MapLiteralNode(keys: keys, values: values, optionalEntries: entries.map(\.isOptional))
        return fold(node, when: (keys + values).allSatisfy { $0.constantValue != nil })
    }

    @inline(never)
    private mutating func planBind(_ variable: String, value: Expr, body: Expr) throws(SyntaxProblem) -> any EvalNode {
        let valueNode = try plan(value)
        let slot = pushLocal(variable)
        let bodyNode = try plan(body)
        popLocals(1)
        return BindNode(slot: slot, value: valueNode, body: bodyNode)
    }

    @inline(never)
    private mutating func planBlock(_ slots: [Expr], result: Expr) throws(SyntaxProblem) -> any EvalNode {
        let firstSlot = nextSlot
        for (index, slotExpression) in slots.enumerated() {
            let node = try plan(slotExpression)
            let slot = allocateSlot()
            scopes.append(("@index\(index)", LazySlotNode(slot: slot, expression: node)))
        }
        let resultNode = try plan(result)
        popLocals(slots.count)
        return BlockNode(firstSlot: firstSlot, slotCount: slots.count, result: resultNode)
    }

    /// Evaluates a node at compile time when its inputs are constant and the evaluation succeeds;
    /// failures stay in the program so they surface only if that part is evaluated.
    private func fold(_ node: any EvalNode, when constant: Bool) -> any EvalNode {
        guard constant else { return node }
        let frame = EvaluationFrame.forConstantFolding()
        do {
            return ConstantNode(try node.evaluate(frame))
        } catch {
            return node
        }
    }

    // MARK: Names

    private func qualifiedParts(_ expression: Expr) -> (root: String, rootScoped: Bool, fields: [String])? {
        switch expression.kind {
        case .identifier(let name, let rootScoped): return (name, rootScoped, [])
        case .select(let operand, let field, false):
            guard let parts = qualifiedParts(operand) else { return nil }
            return (parts.root, parts.rootScoped, parts.fields + [field])
        default: return nil
        }
    }

    /// Resolves `root.field1.field2...` to the longest prefix naming a declared variable (or a type),
    /// then selects the remaining fields.
    private mutating func resolveQualified(root: String, rootScoped: Bool, fields: [String], offset: Int)
        throws(SyntaxProblem) -> any EvalNode
    {
        let segments = [root] + fields
        for prefixLength in stride(from: segments.count, to: 0, by: -1) {
            let name = segments[0..<prefixLength].joined(separator: ".")
            for candidate in candidates(name, rootScoped: rootScoped) where environment.variables.contains(candidate) {
                return selecting(segments[prefixLength...], from: global(candidate))
            }
        }
        for prefixLength in stride(from: segments.count, to: 0, by: -1) {
            let name = segments[0..<prefixLength].joined(separator: ".")
            for candidate in candidates(name, rootScoped: rootScoped) {
                if let type = CELType.denotable[candidate] {
                    return selecting(segments[prefixLength...], from: ConstantNode(.type(type)))
                }
            }
        }
        guard !strict else {
            throw error("undeclared reference to '\(segments.joined(separator: "."))'", at: offset)
        }
        var dynamicCandidates: [(name: String, fields: [String])] = []
        for prefixLength in stride(from: segments.count, to: 0, by: -1) {
            let name = segments[0..<prefixLength].joined(separator: ".")
            for candidate in candidates(name, rootScoped: rootScoped) {
                dynamicCandidates.append((candidate, Array(segments[prefixLength...])))
            }
        }
        return DynamicIdentifierNode(candidates: dynamicCandidates, displayName: root)
    }

    /// `base.f1.f2...` as one path node (extending `base` when it already is one).
    private func selecting(_ fields: some Collection<String>, from base: any EvalNode) -> any EvalNode {
        guard !fields.isEmpty else { return base }
        if let path = base as? SelectPathNode {
            return SelectPathNode(operand: path.operand, fields: path.fields + fields)
        }
        return fold(SelectPathNode(operand: base, fields: Array(fields)), when: base.constantValue != nil)
    }

    // MARK: Calls

    @inline(never)
    private mutating func planCall(_ function: String, _ arguments: [Expr], offset: Int) throws(SyntaxProblem)
        -> any EvalNode
    {
        switch function {
        case OperatorName.logicalAnd, OperatorName.logicalOr:
            return try planLogical(function, arguments)
        case OperatorName.conditional:
            return try planConditional(arguments)
        case "dyn" where arguments.count == 1:
            return try plan(arguments[0])
        default:
            break
        }
        let rootScoped = function.hasPrefix(".")
        let name = rootScoped ? String(function.dropFirst()) : function
        let argumentNodes = try planArguments(arguments)
        for candidate in candidates(name, rootScoped: rootScoped) {
            if let registered = registry.global(candidate, argumentCount: arguments.count) {
                return makeCall(registered, argumentNodes)
            }
        }
        return try unresolvedFunction(name, argumentCount: arguments.count, offset: offset)
    }

    private mutating func planArguments(_ arguments: [Expr]) throws(SyntaxProblem) -> [any EvalNode] {
        var nodes: [any EvalNode] = []
        nodes.reserveCapacity(arguments.count)
        for argument in arguments { nodes.append(try plan(argument)) }
        return nodes
    }

    @inline(never)
    private mutating func planOperatorChain(_ first: Expr, _ steps: [Expr.ChainStep]) throws(SyntaxProblem)
        -> any EvalNode
    {
        var node = try plan(first)
        var chainSteps: [OperatorChainNode.Step] = []
        for step in steps {
            let operand = try plan(step.operand)
            guard let registered = registry.global(step.function, argumentCount: 2),
                case .binary(let function) = registered.implementation
            else { throw error("unknown operator \(step.function)", at: step.offset) }
            // Fold constant prefixes step by step.
            if chainSteps.isEmpty, node.constantValue != nil, operand.constantValue != nil {
                node = fold(BinaryCallNode(function, node, operand), when: true)
                if node.constantValue != nil { continue }
                chainSteps.append(OperatorChainNode.Step(function: function, operand: operand))
                continue
            }
            chainSteps.append(OperatorChainNode.Step(function: function, operand: operand))
        }
        if chainSteps.isEmpty { return node }
        if chainSteps.count == 1, let step = chainSteps.first {
            return BinaryCallNode(step.function, node, step.operand)
        }
        return OperatorChainNode(first: node, steps: chainSteps)
    }

    @inline(never)
    private mutating func planLogical(_ function: String, _ arguments: [Expr]) throws(SyntaxProblem) -> any EvalNode {
        let left = try plan(arguments[0])
        let right = try plan(arguments[1])
        let node: any EvalNode =
            function == OperatorName.logicalAnd ? LogicalNode.and(left, right) : LogicalNode.or(left, right)
        return fold(node, when: left.constantValue != nil && right.constantValue != nil)
    }

    @inline(never)
    private mutating func planConditional(_ arguments: [Expr]) throws(SyntaxProblem) -> any EvalNode {
        let condition = try plan(arguments[0])
        let whenTrue = try plan(arguments[1])
        let whenFalse = try plan(arguments[2])
        if case .bool(let value)? = condition.constantValue { return value ? whenTrue : whenFalse }
        return ConditionalNode(condition, whenTrue, whenFalse)
    }

    @inline(never)
    private mutating func planMemberCall(_ target: Expr, _ function: String, _ arguments: [Expr], offset: Int)
        throws(SyntaxProblem) -> any EvalNode
    {
        // `math.greatest(...)`, `strings.quote(...)`: a namespaced global function.
        if let parts = qualifiedParts(target), parts.rootScoped || local(parts.root) == nil {
            let qualified = ([parts.root] + parts.fields + [function]).joined(separator: ".")
            for candidate in candidates(qualified, rootScoped: parts.rootScoped) {
                if let registered = registry.global(candidate, argumentCount: arguments.count) {
                    return makeCall(registered, try planArguments(arguments))
                }
            }
        }
        let targetNode = try plan(target)
        let argumentNodes = try planArguments(arguments)
        switch (function, argumentNodes.count) {
        case ("or", 1), ("orValue", 1):
            let node = OptionalOrNode(
                optional: targetNode, alternative: argumentNodes[0], unwrapping: function == "orValue")
            return fold(node, when: targetNode.constantValue != nil && argumentNodes[0].constantValue != nil)
        case ("matches", 1):
            if case .string(let pattern)? = argumentNodes[0].constantValue, targetNode.constantValue == nil,
                let regex = try? CELRegex(pattern)
            {
                return PrecompiledMatchNode(target: targetNode, regex: regex)
            }
        default:
            break
        }
        guard let registered = registry.member(function, argumentCount: arguments.count) else {
            return try unresolvedFunction(function, argumentCount: arguments.count + 1, offset: offset, receiver: true)
        }
        return makeCall(registered, [targetNode] + argumentNodes)
    }

    private func unresolvedFunction(_ name: String, argumentCount: Int, offset: Int, receiver: Bool = false)
        throws(SyntaxProblem) -> any EvalNode
    {
        let message: String
        if registry.isKnown(name) {
            let style = receiver ? "a receiver call" : "a global call"
            message =
                "no overload of '\(name)' as \(style) with \(receiver ? argumentCount - 1 : argumentCount) argument(s)"
        } else {
            message = "undeclared reference to function '\(name)'"
        }
        guard !strict else { throw error(message, at: offset) }
        return ErrorNode(CELEvaluationError(.unboundReference, message))
    }

    private func makeCall(_ registered: RegisteredFunction, _ arguments: [any EvalNode]) -> any EvalNode {
        let node: any EvalNode
        switch registered.implementation {
        case .unary(let function) where arguments.count == 1:
            node = UnaryCallNode(function, arguments[0])
        case .binary(let function) where arguments.count == 2:
            node = BinaryCallNode(function, arguments[0], arguments[1])
        case .ternary(let function) where arguments.count == 3:
            node = TernaryCallNode(function, arguments[0], arguments[1], arguments[2])
        case .variadic(let function):
            node = VariadicCallNode(function, arguments)
        default:
            let implementation = registered.implementation
            node = VariadicCallNode(
                { values, frame throws(CELEvaluationError) in
                    try implementation.call(values, frame)
                }, arguments)
        }
        return fold(node, when: registered.isPure && arguments.allSatisfy { $0.constantValue != nil })
    }

    // MARK: Macros

    @inline(never)
    private mutating func planComprehension(_ comprehension: Comprehension) throws(SyntaxProblem) -> any EvalNode {
        let range = try plan(comprehension.range)
        switch comprehension.kind {
        case .optionalMap, .optionalFlatMap:
            let slot = pushLocal(comprehension.variable)
            let body = try plan(comprehension.body)
            popLocals(1)
            return OptionalMapNode(
                optional: range, slot: slot, body: body, flat: comprehension.kind == .optionalFlatMap)
        default:
            break
        }
        let firstSlot = pushLocal(comprehension.variable)
        let secondSlot = comprehension.secondVariable.map { pushLocal($0) }
        let filter = try comprehension.filter.map { (expression) throws(SyntaxProblem) in try plan(expression) }
        let body = try plan(comprehension.body)
        popLocals(secondSlot == nil ? 1 : 2)
        let cost = 1 + comprehension.body.size + (comprehension.filter?.size ?? 0)
        return ComprehensionNode(
            kind: comprehension.kind, range: range, firstSlot: firstSlot, secondSlot: secondSlot, filter: filter,
            body: body, iterationCost: cost, macroName: Planner.macroName(comprehension.kind))
    }

    static func macroName(_ kind: Comprehension.Kind) -> String {
        switch kind {
        case .all: "all"
        case .exists: "exists"
        case .existsOne: "exists_one"
        case .map: "map"
        case .filter: "filter"
        case .transformList: "transformList"
        case .transformMap: "transformMap"
        case .transformMapEntry: "transformMapEntry"
        case .optionalMap: "optMap"
        case .optionalFlatMap: "optFlatMap"
        }
    }
}
