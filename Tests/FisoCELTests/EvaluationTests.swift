import FisoCEL
import Testing

@Suite("Evaluation: operators, numbers, logic, errors")
struct EvaluationTests {
    @Test(
        "integer overflow, division by zero and range are errors",
        arguments: [
            ("9223372036854775807 + 1", CELEvaluationError.Code.overflow),
            ("-9223372036854775808 - 1", .overflow), ("-(-9223372036854775808)", .overflow),
            ("5000000000 * 5000000000", .overflow), ("-9223372036854775808 / -1", .overflow),
            ("-9223372036854775808 % -1", .overflow), ("0u - 1u", .overflow), ("18446744073709551615u + 1u", .overflow),
            ("1 / 0", .divisionByZero), ("1 % 0", .divisionByZero), ("1u / 0u", .divisionByZero),
            ("int(9223372036854775807.0)", .overflow), ("uint(-1)", .overflow),
            ("int(18446744073709551615u)", .overflow),
        ])
    func arithmeticErrors(source: String, code: CELEvaluationError.Code) throws {
        let error = try #require(try evaluationError(source))
        #expect(error.code == code, "\(source): \(error)")
    }

    @Test("error messages read well")
    func messages() throws {
        #expect(try evaluationError("1 + 'a'")?.message == "no matching overload for '+' applied to (int, string)")
        #expect(try evaluationError("1 / 0")?.message == "division by zero")
        #expect(try evaluationError("{'a': 1}.foo")?.message == "no such key: 'foo'")
        #expect(try evaluationError("[1][3]")?.message.hasPrefix("index out of range") == true)
        #expect(
            try evaluationError("x.y", ["x": .int(1)])?.message.contains("does not support field selection") == true)
    }

    @Test(
        "heterogeneous numeric equality and ordering",
        arguments: [
            "1 == 1.0", "1u == 1", "1.0 == 1u", "[1, 2.0] == [1u, 2]", "{1: 'a'} == {1u: 'a'}", "-1 < 1u",
            "1u < 2.5", "dyn(18446744073709551615u) > 9223372036854775807", "!(0.0/0.0 == 0.0/0.0)",
            "1 != 'one'", "null == null", "[null] != [1]", "!(1 < 0.0/0.0) && !(1 >= 0.0/0.0)",
            "{'a': 1, 'b': 2} == {'b': 2, 'a': 1}", "type(1) != type(1u)", "type(type) == type",
        ])
    func numericEquality(source: String) throws {
        #expect(try evaluate(source) == .bool(true), "\(source)")
    }

    @Test(
        "&& and || absorb errors commutatively",
        arguments: [
            ("false && (1/0 == 1)", CELValue.bool(false)), ("(1/0 == 1) && false", .bool(false)),
            ("true || (1/0 == 1)", .bool(true)), ("(1/0 == 1) || true", .bool(true)),
            ("'x' || true", .bool(true)), ("x || true", .bool(true)), ("false ? 1/0 : 2", .int(2)),
        ])
    func absorption(source: String, expected: CELValue) throws {
        var options = CELEnvironment.Options()
        options.allowsUndeclaredReferences = true
        #expect(try evaluate(source, options: options) == expected)
    }

    @Test("errors that decide nothing propagate", arguments: ["(1/0 == 1) && true", "false || 1/0 == 1", "'a' && 'b'"])
    func nonAbsorbed(source: String) throws {
        #expect(try evaluationError(source) != nil)
    }

    static let macroCases: [(String, CELValue)] = [
        ("[1, 2, 3].all(x, x > 0)", CELValue.bool(true)), ("[1, 2, 3].exists(x, x == 2)", .bool(true)),
        ("[1, 2, 3].exists_one(x, x > 1)", .bool(false)), ("[1, 2, 3].map(x, x * 2)", intList(2, 4, 6)),
        ("[1, 2, 3].map(x, x > 1, x * 10)", intList(20, 30)), ("[1, 2, 3].filter(x, x % 2 == 1)", intList(1, 3)),
        ("{'a': 1, 'b': 2}.map(k, k)", stringList("a", "b")), ("[0, -1].all(x, 1 / x > 0)", .bool(false)),
        ("[1, 0].exists(x, 1 / x > 0)", .bool(true)), ("has({'a': 1}.a)", .bool(true)),
        ("has({'a': 1}.b)", .bool(false)), ("[1, 2].all(i, v, v > i)", .bool(true)),
        ("['a', 'b'].transformList(i, v, v + string(i))", stringList("a0", "b1")),
        ("{'a': 1}.transformMap(k, v, v + 1)", .map(["a": .int(2)])),
        ("[3, 4].transformMapEntry(i, v, {v: i})", .map([3: .int(0), 4: .int(1)])),
        ("cel.bind(x, 2, x * x)", .int(4)), ("cel.bind(a, 'x', cel.bind(b, a + a, b + a))", .string("xxx")),
        ("[1, 2].map(x, [3].map(x, x))", .list([intList(3), intList(3)])),
    ]

    @Test("macros", arguments: macroCases)
    func macros(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    static let optionalCases: [(String, CELValue)] = [
        ("optional.of(1).value()", CELValue.int(1)), ("optional.none().orValue(2)", .int(2)),
        ("{'a': 1}.?a.orValue(0)", .int(1)), ("{'a': 1}.?b.orValue(0)", .int(0)),
        ("[1, 2][?5].hasValue()", .bool(false)), ("[?optional.none(), ?optional.of(1)]", intList(1)),
        ("{?'a': optional.none(), 'b': 2}", .map(["b": .int(2)])),
        ("optional.of(2).optMap(x, x * 3).value()", .int(6)),
        ("optional.of({'c': 1}).c.orValue(0)", .int(1)), ("optional.ofNonZeroValue('').hasValue()", .bool(false)),
        ("optional.none().or(optional.of(3)).value()", .int(3)),
        ("type(optional.none()) == optional_type", .bool(true)),
        ("optional.of(1).or(1/0 == 1 ? optional.none() : optional.none()).value()", .int(1)),
    ]

    @Test("optionals", arguments: optionalCases)
    func optionals(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test("variables, qualified names and containers")
    func variables() throws {
        #expect(try evaluate("a.b.c", ["a.b": .map(["c": .int(1)])]) == .int(1))
        var options = CELEnvironment.Options()
        options.container = "com.example"
        let environment = CELEnvironment(variables: ["com.example.y", "y"], options: options)
        let variables: [String: CELValue] = ["com.example.y": .string("inner"), "y": .string("outer")]
        #expect(try environment.compile("y").evaluate(variables) == .string("inner"))
        #expect(try environment.compile(".y").evaluate(variables) == .string("outer"))
        #expect(try environment.compile("[1].map(y, y)").evaluate(variables) == intList(1))
        let unbound = try CELEnvironment(variables: ["x"]).compile("x")
        #expect(throws: CELEvaluationError.self) { try unbound.evaluate() }
        #expect(compileError("undeclared + 1")?.message == "undeclared reference to 'undeclared'")
        #expect(compileError("nope(1)")?.message == "undeclared reference to function 'nope'")
    }

    @Test("type values and conversions")
    func types() throws {
        #expect(try evaluate("type(1)") == .type(.int))
        #expect(try evaluate("type(timestamp(0))") == .type(.timestamp))
        #expect(try evaluate("google.protobuf.Duration == type(duration('1s'))") == .bool(true))
        #expect(try evaluate("string(1.5) + string(2u) + string(true) + string(b'x')") == .string("1.52truex"))
        #expect(try evaluate("double('1e3') == 1000.0 && int('-42') == -42 && uint('7') == 7u") == .bool(true))
        #expect(try evaluate("bool('true') && !bool('0')") == .bool(true))
        #expect(try evaluate("string(1234567.0)") == .string("1.234567e+06"))
        #expect(try evaluationError("int('1.5')")?.code == .invalidArgument)
        #expect(try evaluationError("string(b'\\xff')") != nil)
    }

    @Test("application functions")
    func customFunctions() throws {
        let shout = CELFunction(name: "shout", style: .receiver, arity: 1) { arguments throws(CELEvaluationError) in
            guard case .string(let text) = arguments[0] else {
                throw CELEvaluationError(.noMatchingOverload, "shout() needs a string")
            }
            return .string(text.uppercased() + "!")
        }
        let environment = CELEnvironment(functions: [shout])
        #expect(try environment.compile("'hi'.shout()").evaluate() == .string("HI!"))
        let wrongType = try environment.compile("1.shout()")
        #expect(throws: CELEvaluationError.self) { try wrongType.evaluate() }
    }

    @Test("programs are shared safely across concurrent evaluations")
    func concurrency() async throws {
        let program = try CELEnvironment(variables: ["n"]).compile("[1, 2, 3].map(x, x * n).exists(y, y == n * 3)")
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    (try? program.evaluate(["n": .int(Int64(index))])) == .bool(true)
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0 })
    }
}
