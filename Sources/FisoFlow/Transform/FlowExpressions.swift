import FisoCEL
import FisoJSON
import Foundation

/// CEL as flows use it: which variables an expression sees, how an event becomes those
/// variables, and how results become JSON and CloudEvent attributes.
///
/// Every expression sees `data` (the payload), `time`, `id`, `source`, `type`, `subject` (the
/// CloudEvent attributes of the incoming event when it is one, else those its envelope will get)
/// and `headers` (a map of strings); a source may add its own (`kafka` for Kafka sources).
public struct FlowExpressions: Sendable {
    /// The variables every expression may read.
    public static let eventVariables = ["data", "time", "id", "source", "type", "subject", "headers"]

    /// Variables the flow's source adds (e.g. `kafka`).
    public let sourceVariables: [String]
    let environment: CELEnvironment

    public init(sourceVariables: [String] = []) {
        self.sourceVariables = sourceVariables
        environment = CELEnvironment(variables: Self.eventVariables + sourceVariables)
    }

    public var variables: [String] { Self.eventVariables + sourceVariables }

    /// Compiles an expression, or explains (with line, column and a caret) why it does not compile.
    public func compile(_ source: String) throws(CELCompileError) -> CELProgram {
        try environment.compile(source)
    }

    /// How a `cloudevents` attribute reads: an expression over known variables, or literal text.
    public enum Override: Sendable {
        case literal(String)
        case expression(CELProgram)
    }

    /// Text whose free identifiers are not all known variables is a literal: `order.created`
    /// (unknown `order`) and `order-service` (unknown `order`, `service`) are literal strings, while
    /// `data.kind`, `"fixed"` and `type + ".v2"` are expressions. Text that does not parse is a
    /// literal too (`my service`), unless it plainly starts as an expression — a quote, or a known
    /// variable followed by `.` or `[` — in which case the syntax error is reported.
    public func override(_ text: String) throws(CELCompileError) -> Override {
        let parsed: CELParsedExpression
        do {
            parsed = try environment.parse(text)
        } catch {
            if looksLikeAnExpression(text) { throw error }
            return .literal(text)
        }
        guard parsed.freeIdentifiers.isSubset(of: Set(variables)) else { return .literal(text) }
        return .expression(try environment.compile(parsed))
    }

    private func looksLikeAnExpression(_ text: String) -> Bool {
        let trimmed = text.trimmingSpaces()
        if trimmed.hasPrefix("\"") || trimmed.hasPrefix("'") { return true }
        return variables.contains { name in
            trimmed.hasPrefix(name + ".") || trimmed.hasPrefix(name + "[")
        }
    }

    /// The variables of an event. Most cost nothing to provide (the payload is wrapped, not
    /// converted); the header map and source variables are built only when `needed` names them.
    public static func activation(for event: Event, needed: Set<String>) -> CELActivation {
        var activation = CELActivation()
        activation["data"] = CELValue(json: event.payload)
        activation["id"] = .string(event.attributes.id)
        activation["source"] = .string(event.attributes.source)
        activation["type"] = .string(event.attributes.type)
        activation["subject"] = event.attributes.subject.map { .string($0) } ?? .null
        let instant = event.attributes.time.timeIntervalSince1970
        let seconds = instant.rounded(.down)
        let timestamp = CELTimestamp(seconds: Int64(seconds), nanos: Int32((instant - seconds) * 1e9))
        activation["time"] = timestamp.map { .timestamp($0) } ?? .null
        if needed.contains("headers") {
            activation["headers"] = .map(
                CELMap(entries: event.headers.map { (CELMapKey.string($0.name), CELValue.string($0.value)) })
            )
        }
        for (name, value) in event.variables where needed.contains(name) {
            activation[name] = CELValue(json: value)
        }
        return activation
    }
}

/// `transform.fields`: each field's expression compiled once; evaluated per event into one JSON
/// object whose keys keep the order they were written in.
struct CELPayloadTransform: PayloadTransform {
    let fields: [(name: String, program: CELProgram)]
    let needed: Set<String>

    init(_ definition: TransformDefinition, expressions: FlowExpressions) throws {
        var fields: [(name: String, program: CELProgram)] = []
        for (name, source) in definition.fields {
            do {
                fields.append((name, try expressions.compile(source)))
            } catch {
                throw TransformError(field: name, message: error.description)
            }
        }
        self.fields = fields
        needed = fields.reduce(into: Set<String>()) { $0.formUnion($1.program.freeIdentifiers) }
    }

    func transform(_ event: Event) throws -> JSONValue {
        let activation = FlowExpressions.activation(for: event, needed: needed)
        var output = JSONObject()
        output.reserveCapacity(fields.count)
        for (name, program) in fields {
            do {
                output[name] = try program.evaluate(activation).jsonValue()
            } catch {
                throw TransformError(field: name, message: error.description)
            }
        }
        return .object(output)
    }
}

struct TransformError: Error, CustomStringConvertible {
    var field: String
    var message: String
    var description: String { "field \"\(field)\": \(message)" }
}

/// `cloudevents`: attribute overrides evaluated against the event as it arrived.
struct CELCloudEventOverrides: CloudEventCustomizing {
    let overrides: [(attribute: String, value: FlowExpressions.Override)]
    let needed: Set<String>

    init(_ definition: CloudEventOverrides, expressions: FlowExpressions) throws {
        var overrides: [(attribute: String, value: FlowExpressions.Override)] = []
        for (attribute, text) in definition.configured {
            do {
                overrides.append((attribute, try expressions.override(text)))
            } catch {
                throw TransformError(field: "cloudevents.\(attribute)", message: error.description)
            }
        }
        self.overrides = overrides
        needed = overrides.reduce(into: Set<String>()) { needed, override in
            if case .expression(let program) = override.value { needed.formUnion(program.freeIdentifiers) }
        }
    }

    func customize(_ cloudEvent: inout CloudEvent, original: Event) throws {
        let activation = FlowExpressions.activation(for: original, needed: needed)
        for (attribute, override) in overrides {
            let value: CELValue
            switch override {
            case .literal(let text): value = .string(text)
            case .expression(let program):
                do {
                    value = try program.evaluate(activation)
                } catch {
                    throw TransformError(field: "cloudevents.\(attribute)", message: error.description)
                }
            }
            if attribute == "data" {
                cloudEvent.set("data", to: try value.jsonValue())
                continue
            }
            switch value {
            case .string(let text) where !text.isEmpty:
                cloudEvent.set(attribute, to: .string(text))
            case .int, .uint, .double, .bool:
                cloudEvent.set(attribute, to: .string(try value.jsonValue().jsonText))
            case .null where ["subject", "dataschema"].contains(attribute):
                cloudEvent.remove(attribute)
            default:
                throw TransformError(
                    field: "cloudevents.\(attribute)",
                    message: "must evaluate to a non-empty string, got \(value.runtimeType.name)"
                )
            }
        }
    }
}
