/// A lexical token of CEL source.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier(String)
        /// A backquoted name (`` `content-type` ``), allowed after `.` and in field initializers.
        case quotedIdentifier(String)
        /// An integer literal's magnitude; the parser applies a leading minus.
        case intLiteral(UInt64)
        case uintLiteral(UInt64)
        case doubleLiteral(Double)
        case stringLiteral(String)
        case bytesLiteral([UInt8])
        case trueKeyword, falseKeyword, nullKeyword, inKeyword
        case punctuation(Punctuation)
        case end
    }

    enum Punctuation: String, Sendable {
        case leftParen = "("
        case rightParen = ")"
        case leftBracket = "["
        case rightBracket = "]"
        case leftBrace = "{"
        case rightBrace = "}"
        case dot = "."
        case comma = ","
        case colon = ":"
        case question = "?"
        case not = "!"
        case minus = "-"
        case plus = "+"
        case star = "*"
        case slash = "/"
        case percent = "%"
        case less = "<"
        case lessEqual = "<="
        case greater = ">"
        case greaterEqual = ">="
        case equal = "=="
        case notEqual = "!="
        case and = "&&"
        case or = "||"
    }

    let kind: Kind
    /// UTF-8 offset of the first byte.
    let offset: Int
}

extension Token.Kind {
    var displayText: String {
        switch self {
        case .identifier(let name): "'\(name)'"
        case .quotedIdentifier(let name): "'`\(name)`'"
        case .intLiteral(let value): "'\(value)'"
        case .uintLiteral(let value): "'\(value)u'"
        case .doubleLiteral(let value): "'\(value)'"
        case .stringLiteral: "string literal"
        case .bytesLiteral: "bytes literal"
        case .trueKeyword: "'true'"
        case .falseKeyword: "'false'"
        case .nullKeyword: "'null'"
        case .inKeyword: "'in'"
        case .punctuation(let mark): "'\(mark.rawValue)'"
        case .end: "end of input"
        }
    }
}

/// Splits CEL source into tokens.
struct Lexer {
    let source: SourceText
    private var bytes: [UInt8] { source.bytes }
    private(set) var index = 0

    init(source: SourceText) { self.source = source }

    private func error(_ message: String, at offset: Int) -> SyntaxProblem {
        SyntaxProblem(message: message, offset: offset)
    }

    private func byte(at position: Int) -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func next() throws(SyntaxProblem) -> Token {
        skipWhitespaceAndComments()
        let start = index
        guard let first = byte(at: index) else { return Token(kind: .end, offset: index) }
        switch first {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return Token(kind: try number(), offset: start)
        case UInt8(ascii: "."):
            if let next = byte(at: index + 1), isDigit(next) { return Token(kind: try number(), offset: start) }
            index += 1
            return Token(kind: .punctuation(.dot), offset: start)
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return Token(kind: try stringLiteral(raw: false, bytes: false), offset: start)
        case UInt8(ascii: "`"):
            return Token(kind: try quotedIdentifier(), offset: start)
        case _ where isIdentifierStart(first):
            var end = index + 1
            while let next = byte(at: end), isIdentifierPart(next) { end += 1 }
            let word = String(decoding: bytes[index..<end], as: UTF8.self)
            if let quote = byte(at: end), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'"),
                let prefix = stringPrefix(word)
            {
                index = end
                return Token(kind: try stringLiteral(raw: prefix.raw, bytes: prefix.bytes), offset: start)
            }
            index = end
            switch word {
            case "true": return Token(kind: .trueKeyword, offset: start)
            case "false": return Token(kind: .falseKeyword, offset: start)
            case "null": return Token(kind: .nullKeyword, offset: start)
            case "in": return Token(kind: .inKeyword, offset: start)
            default: return Token(kind: .identifier(word), offset: start)
            }
        default:
            return Token(kind: .punctuation(try punctuation()), offset: start)
        }
    }

    private func stringPrefix(_ word: String) -> (raw: Bool, bytes: Bool)? {
        switch word {
        case "r", "R": (true, false)
        case "b", "B": (false, true)
        case "br", "bR", "Br", "BR", "rb", "rB", "Rb", "RB": (true, true)
        default: nil
        }
    }

    private mutating func skipWhitespaceAndComments() {
        while let current = byte(at: index) {
            switch current {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0C:
                index += 1
            case UInt8(ascii: "/") where byte(at: index + 1) == UInt8(ascii: "/"):
                while let next = byte(at: index), next != UInt8(ascii: "\n") { index += 1 }
            default:
                return
            }
        }
    }

    private mutating func punctuation() throws(SyntaxProblem) -> Token.Punctuation {
        let first = bytes[index]
        let second = byte(at: index + 1)
        func take(_ count: Int, _ mark: Token.Punctuation) -> Token.Punctuation {
            index += count
            return mark
        }
        switch first {
        case UInt8(ascii: "("): return take(1, .leftParen)
        case UInt8(ascii: ")"): return take(1, .rightParen)
        case UInt8(ascii: "["): return take(1, .leftBracket)
        case UInt8(ascii: "]"): return take(1, .rightBracket)
        case UInt8(ascii: "{"): return take(1, .leftBrace)
        case UInt8(ascii: "}"): return take(1, .rightBrace)
        case UInt8(ascii: ","): return take(1, .comma)
        case UInt8(ascii: ":"): return take(1, .colon)
        case UInt8(ascii: "?"): return take(1, .question)
        case UInt8(ascii: "+"): return take(1, .plus)
        case UInt8(ascii: "-"): return take(1, .minus)
        case UInt8(ascii: "*"): return take(1, .star)
        case UInt8(ascii: "/"): return take(1, .slash)
        case UInt8(ascii: "%"): return take(1, .percent)
        case UInt8(ascii: "!"): return second == UInt8(ascii: "=") ? take(2, .notEqual) : take(1, .not)
        case UInt8(ascii: "<"): return second == UInt8(ascii: "=") ? take(2, .lessEqual) : take(1, .less)
        case UInt8(ascii: ">"): return second == UInt8(ascii: "=") ? take(2, .greaterEqual) : take(1, .greater)
        case UInt8(ascii: "=") where second == UInt8(ascii: "="): return take(2, .equal)
        case UInt8(ascii: "&") where second == UInt8(ascii: "&"): return take(2, .and)
        case UInt8(ascii: "|") where second == UInt8(ascii: "|"): return take(2, .or)
        default:
            throw error("unexpected character \(describe(at: index))", at: index)
        }
    }

    private func describe(at position: Int) -> String {
        var end = position + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'" + String(decoding: bytes[position..<end], as: UTF8.self) + "'"
    }

    // MARK: Numbers

    private mutating func number() throws(SyntaxProblem) -> Token.Kind {
        let start = index
        if bytes[index] == UInt8(ascii: "0"), let marker = byte(at: index + 1),
            marker == UInt8(ascii: "x") || marker == UInt8(ascii: "X")
        {
            index += 2
            var value: UInt64 = 0
            var digitCount = 0
            var overflow = false
            while let next = byte(at: index), let digit = hexValue(next) {
                let (shifted, overflowed) = value.multipliedReportingOverflow(by: 16)
                overflow = overflow || overflowed
                value = shifted | UInt64(digit)
                digitCount += 1
                index += 1
            }
            guard digitCount > 0 else { throw error("invalid hexadecimal literal", at: start) }
            if overflow { throw error("hexadecimal literal out of range", at: start) }
            if let suffix = byte(at: index), suffix == UInt8(ascii: "u") || suffix == UInt8(ascii: "U") {
                index += 1
                return .uintLiteral(value)
            }
            return .intLiteral(value)
        }
        while let next = byte(at: index), isDigit(next) { index += 1 }
        var isDouble = false
        if byte(at: index) == UInt8(ascii: "."), let next = byte(at: index + 1), isDigit(next) {
            isDouble = true
            index += 1
            while let next = byte(at: index), isDigit(next) { index += 1 }
        }
        if let marker = byte(at: index), marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            var probe = index + 1
            if let sign = byte(at: probe), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { probe += 1 }
            if let digit = byte(at: probe), isDigit(digit) {
                isDouble = true
                index = probe
                while let next = byte(at: index), isDigit(next) { index += 1 }
            }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isDouble {
            guard let value = Double(text) else { throw error("invalid double literal '\(text)'", at: start) }
            return .doubleLiteral(value)
        }
        guard let magnitude = UInt64(text) else { throw error("integer literal out of range: \(text)", at: start) }
        if let suffix = byte(at: index), suffix == UInt8(ascii: "u") || suffix == UInt8(ascii: "U") {
            index += 1
            return .uintLiteral(magnitude)
        }
        return .intLiteral(magnitude)
    }

    // MARK: Strings

    private mutating func quotedIdentifier() throws(SyntaxProblem) -> Token.Kind {
        let start = index
        index += 1
        let nameStart = index
        while let next = byte(at: index), next != UInt8(ascii: "`") {
            guard
                isIdentifierPart(next) || next == UInt8(ascii: ".") || next == UInt8(ascii: "-")
                    || next == UInt8(ascii: "/") || next == UInt8(ascii: " ")
            else { throw error("invalid character in quoted identifier", at: index) }
            index += 1
        }
        guard byte(at: index) == UInt8(ascii: "`") else { throw error("unterminated quoted identifier", at: start) }
        let name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
        index += 1
        guard !name.isEmpty else { throw error("empty quoted identifier", at: start) }
        return .quotedIdentifier(name)
    }

    private mutating func stringLiteral(raw: Bool, bytes isBytes: Bool) throws(SyntaxProblem) -> Token.Kind {
        let start = index
        let quote = bytes[index]
        let triple = byte(at: index + 1) == quote && byte(at: index + 2) == quote
        index += triple ? 3 : 1
        var decoded: [UInt8] = []
        while true {
            guard let current = byte(at: index) else { throw error("unterminated string literal", at: start) }
            if current == quote {
                if !triple {
                    index += 1
                    break
                }
                if byte(at: index + 1) == quote && byte(at: index + 2) == quote {
                    index += 3
                    break
                }
            }
            if !triple && (current == UInt8(ascii: "\n") || current == UInt8(ascii: "\r")) {
                throw error("unterminated string literal (line break in a single-quoted string)", at: start)
            }
            if current == UInt8(ascii: "\r") {
                // Line breaks in triple-quoted text are normalized to "\n".
                decoded.append(UInt8(ascii: "\n"))
                index += byte(at: index + 1) == UInt8(ascii: "\n") ? 2 : 1
                continue
            }
            if current == UInt8(ascii: "\\") && !raw {
                try escape(into: &decoded, isBytes: isBytes)
                continue
            }
            decoded.append(current)
            index += 1
        }
        if isBytes { return .bytesLiteral(decoded) }
        guard let text = String(validating: decoded, as: UTF8.self) else {
            throw error("string literal is not valid UTF-8", at: start)
        }
        return .stringLiteral(text)
    }

    private mutating func escape(into output: inout [UInt8], isBytes: Bool) throws(SyntaxProblem) {
        let start = index
        index += 1
        guard let code = byte(at: index) else { throw error("unterminated escape sequence", at: start) }
        index += 1
        func appendScalar(_ value: UInt32) throws(SyntaxProblem) {
            guard let scalar = Unicode.Scalar(value) else {
                throw error("invalid Unicode code point in escape sequence", at: start)
            }
            UTF8.encode(scalar) { output.append($0) }
        }
        switch code {
        case UInt8(ascii: "a"): output.append(0x07)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "v"): output.append(0x0B)
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"), UInt8(ascii: "?"):
            output.append(code)
        case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = code == UInt8(ascii: "u") ? 4 : (code == UInt8(ascii: "U") ? 8 : 2)
            if isBytes && count > 2 {
                throw error("\\u and \\U escapes are not allowed in bytes literals", at: start)
            }
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let next = byte(at: index), let digit = hexValue(next) else {
                    throw error("invalid escape sequence: expected \(count) hexadecimal digits", at: start)
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            if isBytes { output.append(UInt8(value)) } else { try appendScalar(value) }
        case UInt8(ascii: "0")...UInt8(ascii: "3"):
            var value = UInt32(code - UInt8(ascii: "0"))
            for _ in 0..<2 {
                guard let next = byte(at: index), next >= UInt8(ascii: "0"), next <= UInt8(ascii: "7") else {
                    throw error("invalid octal escape sequence", at: start)
                }
                value = value * 8 + UInt32(next - UInt8(ascii: "0"))
                index += 1
            }
            if isBytes { output.append(UInt8(value)) } else { try appendScalar(value) }
        default:
            throw error("invalid escape sequence '\\\(Unicode.Scalar(code))'", at: start)
        }
    }

    // MARK: Character classes

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    private func isIdentifierPart(_ byte: UInt8) -> Bool { isIdentifierStart(byte) || isDigit(byte) }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
