import FisoCEL
import FisoCELConformance
import FisoJSON

/// Compiles and evaluates `source` with the given variables declared and bound.
func evaluate(
    _ source: String, _ variables: [String: CELValue] = [:], options: CELEnvironment.Options = .init()
) throws -> CELValue {
    let environment = CELEnvironment(variables: variables.keys, options: options)
    return try environment.compile(source).evaluate(variables)
}

/// The evaluation error of `source`, or nil when it evaluates.
func evaluationError(_ source: String, _ variables: [String: CELValue] = [:]) throws -> CELEvaluationError? {
    let environment = CELEnvironment(variables: variables.keys)
    let program = try environment.compile(source)
    do {
        _ = try program.evaluate(variables)
        return nil
    } catch {
        return error
    }
}

/// The compile error of `source`, or nil when it compiles.
func compileError(_ source: String, variables: [String] = [], options: CELEnvironment.Options = .init())
    -> CELCompileError?
{
    do {
        _ = try CELEnvironment(variables: variables, options: options).compile(source)
        return nil
    } catch {
        return error
    }
}

extension CELValue {
    /// Strict comparison for tests: same type and value (`1` and `1u` differ).
    func isIdentical(to other: CELValue) -> Bool { CELConformanceRunner.strictlyEqual(self, other) }
}

/// `[1, 2]` as a CEL list.
func intList(_ values: Int64...) -> CELValue { .list(values.map { .int($0) }) }

/// `['a', 'b']` as a CEL list.
func stringList(_ values: String...) -> CELValue { .list(values.map { .string($0) }) }
