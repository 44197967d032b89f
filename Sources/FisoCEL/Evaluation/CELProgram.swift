/// A compiled expression, ready to evaluate any number of times, from any thread.
///
/// Identifiers, functions and macros are resolved when the program is compiled; evaluating it
/// walks a tree of pre-resolved nodes. Each evaluation has a cost budget
/// (``CELEnvironment/Options/costLimit``): every node evaluation inside a comprehension costs one
/// unit per iteration, and functions whose work grows with their input (concatenation, `join`,
/// `matches`, `in` on lists...) cost in proportion to their input. Running out is an evaluation
/// error, so a hostile expression cannot hang the caller.
public struct CELProgram: Sendable {
    /// The expression's source text.
    public let source: String
    /// See ``CELParsedExpression/freeIdentifiers``.
    public let freeIdentifiers: Set<String>
    let root: any EvalNode
    /// The variables the program reads, by slot.
    let globalNames: [String]
    let localSlotCount: Int
    let costLimit: Int64

    /// The value of the expression for the given variables.
    public func evaluate(_ activation: CELActivation = CELActivation()) throws(CELEvaluationError) -> CELValue {
        try evaluateMeasuringCost(activation).value
    }

    /// The value of the expression for the given variables.
    public func evaluate(_ variables: [String: CELValue]) throws(CELEvaluationError) -> CELValue {
        try evaluate(CELActivation(variables))
    }

    /// The value of the expression and the cost units the evaluation spent.
    public func evaluateMeasuringCost(_ activation: CELActivation) throws(CELEvaluationError) -> (
        value: CELValue, cost: Int64
    ) {
        if let constant = root.constantValue { return (constant, 0) }
        let frame = EvaluationFrame(
            globalNames: globalNames, activation: activation, localCount: localSlotCount, costLimit: costLimit)
        let value = try root.evaluate(frame)
        return (value, frame.spentCost)
    }
}
