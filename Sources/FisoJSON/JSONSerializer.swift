import OrderedCollections

extension JSONValue {
    /// Compact JSON text (no insignificant whitespace), object keys in their stored order.
    ///
    /// A non-finite double (NaN, ±infinity) has no JSON form and is written as `null`, as
    /// JavaScript's `JSON.stringify` does; producers that care must reject such values first.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        serialize(into: &output)
        return output
    }

    /// The same text as ``serialized()``, as a `String`.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// Indented JSON text (two spaces per level), for people reading it.
    public var prettyText: String {
        var output: [UInt8] = []
        serializePretty(into: &output, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    private func serializePretty(into output: inout [UInt8], indent: Int) {
        func newline(_ level: Int) {
            output.append(UInt8(ascii: "\n"))
            output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: level * 2))
        }
        switch self {
        case .array(let elements) where !elements.isEmpty:
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                element.serializePretty(into: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(UInt8(ascii: "]"))
        case .object(let members) where !members.isEmpty:
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in members {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                newline(indent + 1)
                JSONValue.serializeString(key, into: &output)
                output.append(contentsOf: ": ".utf8)
                value.serializePretty(into: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(UInt8(ascii: "}"))
        default:
            serialize(into: &output)
        }
    }

    /// Appends the compact JSON text of this value to `output`.
    public func serialize(into output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value):
            output.append(contentsOf: String(value).utf8)
        case .double(let value):
            JSONValue.serializeDouble(value, into: &output)
        case .string(let value):
            JSONValue.serializeString(value, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                element.serialize(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in members {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                JSONValue.serializeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                value.serialize(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Shortest text that reads back as the same double; integral values keep no fraction
    /// (`3` rather than `3.0`), as JavaScript and Go write them.
    public static func serializeDouble(_ value: Double, into output: inout [UInt8]) {
        guard value.isFinite else {
            output.append(contentsOf: "null".utf8)
            return
        }
        if value == value.rounded(.towardZero), abs(value) < 1e21 {
            if let exact = Int64(exactly: value) {
                if exact == 0 && value.sign == .minus {
                    output.append(contentsOf: "-0".utf8)
                } else {
                    output.append(contentsOf: String(exact).utf8)
                }
                return
            }
        }
        output.append(contentsOf: value.description.utf8)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, everything
    /// else written as UTF-8.
    public static func serializeString(_ value: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                    hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
