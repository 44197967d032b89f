import FisoJSON

extension CELValue {
    /// The CEL view of a JSON value, without copying: arrays and objects become lists and maps
    /// backed by the JSON storage.
    ///
    /// A JSON number becomes an `int` when it is integral and fits in 64 bits (`10`, `10.0`,
    /// `1e3`), otherwise a `double` (`10.5`, `1e300`). JSON itself does not tell integers from
    /// floating-point numbers, and producers differ in how they write whole numbers.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value):
            if value.rounded(.towardZero) == value, value >= -0x1p63, value < 0x1p63 {
                self = .int(Int64(value))
            } else {
                self = .double(value)
            }
        case .string(let value): self = .string(value)
        case .array(let elements): self = .list(CELList(json: elements))
        case .object(let members): self = .map(CELMap(json: members))
        }
    }

    /// The JSON form of the value.
    ///
    /// - `int` → number (exact; JSON readers that use doubles lose precision beyond ±2^53)
    /// - `uint` → number up to 2^63−1, else a decimal string
    /// - `double` → number; NaN and ±infinity → the strings `"NaN"`, `"Infinity"`, `"-Infinity"`
    /// - `bytes` → standard base64 string (padded)
    /// - `timestamp` → RFC 3339 string in UTC; `duration` → seconds string such as `"1.5s"`
    /// - `type` → its name; `optional` → its value, or `null` when empty
    /// - map keys `int`, `uint` and `bool` → their decimal or `true`/`false` text
    ///
    /// Throws when two map keys have the same text (e.g. `1` and `'1'`).
    public func jsonValue() throws(CELEvaluationError) -> JSONValue {
        switch self {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .uint(let value):
            if let exact = Int64(exactly: value) { return .int(exact) }
            return .string(String(value))
        case .double(let value):
            if value.isNaN { return .string("NaN") }
            if value.isInfinite { return .string(value < 0 ? "-Infinity" : "Infinity") }
            return .double(value)
        case .string(let value): return .string(value)
        case .bytes(let value): return .string(CELBase64.encode(value))
        case .list(let list):
            if case .json(let elements) = list.storage { return .array(elements) }
            var elements: [JSONValue] = []
            elements.reserveCapacity(list.count)
            for element in list { elements.append(try element.jsonValue()) }
            return .array(elements)
        case .map(let map):
            if case .json(let object) = map.storage { return .object(object) }
            var object = JSONObject()
            object.reserveCapacity(map.count)
            for (key, value) in map {
                let name: String
                switch key {
                case .string(let text): name = text
                case .int(let number): name = String(number)
                case .uint(let number): name = String(number)
                case .bool(let flag): name = flag ? "true" : "false"
                default: name = key.description
                }
                guard object.updateValue(try value.jsonValue(), forKey: name) == nil else {
                    throw CELEvaluationError(
                        .invalidArgument, "map has two keys with the JSON name '\(name)'")
                }
            }
            return .object(object)
        case .timestamp(let value): return .string(value.description)
        case .duration(let value): return .string(value.description)
        case .type(let value): return .string(value.name)
        case .optional(let wrapped): return try wrapped?.jsonValue() ?? .null
        case .opaque(let value): return .string(value.description)
        }
    }
}
