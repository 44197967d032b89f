/// Declarations and settings under which expressions compile: the variables an expression may
/// reference, extra functions, the name-resolution container and evaluation limits.
///
/// ```swift
/// let environment = CELEnvironment(variables: ["data", "id", "time"])
/// let program = try environment.compile("data.amount * 2")
/// let value = try program.evaluate(["data": CELValue(json: payload)])
/// ```
///
/// An environment and the programs it compiles are immutable and `Sendable`: compile once, then
/// evaluate from any number of threads.
public struct CELEnvironment: Sendable {
    /// Limits and switches for compilation and evaluation.
    public struct Options: Sendable {
        /// The namespace in which names resolve (`a.b` in container `x.y` tries `x.y.a.b`, `x.a.b`,
        /// then `a.b`). Empty by default.
        public var container = ""
        /// The cost budget of one evaluation (see ``CELProgram``); nil means unlimited.
        public var costLimit: Int64? = CELEnvironment.defaultCostLimit
        /// The deepest nesting an expression may have: parentheses, brackets, braces, call
        /// arguments, `?:` chains, unary operators and member selections all count; long chains of
        /// binary operators (`a + b + c ...`, `x && y && z ...`) do not. Parsing, planning and
        /// evaluation recurse once per level, so this bounds their stack use (about 256 KiB in
        /// release builds at the default of 100).
        public var maximumNestingDepth = 100
        /// The longest expression source accepted, in UTF-8 bytes.
        public var maximumSourceLength = 100_000
        /// Whether `has`, `all`, `exists`, `map`, `cel.bind`... expand as macros.
        public var macrosEnabled = true
        /// When false (the default), referencing an undeclared variable or an unknown function is a
        /// compile error. When true, such references compile and fail only if evaluated, and
        /// undeclared names are looked up in the activation at run time.
        public var allowsUndeclaredReferences = false

        public init() {}
    }

    /// The default cost budget of one evaluation: about a million node evaluations.
    public static let defaultCostLimit: Int64 = 1_000_000

    /// Declared variable names (qualified names such as `a.b` are allowed).
    public let variables: Set<String>
    public let options: Options
    let registry: FunctionRegistry

    /// - Parameters:
    ///   - variables: the names expressions may read; their values come from the activation.
    ///   - functions: application functions, added to (or replacing) the standard library.
    public init(variables: some Sequence<String> = [], functions: [CELFunction] = [], options: Options = Options()) {
        self.variables = Set(variables)
        self.options = options
        var registry = StandardLibrary.registry
        for function in functions { registry.add(function) }
        self.registry = registry
    }

    /// Parses an expression without planning it, e.g. to inspect its free identifiers.
    public func parse(_ source: String) throws(CELCompileError) -> CELParsedExpression {
        let text = SourceText(source)
        let parserOptions = ParserOptions(
            maximumDepth: options.maximumNestingDepth, maximumSourceLength: options.maximumSourceLength,
            macrosEnabled: options.macrosEnabled)
        let root: Expr
        do {
            root = try Parser.parse(text, options: parserOptions)
        } catch {
            throw CELCompileError(message: error.message, offset: error.offset, source: text)
        }
        let free = FreeIdentifierCollector.collect(root, functions: registry)
        return CELParsedExpression(source: text, root: root, freeIdentifiers: free)
    }

    /// Parses and plans an expression into a reusable program.
    public func compile(_ source: String) throws(CELCompileError) -> CELProgram {
        try compile(try parse(source))
    }

    /// Plans a parsed expression into a reusable program.
    public func compile(_ parsed: CELParsedExpression) throws(CELCompileError) -> CELProgram {
        var planner = Planner(environment: self, source: parsed.sourceText)
        let root: any EvalNode
        do {
            root = try planner.plan(parsed.root)
        } catch {
            throw CELCompileError(message: error.message, offset: error.offset, source: parsed.sourceText)
        }
        return CELProgram(
            source: parsed.source, freeIdentifiers: parsed.freeIdentifiers, root: root,
            globalNames: planner.globalNames, localSlotCount: planner.localSlotCount,
            costLimit: options.costLimit ?? Int64.max)
    }
}

/// A parsed expression.
public struct CELParsedExpression: Sendable {
    let sourceText: SourceText
    let root: Expr

    /// The expression's source text.
    public var source: String { sourceText.text }

    /// The root names of the variables the expression references that it does not bind itself.
    ///
    /// `order.created` reports `order`; `[1].map(x, x + y)` reports `y` (not `x`); `cel.bind(v, 1, v)`
    /// reports nothing. Built-in type names (`int`, `google.protobuf.Timestamp`...) and function
    /// namespaces (`math` in `math.greatest(...)`) are not variables and are not reported.
    public let freeIdentifiers: Set<String>

    init(source: SourceText, root: Expr, freeIdentifiers: Set<String>) {
        sourceText = source
        self.root = root
        self.freeIdentifiers = freeIdentifiers
    }
}
