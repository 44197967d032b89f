/// Finds the names an expression reads but does not bind itself (see
/// ``CELParsedExpression/freeIdentifiers``).
enum FreeIdentifierCollector {
    static func collect(_ root: Expr, functions: FunctionRegistry) -> Set<String> {
        var found: Set<String> = []
        visit(root, bound: [], functions: functions, found: &found)
        return found
    }

    private static func qualifiedName(_ expression: Expr) -> [String]? {
        switch expression.kind {
        case .identifier(let name, _): return [name]
        case .select(let operand, let field, false): return qualifiedName(operand).map { $0 + [field] }
        default: return nil
        }
    }

    private static func isTypeName(_ segments: [String]) -> Bool {
        for length in 1...segments.count where CELType.denotable[segments[0..<length].joined(separator: ".")] != nil {
            return true
        }
        return false
    }

    private static func visit(
        _ expression: Expr, bound: Set<String>, functions: FunctionRegistry, found: inout Set<String>
    ) {
        switch expression.kind {
        case .identifier(let name, let rootScoped):
            if name.hasPrefix("@") { return }
            if rootScoped || !bound.contains(name), !isTypeName([name]) { found.insert(name) }
        case .select(let operand, _, let optional):
            if !optional, let segments = qualifiedName(expression), !bound.contains(segments[0]), isTypeName(segments) {
                return
            }
            visit(operand, bound: bound, functions: functions, found: &found)
        case .memberCall(let target, let function, let arguments):
            if let segments = qualifiedName(target), !bound.contains(segments[0]),
                functions.hasGlobal((segments + [function]).joined(separator: "."))
            {
                // A namespaced function such as math.greatest: the target is not a variable.
            } else {
                visit(target, bound: bound, functions: functions, found: &found)
            }
            for argument in arguments { visit(argument, bound: bound, functions: functions, found: &found) }
        case .comprehension(let comprehension):
            visit(comprehension.range, bound: bound, functions: functions, found: &found)
            var inner = bound
            inner.insert(comprehension.variable)
            if let second = comprehension.secondVariable { inner.insert(second) }
            if let filter = comprehension.filter { visit(filter, bound: inner, functions: functions, found: &found) }
            visit(comprehension.body, bound: inner, functions: functions, found: &found)
        case .bind(let variable, let value, let body):
            visit(value, bound: bound, functions: functions, found: &found)
            visit(body, bound: bound.union([variable]), functions: functions, found: &found)
        default:
            for child in Expr.children(of: expression.kind) {
                visit(child, bound: bound, functions: functions, found: &found)
            }
        }
    }
}
