/// Type conversions (`int`, `uint`, `double`, `string`, `bytes`, `bool`, `timestamp`, `duration`,
/// `dyn`, `type`) and the core string/collection functions (`size`, `contains`, `startsWith`,
/// `endsWith`, `matches`).
package enum Conversions {
    static func register(into registry: inout FunctionRegistry) {
        registry.global("int", arity: 1, .unary(toInt))
        registry.global("uint", arity: 1, .unary(toUInt))
        registry.global("double", arity: 1, .unary(toDouble))
        registry.global("string", arity: 1, .unary(toString))
        registry.global("bytes", arity: 1, .unary(toBytes))
        registry.global("bool", arity: 1, .unary(toBool))
        registry.global("timestamp", arity: 1, .unary(toTimestamp))
        registry.global("duration", arity: 1, .unary(toDuration))
        registry.global("dyn", arity: 1, .unary { value, _ in value })
        registry.global("type", arity: 1, .unary { value, _ in .type(value.runtimeType) })
        registry.both("size", arity: 1, .unary(size))
        registry.member("contains", arguments: 1, .binary(stringContains))
        registry.member("startsWith", arguments: 1, .binary(startsWith))
        registry.member("endsWith", arguments: 1, .binary(endsWith))
        registry.both("matches", arity: 2, .binary(matches))
    }

    static func toInt(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .int: return value
        case .uint(let number):
            guard let exact = Int64(exactly: number) else { throw .range("int conversion out of range: \(number)u") }
            return .int(exact)
        case .double(let number):
            // The bounds are exclusive: ±2^63 do not round-trip reliably.
            guard number > -9_223_372_036_854_775_808.0, number < 9_223_372_036_854_775_808.0 else {
                throw .range("int conversion out of range: \(CELFormatting.doubleString(number))")
            }
            return .int(Int64(number))
        case .string(let text):
            guard let number = Int64(text) else { throw .invalid("cannot convert '\(text)' to int") }
            return .int(number)
        case .timestamp(let time): return .int(time.seconds)
        case .duration(let span): return .int(span.nanoseconds)
        default: throw .noOverload("int", value)
        }
    }

    static func toUInt(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .uint: return value
        case .int(let number):
            guard number >= 0 else { throw .range("uint conversion out of range: \(number)") }
            return .uint(UInt64(number))
        case .double(let number):
            guard number >= 0, number < 18_446_744_073_709_551_616.0 else {
                throw .range("uint conversion out of range: \(CELFormatting.doubleString(number))")
            }
            return .uint(UInt64(number))
        case .string(let text):
            guard !text.hasPrefix("+"), let number = UInt64(text) else {
                throw .invalid("cannot convert '\(text)' to uint")
            }
            return .uint(number)
        default: throw .noOverload("uint", value)
        }
    }

    static func toDouble(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .double: return value
        case .int(let number): return .double(Double(number))
        case .uint(let number): return .double(Double(number))
        case .string(let text):
            guard let number = parseDouble(text) else { throw .invalid("cannot convert '\(text)' to double") }
            return .double(number)
        default: throw .noOverload("double", value)
        }
    }

    /// Parses decimal or hexadecimal floating-point text, plus `NaN`, `Inf` and `Infinity` in any case.
    package static func parseDouble(_ text: String) -> Double? {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
        guard let first = text.utf8.first, first != UInt8(ascii: " "), let number = Double(text), number.isFinite
        else { return nil }
        return number
    }

    static func toString(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .string: return value
        case .bool(let flag): return .string(flag ? "true" : "false")
        case .int(let number): return .string(String(number))
        case .uint(let number): return .string(String(number))
        case .double(let number): return .string(CELFormatting.doubleString(number))
        case .bytes(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw .invalid("bytes are not valid UTF-8 and cannot be converted to string")
            }
            return .string(text)
        case .timestamp(let time): return .string(time.description)
        case .duration(let span): return .string(span.description)
        case .type(let type): return .string(type.name)
        case .opaque(let opaque): return .string(opaque.description)
        default: throw .noOverload("string", value)
        }
    }

    static func toBytes(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .bytes: return value
        case .string(let text): return .bytes(Array(text.utf8))
        default: throw .noOverload("bytes", value)
        }
    }

    static func toBool(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .bool: return value
        case .string(let text):
            switch text {
            case "1", "t", "T", "true", "TRUE", "True": return .bool(true)
            case "0", "f", "F", "false", "FALSE", "False": return .bool(false)
            default: throw .invalid("cannot convert '\(text)' to bool")
            }
        default: throw .noOverload("bool", value)
        }
    }

    static func toTimestamp(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .timestamp: return value
        case .string(let text):
            guard let time = CELTimestamp(rfc3339: text) else {
                throw .invalid("cannot parse '\(text)' as an RFC 3339 timestamp (or it is out of range)")
            }
            return .timestamp(time)
        case .int(let seconds):
            guard let time = CELTimestamp(seconds: seconds) else { throw .range("timestamp out of range: \(seconds)") }
            return .timestamp(time)
        default: throw .noOverload("timestamp", value)
        }
    }

    static func toDuration(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .duration: return value
        case .string(let text):
            guard let span = CELDuration(parsing: text) else {
                throw .invalid("cannot parse '\(text)' as a duration (or it is out of range)")
            }
            return .duration(span)
        default: throw .noOverload("duration", value)
        }
    }

    static func size(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .string(let text): return .int(Int64(CELStrings.length(text)))
        case .bytes(let bytes): return .int(Int64(bytes.count))
        case .list(let list): return .int(Int64(list.count))
        case .map(let map): return .int(Int64(map.count))
        default: throw .noOverload("size", value)
        }
    }

    static func stringContains(_ text: CELValue, _ part: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let haystack) = text, case .string(let needle) = part else {
            throw .noOverload("contains", text, part)
        }
        try frame.charge(size: haystack.utf8.count, per: 64)
        return .bool(CELStrings.byteOffset(of: needle, in: haystack) != nil)
    }

    static func startsWith(_ text: CELValue, _ part: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .string(let value) = text, case .string(let prefix) = part else {
            throw .noOverload("startsWith", text, part)
        }
        return .bool(value.utf8.starts(with: prefix.utf8))
    }

    static func endsWith(_ text: CELValue, _ part: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .string(let value) = text, case .string(let suffix) = part else {
            throw .noOverload("endsWith", text, part)
        }
        let valueBytes = value.utf8
        let suffixBytes = suffix.utf8
        guard suffixBytes.count <= valueBytes.count else { return .bool(false) }
        return .bool(valueBytes.dropFirst(valueBytes.count - suffixBytes.count).elementsEqual(suffixBytes))
    }

    static func matches(_ text: CELValue, _ pattern: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .string(let value) = text, case .string(let expression) = pattern else {
            throw .noOverload("matches", text, pattern)
        }
        try frame.charge(size: expression.utf8.count, per: 16)
        let regex: CELRegex
        do {
            regex = try CELRegex(expression)
        } catch {
            throw .invalid("invalid regular expression '\(expression)': \(error.message)")
        }
        return .bool(try regex.matches(value, frame: frame))
    }
}
