/// A CEL type value, as returned by `type(x)` and denoted by identifiers such as `int` or
/// `google.protobuf.Timestamp`. Types compare by name.
public struct CELType: Sendable, Hashable, CustomStringConvertible {
    /// The type's name, e.g. `int`, `list` or `google.protobuf.Duration`.
    public let name: String

    public init(name: String) { self.name = name }

    public var description: String { name }

    public static let int = CELType(name: "int")
    public static let uint = CELType(name: "uint")
    public static let double = CELType(name: "double")
    public static let bool = CELType(name: "bool")
    public static let string = CELType(name: "string")
    public static let bytes = CELType(name: "bytes")
    public static let list = CELType(name: "list")
    public static let map = CELType(name: "map")
    public static let null = CELType(name: "null_type")
    public static let type = CELType(name: "type")
    public static let timestamp = CELType(name: "google.protobuf.Timestamp")
    public static let duration = CELType(name: "google.protobuf.Duration")
    public static let optional = CELType(name: "optional_type")
    public static let ipAddress = CELType(name: "net.IP")
    public static let cidr = CELType(name: "net.CIDR")

    /// Types that can be named in expressions (type denotations).
    static let denotable: [String: CELType] = {
        var types: [String: CELType] = [:]
        for type in [
            CELType.int, .uint, .double, .bool, .string, .bytes, .list, .map, .null, .type, .timestamp,
            .duration, .optional, .ipAddress, .cidr,
        ] {
            types[type.name] = type
        }
        return types
    }()
}
