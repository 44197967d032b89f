import FisoCEL
import Foundation
import Testing

@Suite("Robustness: deep nesting, hostile input, cost limit")
struct RobustnessTests {
    static let hostileSources: [(String, String)] = [
        ("parentheses", String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000)),
        ("brackets", String(repeating: "[", count: 100_000) + "1" + String(repeating: "]", count: 100_000)),
        ("braces", String(repeating: "{1:", count: 100_000) + "1" + String(repeating: "}", count: 100_000)),
        ("unary minus", String(repeating: "-", count: 100_000) + "1"),
        ("negation", String(repeating: "!", count: 100_000) + "true"),
        ("calls", String(repeating: "size(", count: 100_000) + "'x'" + String(repeating: ")", count: 100_000)),
        ("selections", "x" + String(repeating: ".f", count: 100_000)),
        ("indexes", "x" + String(repeating: "[0]", count: 100_000)),
        ("ternaries", String(repeating: "true ? 1 : ", count: 100_000) + "0"),
        ("unclosed", String(repeating: "(", count: 100_000)),
        ("macros", String(repeating: "[1].map(x, ", count: 100_000) + "x" + String(repeating: ")", count: 100_000)),
    ]

    @Test("100k-deep nesting is a compile error, not a stack overflow", arguments: hostileSources)
    func deepNesting(name: String, source: String) {
        var options = CELEnvironment.Options()
        options.maximumSourceLength = 10_000_000
        let error = compileError(source, variables: ["x"], options: options)
        #expect(error != nil, "\(name) compiled")
        #expect(error?.message.contains("nested too deeply") == true, "\(name): \(error?.message ?? "")")
    }

    @Test("100k-term operator chains stay flat and evaluate")
    func longOperatorChains() throws {
        var options = CELEnvironment.Options()
        options.maximumSourceLength = 10_000_000
        let sum = Array(repeating: "1", count: 100_000).joined(separator: " + ")
        #expect(try evaluate(sum, options: options) == .int(100_000))
        let mixed = Array(repeating: "2 * 3 - 5", count: 50_000).joined(separator: " + ")
        #expect(try evaluate(mixed, options: options) == .int(50_000))
        let conjunction = Array(repeating: "x", count: 100_000).joined(separator: " && ")
        #expect(try evaluate(conjunction, ["x": .bool(true)], options: options) == .bool(true))
    }

    /// Release builds need about 200 KiB at the default nesting limit; debug builds, whose frames are
    /// several times larger, about 1.5 MiB.
    #if DEBUG
        static let smallStack = 4 << 20
    #else
        static let smallStack = 512 << 10
    #endif

    @Test("expressions at the nesting limit compile and evaluate on a small thread stack")
    func nestingLimitFitsSmallStacks() async throws {
        let depth = CELEnvironment.Options().maximumNestingDepth - 5
        let sources = [
            String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth),
            String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth),
            String(repeating: "{0: ", count: depth) + "x" + String(repeating: "}", count: depth),
            String(repeating: "size([", count: depth / 2) + "x" + String(repeating: "])", count: depth / 2),
            String(repeating: "-", count: depth) + "x",
            String(repeating: "x > 0 ? x : ", count: depth) + "x",
            String(repeating: "[1].map(y, ", count: depth) + "x" + String(repeating: ")", count: depth),
            "x" + String(repeating: ".f", count: depth - 1),
        ]
        for source in sources {
            let outcome: String = await withCheckedContinuation { continuation in
                let thread = Thread {
                    do {
                        let program = try CELEnvironment(variables: ["x"]).compile(source)
                        let value = try program.evaluate(["x": .int(1)])
                        _ = try? CELEnvironment(variables: ["x"]).compile(source + " + " + source)
                        continuation.resume(returning: "ok \(value.description.prefix(10))")
                    } catch {
                        continuation.resume(returning: "error \(error)")
                    }
                }
                thread.stackSize = Self.smallStack
                thread.start()
            }
            #expect(outcome.hasPrefix("ok") || outcome.contains("field selection"), "\(source.prefix(20))…: \(outcome)")
        }
    }

    @Test("source length is limited")
    func sourceLength() {
        var options = CELEnvironment.Options()
        options.maximumSourceLength = 10
        #expect(compileError("1 + 2 + 3 + 4", options: options)?.message.contains("longer than") == true)
    }

    @Test("nested comprehensions hit the cost limit")
    func nestedComprehensions() throws {
        let list = "[" + (0..<100).map(String.init).joined(separator: ",") + "]"
        let source = "\(list).map(a, \(list).map(b, \(list).map(c, a + b + c))).size()"
        let error = try #require(try evaluationError(source))
        #expect(error.code == .costLimitExceeded)
        #expect(error.message.contains("cost limit"))
    }

    @Test("the cost limit is configurable and reports spent cost")
    func configurableCost() throws {
        var options = CELEnvironment.Options()
        options.costLimit = 50
        let environment = CELEnvironment(options: options)
        let program = try environment.compile("[1, 2, 3].map(x, x * 2)")
        let (value, cost) = try program.evaluateMeasuringCost(CELActivation())
        #expect(value == [2, 4, 6])
        #expect(cost > 0 && cost <= 50)
        let expensive = try environment.compile("[1,2,3,4,5,6,7,8,9,10].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, x * y))")
        #expect(throws: CELEvaluationError.self) { try expensive.evaluate() }
        options.costLimit = nil
        let unlimited = try CELEnvironment(options: options).compile(
            "[1,2,3,4,5,6,7,8,9,10].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, x * y)).size()")
        #expect(try unlimited.evaluate() == .int(10))
    }

    @Test("errors inside && and exists do not hide an exhausted budget")
    func costIsNotAbsorbed() throws {
        let list = "[" + (0..<300).map(String.init).joined(separator: ",") + "]"
        let source = "\(list).exists(a, \(list).exists(b, \(list).exists(c, a + b + c < 0))) || true"
        let error = try #require(try evaluationError(source))
        #expect(error.code == .costLimitExceeded)
    }

    @Test("exponential string growth through bindings runs out of budget")
    func stringDoubling() throws {
        var source = "'0123456789abcdef'"
        for index in 0..<40 { source = "cel.bind(s\(index), \(source), s\(index) + s\(index))" }
        let error = try #require(try evaluationError(source))
        #expect(error.code == .costLimitExceeded)
    }

    @Test("pathological regular expressions run in linear time")
    func regexBlowup() throws {
        let text = String(repeating: "a", count: 5_000)
        let value = try evaluate("s.matches('^(a+)+$') && !(s + 'b').matches('^(a|aa)+$')", ["s": .string(text)])
        #expect(value == .bool(true))
    }
}
