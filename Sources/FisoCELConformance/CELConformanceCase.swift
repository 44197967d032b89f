import FisoCEL
import FisoJSON

/// One case of the CEL conformance suite in its JSON-lines form (see the suite's README): an
/// expression, its declarations and bindings, and the expected outcome.
public struct CELConformanceCase: Sendable {
    /// What the case expects.
    public enum Expectation: Sendable {
        /// The expression evaluates to this value.
        case value(CELValue)
        /// Evaluation fails (any evaluation error matches, as in the reference runners).
        case evaluationError
        /// The case cannot run on a JSON-only engine (protocol buffer messages, unknowns...).
        case unsupported(String)
    }

    public let file: String
    public let id: String
    public let expression: String
    public let container: String
    public let disableCheck: Bool
    public let disableMacros: Bool
    /// Declared identifier names (`type_env` idents and bound variables).
    public let declarations: [String]
    public let bindings: [String: CELValue]
    public let expectation: Expectation

    /// Reads one JSON line of the suite.
    public init(json: JSONValue) throws(CELConformanceFormatError) {
        guard case .object(let object) = json else { throw CELConformanceFormatError("a case must be a JSON object") }
        func string(_ key: String) -> String { object[key]?.stringValue ?? "" }
        func flag(_ key: String) -> Bool {
            if case .bool(true)? = object[key] { return true }
            return false
        }
        file = string("file")
        id = string("id")
        expression = string("expr")
        container = string("container")
        disableCheck = flag("disable_check")
        disableMacros = flag("disable_macros")
        var names: [String] = []
        if case .array(let declarations)? = object["type_env"] {
            for declaration in declarations {
                if declaration["kind"]?.stringValue == "ident", let name = declaration["name"]?.stringValue {
                    names.append(name)
                }
            }
        }
        var values: [String: CELValue] = [:]
        var problem: String?
        if case .object(let bound)? = object["bindings"] {
            for (name, tagged) in bound {
                names.append(name)
                do {
                    values[name] = try CELConformanceCase.decode(tagged)
                } catch {
                    problem = "binding '\(name)': \(error.message)"
                }
            }
        }
        declarations = names
        bindings = values
        let usable = !flag("needs_proto_messages") && !flag("check_only") && (object["json_usable"] != .bool(false))
        let result = object["result"]
        let kind = result?["kind"]?.stringValue ?? ""
        if let problem {
            expectation = .unsupported(problem)
        } else if !usable {
            expectation = .unsupported("needs protocol buffer messages or type checking")
        } else {
            switch kind {
            case "value", "typed_result":
                guard let tagged = result?["value"] else {
                    expectation = .unsupported("no expected value")
                    return
                }
                do {
                    expectation = .value(try CELConformanceCase.decode(tagged))
                } catch {
                    expectation = .unsupported("expected value: \(error.message)")
                }
            case "eval_error", "any_eval_errors":
                expectation = .evaluationError
            default:
                expectation = .unsupported("result kind '\(kind)'")
            }
        }
    }

    /// Decodes a tagged value such as `{"int64": "-5"}` or `{"map": [{"key": ..., "value": ...}]}`.
    public static func decode(_ tagged: JSONValue) throws(CELConformanceFormatError) -> CELValue {
        guard case .object(let object) = tagged, object.count == 1, let (tag, payload) = object.elements.first else {
            throw CELConformanceFormatError("a tagged value must be a single-key object")
        }
        switch tag {
        case "null": return .null
        case "bool":
            guard case .bool(let value) = payload else { throw CELConformanceFormatError("bad bool") }
            return .bool(value)
        case "int64":
            guard let text = payload.stringValue, let value = Int64(text) else {
                throw CELConformanceFormatError("bad int64")
            }
            return .int(value)
        case "uint64":
            guard let text = payload.stringValue, let value = UInt64(text) else {
                throw CELConformanceFormatError("bad uint64")
            }
            return .uint(value)
        case "double":
            guard let text = payload.stringValue, let value = Conversions.parseDouble(text) ?? Double(text) else {
                throw CELConformanceFormatError("bad double")
            }
            return .double(value)
        case "string":
            guard let text = payload.stringValue else { throw CELConformanceFormatError("bad string") }
            return .string(text)
        case "bytes":
            guard let text = payload.stringValue, let bytes = CELBase64.decode(text) else {
                throw CELConformanceFormatError("bad bytes")
            }
            return .bytes(bytes)
        case "list":
            guard case .array(let elements) = payload else { throw CELConformanceFormatError("bad list") }
            var values: [CELValue] = []
            for element in elements { values.append(try decode(element)) }
            return .list(CELList(values))
        case "map":
            guard case .array(let entries) = payload else { throw CELConformanceFormatError("bad map") }
            var map = OrderedDictionary<CELMapKey, CELValue>()
            for entry in entries {
                guard let keyTag = entry["key"], let valueTag = entry["value"],
                    let key = CELMapKey(try decode(keyTag))
                else { throw CELConformanceFormatError("bad map entry") }
                map[key] = try decode(valueTag)
            }
            return .map(CELMap(map))
        case "type":
            guard let name = payload.stringValue else { throw CELConformanceFormatError("bad type") }
            return .type(CELType(name: name))
        case "duration", "timestamp":
            guard let secondsText = payload["seconds"]?.stringValue, let seconds = Int64(secondsText) else {
                throw CELConformanceFormatError("bad \(tag)")
            }
            var nanos: Int32 = 0
            if case .int(let value)? = payload["nanos"] { nanos = Int32(clamping: value) }
            if tag == "duration" {
                guard let span = CELDuration(seconds: seconds, nanos: nanos) else {
                    throw CELConformanceFormatError("duration out of range")
                }
                return .duration(span)
            }
            guard let time = CELTimestamp(seconds: seconds, nanos: nanos) else {
                throw CELConformanceFormatError("timestamp out of range")
            }
            return .timestamp(time)
        default:
            throw CELConformanceFormatError("unsupported value kind '\(tag)'")
        }
    }
}

/// A malformed conformance case.
public struct CELConformanceFormatError: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// The outcome of running one conformance case.
public struct CELConformanceOutcome: Sendable {
    public let id: String
    public let file: String
    public let expression: String
    public let passed: Bool
    /// False for cases the engine cannot run (protocol buffer messages...); these do not count.
    public let counted: Bool
    public let expected: String
    public let actual: String

    /// `{"id": ..., "passed": ..., "file": ..., "expr": ..., "expected": ..., "actual": ...}`.
    public var jsonValue: JSONValue {
        [
            "id": .string(id), "passed": .bool(passed), "file": .string(file), "expr": .string(expression),
            "expected": .string(expected), "actual": .string(actual),
        ]
    }
}

/// Runs conformance cases against FisoCEL.
public enum CELConformanceRunner {
    /// Parses every non-empty line of a JSON-lines file.
    public static func cases(inJSONLines text: String) throws(CELConformanceFormatError) -> [CELConformanceCase] {
        var result: [CELConformanceCase] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            do {
                result.append(try CELConformanceCase(json: try JSONValue(parsing: String(line))))
            } catch let error as JSONParseError {
                throw CELConformanceFormatError("line \(number + 1): \(error)")
            } catch let error as CELConformanceFormatError {
                throw CELConformanceFormatError("line \(number + 1): \(error.message)")
            } catch {
                throw CELConformanceFormatError("line \(number + 1): \(error)")
            }
        }
        return result
    }

    /// Compiles and evaluates a case and compares the outcome with its expectation.
    public static func run(_ testCase: CELConformanceCase) -> CELConformanceOutcome {
        func outcome(_ passed: Bool, counted: Bool = true, expected: String, actual: String) -> CELConformanceOutcome {
            CELConformanceOutcome(
                id: testCase.id, file: testCase.file, expression: testCase.expression, passed: passed,
                counted: counted, expected: expected, actual: actual)
        }
        let expectedText: String
        switch testCase.expectation {
        case .unsupported(let reason):
            return outcome(false, counted: false, expected: "unsupported: \(reason)", actual: "not run")
        case .value(let value): expectedText = value.description
        case .evaluationError: expectedText = "evaluation error"
        }
        var options = CELEnvironment.Options()
        options.container = testCase.container
        options.macrosEnabled = !testCase.disableMacros
        options.allowsUndeclaredReferences = testCase.disableCheck
        let environment = CELEnvironment(variables: testCase.declarations, options: options)
        let program: CELProgram
        do {
            program = try environment.compile(testCase.expression)
        } catch {
            return outcome(false, expected: expectedText, actual: "compile error: \(error.message)")
        }
        let result: Result<CELValue, CELEvaluationError>
        do {
            result = .success(try program.evaluate(CELActivation(testCase.bindings)))
        } catch {
            result = .failure(error)
        }
        switch (testCase.expectation, result) {
        case (.value(let expected), .success(let actual)):
            return outcome(strictlyEqual(expected, actual), expected: expectedText, actual: actual.description)
        case (.value, .failure(let error)):
            return outcome(false, expected: expectedText, actual: "error: \(error.message)")
        case (.evaluationError, .failure(let error)):
            return outcome(true, expected: expectedText, actual: "error: \(error.message)")
        case (.evaluationError, .success(let actual)):
            return outcome(false, expected: expectedText, actual: actual.description)
        case (.unsupported, _):
            return outcome(false, counted: false, expected: expectedText, actual: "not run")
        }
    }

    /// Equality that also requires the same types (CEL's `==` treats `1 == 1u == 1.0` as equal)
    /// and tells NaN and the sign of zero apart as the suite's expected values do.
    public static func strictlyEqual(_ expected: CELValue, _ actual: CELValue) -> Bool {
        switch (expected, actual) {
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
            return a == b && a.sign == b.sign
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.list(let a), .list(let b)):
            guard a.count == b.count else { return false }
            return zip(a, b).allSatisfy { strictlyEqual($0, $1) }
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let match = b.first(where: { strictlyEqual(key, $0.key) }), strictlyEqual(value, match.value)
                else { return false }
            }
            return true
        case (.optional(let a), .optional(let b)):
            switch (a, b) {
            case (nil, nil): return true
            case (let a?, let b?): return strictlyEqual(a, b)
            default: return false
            }
        default:
            return expected.runtimeType == actual.runtimeType && expected.isEqual(to: actual)
        }
    }
}
