/// The math extension: `math.greatest`, `math.least`, `math.ceil`, `math.floor`, `math.round`,
/// `math.trunc`, `math.abs`, `math.sign`, `math.isNaN`, `math.isInf`, `math.isFinite`,
/// `math.sqrt` and the bitwise `math.bitAnd`, `bitOr`, `bitXor`, `bitNot`, `bitShiftLeft`,
/// `bitShiftRight`.
enum MathFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.global(
            "math.greatest", arity: -1,
            .variadic { arguments, _ throws(CELEvaluationError) in
                try extreme(arguments, greatest: true)
            })
        registry.global(
            "math.least", arity: -1,
            .variadic { arguments, _ throws(CELEvaluationError) in
                try extreme(arguments, greatest: false)
            })
        let rounding: [(String, @Sendable (Double) -> Double)] = [
            ("math.ceil", { $0.rounded(.up) }), ("math.floor", { $0.rounded(.down) }),
            ("math.round", { $0.rounded(.toNearestOrAwayFromZero) }), ("math.trunc", { $0.rounded(.towardZero) }),
        ]
        for (name, operation) in rounding {
            registry.global(
                name, arity: 1,
                .unary { value, _ throws(CELEvaluationError) in
                    guard case .double(let number) = value else { throw .noOverload(name, value) }
                    return .double(operation(number))
                })
        }
        let predicates: [(String, @Sendable (Double) -> Bool)] = [
            ("math.isNaN", { $0.isNaN }), ("math.isInf", { $0.isInfinite }), ("math.isFinite", { $0.isFinite }),
        ]
        for (name, predicate) in predicates {
            registry.global(
                name, arity: 1,
                .unary { value, _ throws(CELEvaluationError) in
                    guard case .double(let number) = value else { throw .noOverload(name, value) }
                    return .bool(predicate(number))
                })
        }
        registry.global(
            "math.abs", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                switch value {
                case .int(let number):
                    guard number != .min else { throw .overflow("int") }
                    return .int(abs(number))
                case .uint: return value
                case .double(let number): return .double(abs(number))
                default: throw .noOverload("math.abs", value)
                }
            })
        registry.global(
            "math.sign", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                switch value {
                case .int(let number): return .int(number > 0 ? 1 : (number < 0 ? -1 : 0))
                case .uint(let number): return .uint(number > 0 ? 1 : 0)
                case .double(let number):
                    if number.isNaN { return value }
                    return .double(number > 0 ? 1 : (number < 0 ? -1 : 0))
                default: throw .noOverload("math.sign", value)
                }
            })
        registry.global(
            "math.sqrt", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                switch value {
                case .int(let number): return .double(Double(number).squareRoot())
                case .uint(let number): return .double(Double(number).squareRoot())
                case .double(let number): return .double(number.squareRoot())
                default: throw .noOverload("math.sqrt", value)
                }
            })
        let bitwise: [(String, @Sendable (Int64, Int64) -> Int64, @Sendable (UInt64, UInt64) -> UInt64)] = [
            ("math.bitAnd", { $0 & $1 }, { $0 & $1 }), ("math.bitOr", { $0 | $1 }, { $0 | $1 }),
            ("math.bitXor", { $0 ^ $1 }, { $0 ^ $1 }),
        ]
        for (name, signed, unsigned) in bitwise {
            registry.global(
                name, arity: 2,
                .binary { a, b, _ throws(CELEvaluationError) in
                    switch (a, b) {
                    case (.int(let x), .int(let y)): return .int(signed(x, y))
                    case (.uint(let x), .uint(let y)): return .uint(unsigned(x, y))
                    default: throw .noOverload(name, a, b)
                    }
                })
        }
        registry.global(
            "math.bitNot", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                switch value {
                case .int(let number): return .int(~number)
                case .uint(let number): return .uint(~number)
                default: throw .noOverload("math.bitNot", value)
                }
            })
        registry.global(
            "math.bitShiftLeft", arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                try shift(a, b, left: true)
            })
        registry.global(
            "math.bitShiftRight", arity: 2,
            .binary { a, b, _ throws(CELEvaluationError) in
                try shift(a, b, left: false)
            })
    }

    private static func shift(_ value: CELValue, _ amount: CELValue, left: Bool) throws(CELEvaluationError)
        -> CELValue
    {
        let name = left ? "math.bitShiftLeft" : "math.bitShiftRight"
        guard case .int(let bits) = amount else { throw .noOverload(name, value, amount) }
        guard bits >= 0 else { throw .invalid("\(name)() shift amount must not be negative: \(bits)") }
        switch value {
        case .int(let number):
            if bits >= 64 { return .int(0) }
            // Right shifts fill with zeros (logical shift), as the extension specifies.
            let pattern = UInt64(bitPattern: number)
            return .int(Int64(bitPattern: left ? pattern << UInt64(bits) : pattern >> UInt64(bits)))
        case .uint(let number):
            if bits >= 64 { return .uint(0) }
            return .uint(left ? number << UInt64(bits) : number >> UInt64(bits))
        default:
            throw .noOverload(name, value, amount)
        }
    }

    private static func extreme(_ arguments: [CELValue], greatest: Bool) throws(CELEvaluationError) -> CELValue {
        let name = greatest ? "math.greatest" : "math.least"
        var candidates = arguments
        if arguments.count == 1, case .list(let list) = arguments[0] { candidates = list.elements }
        guard var best = candidates.first else { throw .invalid("\(name)() needs at least one number") }
        for candidate in candidates {
            guard let order = CELValue.compareNumbers(candidate, best) else {
                throw .noOverload(name, arguments: candidates)
            }
            if (greatest && order == .greater) || (!greatest && order == .less) { best = candidate }
        }
        guard CELValue.compareNumbers(best, best) != nil else { throw .noOverload(name, arguments: candidates) }
        return best
    }
}

/// The encoders extension: `base64.encode(bytes)` and `base64.decode(string)`.
enum EncoderFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.global(
            "base64.encode", arity: 1,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .bytes(let bytes) = value else { throw .noOverload("base64.encode", value) }
                try frame.charge(size: bytes.count, per: 16)
                return .string(CELBase64.encode(bytes))
            })
        registry.global(
            "base64.decode", arity: 1,
            .unary { value, frame throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("base64.decode", value) }
                try frame.charge(size: text.utf8.count, per: 16)
                guard let bytes = CELBase64.decode(text) else { throw .invalid("invalid base64 text") }
                return .bytes(bytes)
            })
    }
}

/// Standard base64 (RFC 4648 §4) with padding on output; input padding is optional.
package enum CELBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(chunk >> UInt32(shift) & 0x3F)]) }
            index += 3
        }
        let remaining = bytes.count - index
        if remaining > 0 {
            var chunk = UInt32(bytes[index]) << 16
            if remaining == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
            output.append(alphabet[Int(chunk >> 18 & 0x3F)])
            output.append(alphabet[Int(chunk >> 12 & 0x3F)])
            output.append(remaining == 2 ? alphabet[Int(chunk >> 6 & 0x3F)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }

    package static func decode(_ text: String) -> [UInt8]? {
        var symbols = Array(text.utf8)
        while symbols.last == UInt8(ascii: "=") { symbols.removeLast() }
        guard text.utf8.count - symbols.count <= 2, symbols.count % 4 != 1 else { return nil }
        if text.utf8.count != symbols.count, text.utf8.count % 4 != 0 { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(symbols.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for symbol in symbols {
            let value: UInt32
            switch symbol {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(symbol - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(symbol - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(symbol - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }
}
