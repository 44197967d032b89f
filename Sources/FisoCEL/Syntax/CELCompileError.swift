/// Why an expression does not compile, with its position in the source.
public struct CELCompileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `unexpected ')', expected an expression`.
    public let message: String
    /// 1-based line of the problem.
    public let line: Int
    /// 1-based column of the problem, counted in Unicode code points.
    public let column: Int
    /// UTF-8 byte offset of the problem from the start of the source.
    public let offset: Int
    /// The source line the problem is on (without its line break).
    public let sourceLine: String

    init(message: String, offset: Int, source: SourceText) {
        self.message = message
        self.offset = offset
        let location = source.location(of: offset)
        line = location.line
        column = location.column
        sourceLine = location.lineText
    }

    /// The source line and a caret under the column, each prefixed with ` | `.
    public var snippet: String {
        var caretLine = ""
        for (index, scalar) in sourceLine.unicodeScalars.enumerated() where index < column - 1 {
            caretLine.unicodeScalars.append(scalar == "\t" ? "\t" : " ")
        }
        return " | \(sourceLine)\n | \(caretLine)^"
    }

    /// `line:column: message` followed by the snippet.
    public var description: String { "\(line):\(column): \(message)\n\(snippet)" }
}

/// A compile problem not yet located in the source. Parsing and planning recurse once per
/// nesting level, and a small error type keeps each of those stack frames small.
struct SyntaxProblem: Error {
    let message: String
    let offset: Int
}

/// The source of an expression with byte offsets mapped to lines and columns.
struct SourceText: Sendable {
    let text: String
    let bytes: [UInt8]

    init(_ text: String) {
        self.text = text
        bytes = Array(text.utf8)
    }

    func location(of offset: Int) -> (line: Int, column: Int, lineText: String) {
        let end = min(max(offset, 0), bytes.count)
        var line = 1
        var lineStart = 0
        for index in 0..<end where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        var lineEnd = lineStart
        while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n"), bytes[lineEnd] != UInt8(ascii: "\r") {
            lineEnd += 1
        }
        var column = 1
        for index in lineStart..<end where bytes[index] & 0xC0 != 0x80 { column += 1 }
        let lineText = String(decoding: bytes[lineStart..<lineEnd], as: UTF8.self)
        return (line, column, lineText)
    }
}
