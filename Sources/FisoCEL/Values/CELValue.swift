/// A CEL runtime value.
///
/// Lists and maps can be backed directly by ``JSONValue`` storage (see ``CELValue/init(json:)``), so
/// reading `data.customer.name` from a large payload only converts the members it touches.
public enum CELValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list(CELList)
    case map(CELMap)
    case timestamp(CELTimestamp)
    case duration(CELDuration)
    case type(CELType)
    /// An `optional_type` value: `optional.of(x)` holds `x`, `optional.none()` holds `nil`.
    indirect case optional(CELValue?)
    /// A value of a type defined outside the core language, such as `net.IP`.
    case opaque(any CELOpaqueValue)
}

/// A value of an abstract (opaque) CEL type such as `net.IP` or `net.CIDR`. Implemented by
/// immutable classes, so a ``CELValue`` holding one stays a single reference.
public protocol CELOpaqueValue: AnyObject, Sendable, CustomStringConvertible {
    /// The CEL type of the value, e.g. `net.IP`.
    var runtimeType: CELType { get }
    /// Whether `other` is the same value.
    func isEqual(to other: any CELOpaqueValue) -> Bool
}

extension CELValue {
    /// The runtime type of the value, as `type(x)` reports it.
    public var runtimeType: CELType {
        switch self {
        case .null: .null
        case .bool: .bool
        case .int: .int
        case .uint: .uint
        case .double: .double
        case .string: .string
        case .bytes: .bytes
        case .list: .list
        case .map: .map
        case .timestamp: .timestamp
        case .duration: .duration
        case .type: .type
        case .optional: .optional
        case .opaque(let value): value.runtimeType
        }
    }

    /// Convenience constructors for aggregates.
    public static func list(_ elements: [CELValue]) -> CELValue { .list(CELList(elements)) }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// Whether the value is the zero value of its type (used by `optional.ofNonZeroValue`).
    var isZeroValue: Bool {
        switch self {
        case .null: true
        case .bool(let value): !value
        case .int(let value): value == 0
        case .uint(let value): value == 0
        case .double(let value): value == 0
        case .string(let value): value.isEmpty
        case .bytes(let value): value.isEmpty
        case .list(let value): value.isEmpty
        case .map(let value): value.isEmpty
        case .timestamp(let value): value.seconds == 0 && value.nanos == 0
        case .duration(let value): value.nanoseconds == 0
        case .type: false
        case .optional(let value): value == nil
        case .opaque: false
        }
    }
}

extension CELValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: CELValue...) { self = .list(CELList(elements)) }
}

extension CELValue: Equatable {
    /// CEL equality (`==`): numbers compare across `int`, `uint` and `double`; values of different
    /// types are unequal; NaN is unequal to everything.
    public static func == (lhs: CELValue, rhs: CELValue) -> Bool { lhs.isEqual(to: rhs) }
}

extension CELValue: CustomStringConvertible {
    /// A CEL-like literal rendering, for diagnostics and tests.
    public var description: String {
        var output = ""
        CELValueDescriber.describe(self, into: &output)
        return output
    }
}

/// Renders values as CEL source-like text.
enum CELValueDescriber {
    static func describe(_ value: CELValue, into output: inout String) {
        switch value {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .int(let value): output += String(value)
        case .uint(let value): output += "\(value)u"
        case .double(let value): output += CELFormatting.doubleLiteral(value)
        case .string(let value): output += CELFormatting.quote(value)
        case .bytes(let value): output += "b" + CELFormatting.quoteBytes(value)
        case .list(let list):
            output += "["
            for (position, element) in list.enumerated() {
                if position > 0 { output += ", " }
                describe(element, into: &output)
            }
            output += "]"
        case .map(let map):
            output += "{"
            var first = true
            for (key, value) in map {
                if !first { output += ", " }
                first = false
                describe(key, into: &output)
                output += ": "
                describe(value, into: &output)
            }
            output += "}"
        case .timestamp(let value): output += "timestamp(\"\(value)\")"
        case .duration(let value): output += "duration(\"\(value)\")"
        case .type(let value): output += value.name
        case .optional(let wrapped):
            if let wrapped {
                output += "optional.of("
                describe(wrapped, into: &output)
                output += ")"
            } else {
                output += "optional.none()"
            }
        case .opaque(let value): output += "\(value.runtimeType.name)(\"\(value.description)\")"
        }
    }
}
