/// Text renderings shared by conversions, `format` and diagnostics.
enum CELFormatting {
    static func padded(_ value: Int, width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// `.123` style fraction of a second with trailing zeros removed, or "" for zero.
    static func fraction(nanos: Int64) -> String {
        guard nanos != 0 else { return "" }
        var digits = padded(Int(nanos), width: 9)
        while digits.last == "0" { digits.removeLast() }
        return "." + digits
    }

    /// The shortest decimal digits that round-trip `value` (finite, non-zero magnitude), with the
    /// position of the decimal point: value = 0.d1d2d3... × 10^pointPosition.
    static func shortestDigits(_ value: Double) -> (digits: [UInt8], pointPosition: Int) {
        let text = value.magnitude.description
        var mantissa = Substring(text)
        var exponent = 0
        if let marker = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<marker]
            exponent = Int(text[text.index(after: marker)...]) ?? 0
        }
        var digits: [UInt8] = []
        var pointPosition = 0
        var seenPoint = false
        for character in mantissa.utf8 {
            if character == UInt8(ascii: ".") {
                seenPoint = true
                continue
            }
            digits.append(character - 48)
            if !seenPoint { pointPosition += 1 }
        }
        // Strip leading zeros.
        while let first = digits.first, first == 0, digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while let last = digits.last, last == 0, digits.count > 1 { digits.removeLast() }
        return (digits, pointPosition + exponent)
    }

    /// Go's `%g` with shortest precision (what `string(double)` produces): `123.456`, `1e+06`,
    /// `-0.0045`, `1e-05`, `NaN`, `+Inf`.
    static func doubleString(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0" }
        let (digits, pointPosition) = shortestDigits(value)
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= 6 {
            return sign + exponential(digits: digits, exponent: exponent, minimumFractionDigits: 0)
        }
        return sign + fixed(digits: digits, pointPosition: pointPosition)
    }

    /// Plain decimal notation without exponent and without insignificant zeros (Go's `%f` with
    /// shortest precision), used by `format`'s `%s` and `%d` on doubles.
    static func plainDouble(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0" }
        let (digits, pointPosition) = shortestDigits(value)
        return sign + fixed(digits: digits, pointPosition: pointPosition)
    }

    private static func fixed(digits: [UInt8], pointPosition: Int) -> String {
        var text = ""
        if pointPosition <= 0 {
            text += "0." + String(repeating: "0", count: -pointPosition)
            text += String(decoding: digits.map { $0 + 48 }, as: UTF8.self)
        } else if pointPosition >= digits.count {
            text += String(decoding: digits.map { $0 + 48 }, as: UTF8.self)
            text += String(repeating: "0", count: pointPosition - digits.count)
        } else {
            text += String(decoding: digits[..<pointPosition].map { $0 + 48 }, as: UTF8.self)
            text += "." + String(decoding: digits[pointPosition...].map { $0 + 48 }, as: UTF8.self)
        }
        return text
    }

    private static func exponential(digits: [UInt8], exponent: Int, minimumFractionDigits: Int) -> String {
        var text = String(Unicode.Scalar(digits[0] + 48))
        if digits.count > 1 {
            text += "." + String(decoding: digits[1...].map { $0 + 48 }, as: UTF8.self)
        }
        text += exponent < 0 ? "e-" : "e+"
        text += padded(abs(exponent), width: 2)
        return text
    }

    /// A double as CEL source text that reads back as a double (`1.0`, `1e+100`, `-0.0`).
    static func doubleLiteral(_ value: Double) -> String {
        if value.isNaN { return "double(\"NaN\")" }
        if value.isInfinite { return value < 0 ? "double(\"-Infinity\")" : "double(\"Infinity\")" }
        let text = value.description
        return text
    }

    /// A double-quoted string literal with escapes for quotes, backslashes and control characters
    /// (the behaviour of `strings.quote`).
    static func quote(_ value: String) -> String {
        var output = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\u{07}": output += "\\a"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{0B}": output += "\\v"
            case "\\": output += "\\\\"
            case "\"": output += "\\\""
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }

    static func quoteBytes(_ bytes: [UInt8]) -> String {
        var output = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): output += "\\\""
            case UInt8(ascii: "\\"): output += "\\\\"
            case 0x20..<0x7F: output.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789abcdef".utf8)
                output += "\\x" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return output + "\""
    }
}
