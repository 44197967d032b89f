#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The strings extension: `charAt`, `indexOf`, `lastIndexOf`, `lowerAscii`, `upperAscii`,
/// `replace`, `split`, `substring`, `trim`, `join`, `reverse`, `format` and `strings.quote`.
/// Indices count Unicode code points.
enum StringFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.member("charAt", arguments: 1, .binary(charAt))
        registry.member(
            "indexOf", arguments: 1,
            .binary { text, part, frame throws(CELEvaluationError) in
                try indexOf(text, part, .int(0), frame, name: "indexOf")
            })
        registry.member(
            "indexOf", arguments: 2,
            .ternary { text, part, start, frame throws(CELEvaluationError) in
                try indexOf(text, part, start, frame, name: "indexOf")
            })
        registry.member(
            "lastIndexOf", arguments: 1,
            .binary { text, part, frame throws(CELEvaluationError) in
                try lastIndexOf(text, part, nil, frame)
            })
        registry.member(
            "lastIndexOf", arguments: 2,
            .ternary { text, part, last, frame throws(CELEvaluationError) in
                try lastIndexOf(text, part, last, frame)
            })
        registry.member(
            "lowerAscii", arguments: 0,
            .unary { value, frame throws(CELEvaluationError) in
                try mapASCII(value, frame, name: "lowerAscii", lower: true)
            })
        registry.member(
            "upperAscii", arguments: 0,
            .unary { value, frame throws(CELEvaluationError) in
                try mapASCII(value, frame, name: "upperAscii", lower: false)
            })
        registry.member(
            "replace", arguments: 2,
            .ternary { text, old, new, frame throws(CELEvaluationError) in
                try replace(text, old, new, .int(-1), frame)
            })
        registry.member(
            "replace", arguments: 3,
            .variadic { arguments, frame throws(CELEvaluationError) in
                try replace(arguments[0], arguments[1], arguments[2], arguments[3], frame)
            })
        registry.member(
            "split", arguments: 1,
            .binary { text, separator, frame throws(CELEvaluationError) in
                try split(text, separator, .int(-1), frame)
            })
        registry.member("split", arguments: 2, .ternary(split))
        registry.member(
            "substring", arguments: 1,
            .binary { text, start, frame throws(CELEvaluationError) in
                try substring(text, start, nil, frame)
            })
        registry.member(
            "substring", arguments: 2,
            .ternary { text, start, end, frame throws(CELEvaluationError) in
                try substring(text, start, end, frame)
            })
        registry.member("trim", arguments: 0, .unary(trim))
        registry.member(
            "join", arguments: 0,
            .unary { list, frame throws(CELEvaluationError) in
                try join(list, .string(""), frame)
            })
        registry.member("join", arguments: 1, .binary(join))
        registry.member("reverse", arguments: 0, .unary(reverse))
        registry.member("format", arguments: 1, .binary(StringFormatter.format))
        registry.global(
            "strings.quote", arity: 1,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("strings.quote", value) }
                try frame.charge(size: text.utf8.count, per: 16)
                return .string(CELFormatting.quote(text))
            })
    }

    private static func indexArgument(_ value: CELValue) -> Int64? {
        if case .int(let number) = value { return number }
        return nil
    }

    static func charAt(_ text: CELValue, _ position: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .string(let value) = text, let index = indexArgument(position) else {
            throw .noOverload("charAt", text, position)
        }
        try frame.charge(size: value.utf8.count, per: 64)
        let scalars = CELStrings.scalars(value)
        guard index >= 0, index <= Int64(scalars.count) else { throw outOfRange(index) }
        if index == Int64(scalars.count) { return .string("") }
        return .string(String(scalars[Int(index)]))
    }

    private static func outOfRange(_ index: Int64) -> CELEvaluationError {
        CELEvaluationError(.indexOutOfRange, "index out of range: \(index)")
    }

    private static func find(_ pattern: [Unicode.Scalar], in text: [Unicode.Scalar], at position: Int) -> Bool {
        guard position >= 0, position + pattern.count <= text.count else { return false }
        for offset in 0..<pattern.count where text[position + offset] != pattern[offset] { return false }
        return true
    }

    static func indexOf(
        _ text: CELValue, _ part: CELValue, _ start: CELValue, _ frame: EvaluationFrame, name: String
    ) throws(CELEvaluationError) -> CELValue {
        guard case .string(let value) = text, case .string(let search) = part, let offset = indexArgument(start) else {
            throw .noOverload(name, text, part, start)
        }
        let scalars = CELStrings.scalars(value)
        guard offset >= 0, offset <= Int64(scalars.count) else { throw outOfRange(offset) }
        if search.isEmpty { return .int(offset) }
        let pattern = CELStrings.scalars(search)
        try frame.charge(size: scalars.count * max(pattern.count, 1), per: 64)
        var position = Int(offset)
        while position + pattern.count <= scalars.count {
            if find(pattern, in: scalars, at: position) { return .int(Int64(position)) }
            position += 1
        }
        return .int(-1)
    }

    static func lastIndexOf(_ text: CELValue, _ part: CELValue, _ last: CELValue?, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let value) = text, case .string(let search) = part else {
            throw .noOverload("lastIndexOf", arguments: [text, part] + (last.map { [$0] } ?? []))
        }
        let scalars = CELStrings.scalars(value)
        var offset = Int64(scalars.count)
        if let last {
            guard let requested = indexArgument(last) else { throw .noOverload("lastIndexOf", text, part, last) }
            guard requested >= 0, requested <= Int64(scalars.count) else { throw outOfRange(requested) }
            offset = requested
            if search.isEmpty { return .int(offset) }
        }
        if search.isEmpty { return .int(Int64(scalars.count)) }
        let pattern = CELStrings.scalars(search)
        guard pattern.count <= scalars.count else { return .int(-1) }
        try frame.charge(size: scalars.count * pattern.count, per: 64)
        var position = min(Int(offset), scalars.count - pattern.count)
        while position >= 0 {
            if find(pattern, in: scalars, at: position) { return .int(Int64(position)) }
            position -= 1
        }
        return .int(-1)
    }

    static func mapASCII(_ value: CELValue, _ frame: EvaluationFrame, name: String, lower: Bool)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let text) = value else { throw .noOverload(name, value) }
        try frame.charge(size: text.utf8.count, per: 16)
        var bytes = Array(text.utf8)
        for index in bytes.indices {
            let byte = bytes[index]
            if lower, byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { bytes[index] = byte + 32 }
            if !lower, byte >= UInt8(ascii: "a"), byte <= UInt8(ascii: "z") { bytes[index] = byte - 32 }
        }
        return .string(String(decoding: bytes, as: UTF8.self))
    }

    static func replace(
        _ text: CELValue, _ old: CELValue, _ new: CELValue, _ limit: CELValue, _ frame: EvaluationFrame
    ) throws(CELEvaluationError) -> CELValue {
        guard case .string(let value) = text, case .string(let search) = old, case .string(let replacement) = new,
            let count = indexArgument(limit)
        else { throw .noOverload("replace", text, old, new, limit) }
        if count == 0 { return text }
        let remaining = count < 0 ? Int64.max : count
        let scalars = CELStrings.scalars(value)
        let pattern = CELStrings.scalars(search)
        let replacementScalars = Array(replacement.unicodeScalars)
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(scalars.count)
        var replaced: Int64 = 0
        var position = 0
        if pattern.isEmpty {
            // An empty pattern matches before every code point and at the end.
            while position <= scalars.count {
                if replaced < remaining {
                    output.append(contentsOf: replacementScalars)
                    replaced += 1
                }
                if position < scalars.count { output.append(scalars[position]) }
                position += 1
                try frame.charge(size: replacementScalars.count, per: 16)
            }
        } else {
            while position < scalars.count {
                if replaced < remaining, find(pattern, in: scalars, at: position) {
                    output.append(contentsOf: replacementScalars)
                    position += pattern.count
                    replaced += 1
                    try frame.charge(size: replacementScalars.count + pattern.count, per: 16)
                } else {
                    output.append(scalars[position])
                    position += 1
                }
            }
        }
        try frame.charge(size: output.count, per: 16)
        return .string(CELStrings.string(output))
    }

    static func split(_ text: CELValue, _ separator: CELValue, _ limit: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let value) = text, case .string(let search) = separator, let count = indexArgument(limit)
        else { throw .noOverload("split", text, separator, limit) }
        if count == 0 { return .list(CELList([])) }
        let maximum = count < 0 ? Int.max : Int(clamping: count)
        let scalars = CELStrings.scalars(value)
        let pattern = CELStrings.scalars(search)
        try frame.charge(size: scalars.count, per: 8)
        var parts: [CELValue] = []
        if pattern.isEmpty {
            var position = 0
            while position < scalars.count {
                if parts.count == maximum - 1 {
                    parts.append(.string(CELStrings.string(scalars[position...])))
                    break
                }
                parts.append(.string(String(scalars[position])))
                position += 1
            }
            return .list(CELList(parts))
        }
        var start = 0
        var position = 0
        while position + pattern.count <= scalars.count, parts.count < maximum - 1 {
            if find(pattern, in: scalars, at: position) {
                parts.append(.string(CELStrings.string(scalars[start..<position])))
                position += pattern.count
                start = position
            } else {
                position += 1
            }
        }
        parts.append(.string(CELStrings.string(scalars[start...])))
        return .list(CELList(parts))
    }

    static func substring(_ text: CELValue, _ start: CELValue, _ end: CELValue?, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let value) = text, let first = indexArgument(start) else {
            throw .noOverload("substring", arguments: [text, start] + (end.map { [$0] } ?? []))
        }
        let scalars = CELStrings.scalars(value)
        let length = Int64(scalars.count)
        var last = length
        if let end {
            guard let requested = indexArgument(end) else { throw .noOverload("substring", text, start, end) }
            last = requested
            if first > last {
                throw CELEvaluationError(
                    .indexOutOfRange, "invalid substring range. start: \(first), end: \(last)")
            }
        }
        guard first >= 0, first <= length else { throw outOfRange(first) }
        guard last >= 0, last <= length else { throw outOfRange(last) }
        try frame.charge(size: Int(last - first), per: 16)
        return .string(CELStrings.string(scalars[Int(first)..<Int(last)]))
    }

    static func trim(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        guard case .string(let text) = value else { throw .noOverload("trim", value) }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return .string("") }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) ?? first
        return .string(String(scalars[first...last]))
    }

    static func join(_ list: CELValue, _ separator: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError)
        -> CELValue
    {
        guard case .list(let elements) = list, case .string(let glue) = separator else {
            throw .noOverload("join", list, separator)
        }
        var output = ""
        var first = true
        for element in elements {
            guard case .string(let text) = element else {
                throw CELEvaluationError(
                    .noMatchingOverload, "join() needs a list of strings, found \(element.runtimeType.name)")
            }
            if !first { output += glue }
            first = false
            output += text
            try frame.charge(size: text.utf8.count + glue.utf8.count, per: 16)
        }
        return .string(output)
    }

    static func reverse(_ value: CELValue, _ frame: EvaluationFrame) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .string(let text):
            try frame.charge(size: text.utf8.count, per: 16)
            return .string(CELStrings.string(text.unicodeScalars.reversed()))
        case .list(let list):
            try frame.charge(size: list.count, per: 4)
            return .list(CELList(list.elements.reversed()))
        default:
            throw .noOverload("reverse", value)
        }
    }
}

/// `string.format(list)`: printf-style substitution as the cel-spec strings extension defines it.
enum StringFormatter {
    static func format(_ template: CELValue, _ arguments: CELValue, _ frame: EvaluationFrame)
        throws(CELEvaluationError) -> CELValue
    {
        guard case .string(let text) = template, case .list(let values) = arguments else {
            throw .noOverload("format", template, arguments)
        }
        var output = ""
        var scalars = text.unicodeScalars[...]
        var argumentIndex = 0
        while let scalar = scalars.popFirst() {
            guard scalar == "%" else {
                output.unicodeScalars.append(scalar)
                continue
            }
            guard let next = scalars.first else {
                throw .invalid("could not parse formatting clause: unterminated clause at end of string")
            }
            if next == "%" {
                scalars.removeFirst()
                output += "%"
                continue
            }
            var precision: Int?
            if next == "." {
                scalars.removeFirst()
                var digits = 0
                var value = 0
                while let digit = scalars.first, digit.value >= 48, digit.value <= 57 {
                    value = min(value * 10 + Int(digit.value - 48), 1000)
                    digits += 1
                    scalars.removeFirst()
                }
                guard digits > 0 else { throw .invalid("could not parse formatting clause: invalid precision") }
                precision = value
            }
            guard let verb = scalars.popFirst() else {
                throw .invalid("could not parse formatting clause: missing conversion")
            }
            guard "sdfeboxX".unicodeScalars.contains(verb) else {
                throw .invalid("could not parse formatting clause: unrecognized formatting clause \"\(verb)\"")
            }
            guard argumentIndex < values.count else {
                throw CELEvaluationError(.indexOutOfRange, "index \(argumentIndex) out of range")
            }
            let argument = values[argumentIndex]
            argumentIndex += 1
            output += try clause(verb, precision: precision, argument)
            try frame.charge(size: output.utf8.count, per: 64)
        }
        return .string(output)
    }

    private static func formattingError(_ message: String) -> CELEvaluationError {
        .invalid("error during formatting: \(message)")
    }

    private static func clause(_ verb: Unicode.Scalar, precision: Int?, _ value: CELValue)
        throws(CELEvaluationError) -> String
    {
        switch verb {
        case "s":
            return try string(value)
        case "d":
            switch value {
            case .int(let number): return String(number)
            case .uint(let number): return String(number)
            case .double(let number): return CELFormatting.plainDouble(number)
            default:
                throw formattingError(
                    "decimal clause can only be used on integers, was given \(value.runtimeType.name)")
            }
        case "f", "e":
            let number: Double
            switch value {
            case .int(let integer): number = Double(integer)
            case .uint(let integer): number = Double(integer)
            case .double(let double): number = double
            default:
                let kind = verb == "f" ? "fixed-point" : "scientific"
                throw formattingError("\(kind) clause can only be used on doubles, was given \(value.runtimeType.name)")
            }
            if number.isNaN { return "NaN" }
            if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
            return printf(number, precision: precision ?? 6, conversion: verb == "f" ? "f" : "e")
        case "b":
            switch value {
            case .bool(let flag): return flag ? "1" : "0"
            case .int(let number): return String(number, radix: 2)
            case .uint(let number): return String(number, radix: 2)
            default:
                throw formattingError(
                    "only integers and bools can be formatted as binary, was given \(value.runtimeType.name)")
            }
        case "o":
            switch value {
            case .int(let number): return String(number, radix: 8)
            case .uint(let number): return String(number, radix: 8)
            default:
                throw formattingError("octal clause can only be used on integers, was given \(value.runtimeType.name)")
            }
        default:  // x, X
            let uppercase = verb == "X"
            switch value {
            case .int(let number): return String(number, radix: 16, uppercase: uppercase)
            case .uint(let number): return String(number, radix: 16, uppercase: uppercase)
            case .string(let text): return hex(Array(text.utf8), uppercase: uppercase)
            case .bytes(let bytes): return hex(bytes, uppercase: uppercase)
            default:
                throw formattingError(
                    "only integers, byte buffers, and strings can be formatted as hex, was given \(value.runtimeType.name)"
                )
            }
        }
    }

    private static func hex(_ bytes: [UInt8], uppercase: Bool) -> String {
        let digits = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// C's correctly rounded `%.Nf` / `%.Ne` (ties to even on the exact binary value).
    static func printf(_ value: Double, precision: Int, conversion: Character) -> String {
        let format = "%.\(precision)\(conversion)"
        var buffer = [CChar](repeating: 0, count: 512)
        let written = withVaList([value]) { arguments in
            vsnprintf(&buffer, buffer.count, format, arguments)
        }
        if written >= buffer.count {
            buffer = [CChar](repeating: 0, count: Int(written) + 1)
            _ = withVaList([value]) { arguments in vsnprintf(&buffer, buffer.count, format, arguments) }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The `%s` rendering of any value.
    static func string(_ value: CELValue) throws(CELEvaluationError) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .uint(let number): return String(number)
        case .double(let number): return CELFormatting.plainDouble(number)
        case .string(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .timestamp(let time): return time.description
        case .duration(let span):
            let seconds = Double(span.nanoseconds / 1_000_000_000) + Double(span.nanoseconds % 1_000_000_000) / 1e9
            return CELFormatting.plainDouble(seconds) + "s"
        case .type(let type): return type.name
        case .list(let list):
            var parts: [String] = []
            for element in list { parts.append(try string(element)) }
            return "[" + parts.joined(separator: ", ") + "]"
        case .map(let map):
            var entries: [(key: String, value: String)] = []
            for (key, entryValue) in map { entries.append((try string(key), try string(entryValue))) }
            entries.sort { CELStrings.compare($0.key, $1.key) < 0 }
            return "{" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .opaque(let opaque): return opaque.description
        case .optional:
            throw formattingError(
                "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given optional_type"
            )
        }
    }
}
