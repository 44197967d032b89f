import FisoCEL
import FisoJSON
import Foundation

/// CEL as flows use it: which variables an expression sees, how an event becomes those
/// variables, and how results become JSON and CloudEvent attributes.
///
/// Every expression sees `data` (the payload; for an incoming CloudEvent, its data), `time`, `id`,
/// `source`, `type`, `subject`, `dataschema` (the CloudEvent attributes of the incoming event when
/// it is one, else those its envelope will get), `extensions` (the incoming CloudEvent's extension
/// attributes) and `headers` (a map of strings); a source may add its own (`kafka` for Kafka
/// sources).
public struct FlowExpressions: Sendable {
    /// The variables every expression may read.
    public static let eventVariables = [
        "data", "time", "id", "source", "type", "subject", "dataschema", "extensions", "headers",
    ]

    /// Variables the flow's source adds (e.g. `kafka`).
    public let sourceVariables: [String]
    let environment: CELEnvironment

    public init(sourceVariables: [String] = []) {
        self.sourceVariables = sourceVariables
        environment = CELEnvironment(variables: Self.eventVariables + sourceVariables)
    }

    public var variables: [String] { Self.eventVariables + sourceVariables }

    /// Compiles an expression, or explains (with line, column and a caret) why it does not compile.
    /// The Go original's path shorthand `$.order.id` means `data["order"]["id"]`.
    public func compile(_ source: String) throws(CELCompileError) -> CELProgram {
        try environment.compile(Self.pathShorthand(source) ?? source)
    }

    /// `$.a.b` (a path into the event data, as the Go original writes it) as CEL over `data`, or
    /// nil when `text` is not one. Segments are looked up as keys, so any name works.
    static func pathShorthand(_ text: String) -> String? {
        let trimmed = text.trimmingSpaces()
        guard trimmed.hasPrefix("$."), trimmed.count > 2 else { return nil }
        let segments = trimmed.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false)
        guard segments.allSatisfy({ !$0.isEmpty && !$0.contains("\"") && !$0.contains("\\") && !$0.contains(" ") })
        else { return nil }
        return "data" + segments.map { "[\"\($0)\"]" }.joined()
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
        if let path = Self.pathShorthand(text) { return .expression(try environment.compile(path)) }
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
        activation["dataschema"] = event.attributes.dataSchema.map { .string($0) } ?? .null
        if needed.contains("extensions") {
            activation["extensions"] = CELValue(json: .object(event.attributes.extensions))
        }
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
/// object whose keys keep the order they were written in (nested mappings become nested objects).
struct CELPayloadTransform: PayloadTransform {
    let fields: [(path: [String], program: CELProgram)]
    let needed: Set<String>

    init(_ definition: TransformDefinition, expressions: FlowExpressions) throws {
        var fields: [(path: [String], program: CELProgram)] = []
        for (path, source) in definition.fields {
            do {
                fields.append((path, try expressions.compile(source)))
            } catch {
                throw TransformError(field: path.joined(separator: "."), message: error.description)
            }
        }
        self.fields = fields
        needed = fields.reduce(into: Set<String>()) { $0.formUnion($1.program.freeIdentifiers) }
    }

    func transform(_ event: Event) throws -> JSONValue {
        let activation = FlowExpressions.activation(for: event, needed: needed)
        var output = JSONObject()
        output.reserveCapacity(fields.count)
        for (path, program) in fields {
            let value: JSONValue
            do {
                value = try program.evaluate(activation).jsonValue()
            } catch {
                throw TransformError(field: path.joined(separator: "."), message: error.description)
            }
            if path.count == 1 {
                output[path[0]] = value
            } else {
                Self.set(value, at: path[...], in: &output)
            }
        }
        return .object(output)
    }

    private static func set(_ value: JSONValue, at path: ArraySlice<String>, in object: inout JSONObject) {
        guard let name = path.first else { return }
        if path.count == 1 {
            object[name] = value
            return
        }
        var nested: JSONObject
        if case .object(let existing)? = object[name] { nested = existing } else { nested = [:] }
        set(value, at: path.dropFirst(), in: &nested)
        object[name] = .object(nested)
    }
}

struct TransformError: Error, CustomStringConvertible {
    var field: String
    var message: String
    var description: String { "field \"\(field)\": \(message)" }
}

/// `cloudevents`: attribute and extension overrides evaluated against the event as it arrived.
struct CELCloudEventOverrides: CloudEventCustomizing {
    let overrides: [(attribute: String, value: FlowExpressions.Override, isExtension: Bool)]
    let needed: Set<String>

    init(_ definition: CloudEventOverrides, expressions: FlowExpressions) throws {
        var overrides: [(attribute: String, value: FlowExpressions.Override, isExtension: Bool)] = []
        let entries =
            definition.configured.map { ($0.attribute, $0.expression, false) }
            + definition.extensions.map { ($0.name, $0.expression, true) }
        for (attribute, text, isExtension) in entries {
            let field = isExtension ? "cloudevents.extensions.\(attribute)" : "cloudevents.\(attribute)"
            do {
                overrides.append((attribute, try expressions.override(text), isExtension))
            } catch {
                throw TransformError(field: field, message: error.description)
            }
        }
        self.overrides = overrides
        needed = overrides.reduce(into: Set<String>()) { needed, override in
            if case .expression(let program) = override.value { needed.formUnion(program.freeIdentifiers) }
        }
    }

    func customize(_ cloudEvent: inout CloudEvent, original: Event) throws {
        let activation = FlowExpressions.activation(for: original, needed: needed)
        for (attribute, override, isExtension) in overrides {
            let field = isExtension ? "cloudevents.extensions.\(attribute)" : "cloudevents.\(attribute)"
            let value: CELValue
            switch override {
            case .literal(let text): value = .string(text)
            case .expression(let program):
                do {
                    value = try program.evaluate(activation)
                } catch {
                    throw TransformError(field: field, message: error.description)
                }
            }
            if isExtension {
                // Extension attributes are strings, integers or booleans (CloudEvents type system).
                switch value {
                case .string(let text) where !text.isEmpty: cloudEvent.set(attribute, to: .string(text))
                case .int, .uint, .bool: cloudEvent.set(attribute, to: try value.jsonValue())
                case .null: cloudEvent.remove(attribute)
                default:
                    throw TransformError(
                        field: field,
                        message:
                            "must evaluate to a non-empty string, an integer or a boolean, got \(value.runtimeType.name)"
                    )
                }
                continue
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
