/// A node of a parsed CEL expression. Macros are already expanded into dedicated node kinds.
final class Expr: Sendable {
    struct MapEntry: Sendable {
        let key: Expr
        let value: Expr
        /// `{?key: optionalValue}`: the entry is present only when the value has a value.
        let isOptional: Bool
    }

    /// One `operator operand` step of a chain such as `a + b - c`.
    struct ChainStep: Sendable {
        /// The binary operator (`_+_`, `_<_`, ...).
        let function: String
        let operand: Expr
        let offset: Int
    }

    struct MessageField: Sendable {
        let name: String
        let value: Expr
        let isOptional: Bool
    }

    enum Kind: Sendable {
        case literal(CELValue)
        /// A simple name; `rootScoped` when written with a leading dot (`.name`).
        case identifier(String, rootScoped: Bool)
        /// `operand.field`, or `operand.?field` when `optional`.
        case select(Expr, field: String, optional: Bool)
        /// `has(operand.field)`.
        case presenceTest(Expr, field: String)
        /// A left-associative chain of binary operators of one precedence, `first op1 e1 op2 e2 ...`,
        /// evaluated as `((first op1 e1) op2 e2) ...`. Kept flat so long chains do not nest.
        case operatorChain(first: Expr, steps: [ChainStep])
        /// A global function call or an operator (`_+_`, `_[_]`, ...).
        case call(function: String, arguments: [Expr])
        /// `target.function(arguments)`.
        case memberCall(target: Expr, function: String, arguments: [Expr])
        /// `[a, ?b]`: `optionalElements[i]` marks `?` elements.
        case list(elements: [Expr], optionalElements: [Bool])
        case map(entries: [MapEntry])
        /// `Name{field: value}`: parsed for error reporting, not evaluable without message types.
        case message(typeName: String, fields: [MessageField])
        case comprehension(Comprehension)
        /// `cel.bind(variable, value, body)`.
        case bind(variable: String, value: Expr, body: Expr)
        /// `cel.block([slot0, slot1, ...], result)`: `@indexN` names slot N.
        case block(slots: [Expr], result: Expr)
    }

    let kind: Kind
    /// UTF-8 offset in the source, for error messages.
    let offset: Int
    /// The number of nodes on the longest path from this node to a leaf.
    let height: Int
    /// The number of nodes in this subtree (a static cost estimate).
    let size: Int

    init(_ kind: Kind, offset: Int) {
        self.kind = kind
        self.offset = offset
        var height = 0
        var size = 1
        for child in Expr.children(of: kind) {
            height = max(height, child.height)
            size += child.size
        }
        self.height = height + 1
        self.size = size
    }

    static func children(of kind: Kind) -> [Expr] {
        switch kind {
        case .literal, .identifier: []
        case .select(let operand, _, _), .presenceTest(let operand, _): [operand]
        case .operatorChain(let first, let steps): [first] + steps.map(\.operand)
        case .call(_, let arguments): arguments
        case .memberCall(let target, _, let arguments): [target] + arguments
        case .list(let elements, _): elements
        case .map(let entries): entries.flatMap { [$0.key, $0.value] }
        case .message(_, let fields): fields.map(\.value)
        case .comprehension(let comprehension):
            [comprehension.range, comprehension.body] + (comprehension.filter.map { [$0] } ?? [])
        case .bind(_, let value, let body): [value, body]
        case .block(let slots, let result): slots + [result]
        }
    }
}

/// A macro that iterates over a list or map (or binds an optional's value).
struct Comprehension: Sendable {
    enum Kind: Sendable {
        case all, exists, existsOne, map, filter
        case transformList, transformMap, transformMapEntry
        /// `opt.optMap(x, body)` / `opt.optFlatMap(x, body)`: `variable` binds the optional's value.
        case optionalMap, optionalFlatMap
    }

    let kind: Kind
    let range: Expr
    /// The element (list) or key (map) variable; for two-variable forms the index or key.
    let variable: String
    /// The value variable of two-variable forms.
    let secondVariable: String?
    /// The filter of `map(x, filter, transform)` and four-argument `transformList`/`transformMap`.
    let filter: Expr?
    /// The predicate or transform.
    let body: Expr
}

/// Internal names of operators, as CEL's own AST spells them.
enum OperatorName {
    static let conditional = "_?_:_"
    static let logicalAnd = "_&&_"
    static let logicalOr = "_||_"
    static let logicalNot = "!_"
    static let negate = "-_"
    static let equals = "_==_"
    static let notEquals = "_!=_"
    static let less = "_<_"
    static let lessOrEqual = "_<=_"
    static let greater = "_>_"
    static let greaterOrEqual = "_>=_"
    static let add = "_+_"
    static let subtract = "_-_"
    static let multiply = "_*_"
    static let divide = "_/_"
    static let modulo = "_%_"
    static let `in` = "@in"
    static let index = "_[_]"
    static let optionalIndex = "_[?_]"
}
