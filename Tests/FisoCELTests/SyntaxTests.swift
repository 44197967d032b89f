import FisoCEL
import Testing

@Suite("Syntax: literals, operators, errors")
struct SyntaxTests {
    @Test(
        "literals of every form",
        arguments: [
            ("42", CELValue.int(42)), ("0x2A", .int(42)), ("42u", .uint(42)), ("0x2AU", .uint(42)),
            ("-9223372036854775808", .int(.min)), ("1.5", .double(1.5)), (".5", .double(0.5)), ("1e3", .double(1000)),
            ("-2.3e+1", .double(-23)), ("true", .bool(true)), ("null", .null), ("'a\\tb'", .string("a\tb")),
            ("\"\\u00e9\\U0001F600\"", .string("é😀")), ("'\\x41\\101\\X42'", .string("AAB")),
            ("r'\\n'", .string("\\n")), ("R\"\\d+\"", .string("\\d+")), ("'''a'b\nc'''", .string("a'b\nc")),
            ("\"\"\"x\"\"y\"\"\"", .string("x\"\"y")), ("b'\\xff\\000'", .bytes([0xFF, 0])),
            ("b'ÿ'", .bytes([0xC3, 0xBF])), ("br'\\x'", .bytes(Array("\\x".utf8))), ("'\\377'", .string("ÿ")),
            ("'\\a\\b\\f\\v\\?\\`\\''", .string("\u{07}\u{08}\u{0C}\u{0B}?`'")),
        ])
    func literals(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test(
        "operator precedence and associativity",
        arguments: [
            ("1 + 2 * 3", CELValue.int(7)), ("(1 + 2) * 3", .int(9)), ("10 - 4 - 3", .int(3)), ("24 / 4 / 2", .int(3)),
            ("-2 * 3", .int(-6)), ("!true || true", .bool(true)), ("true || false && false", .bool(true)),
            ("1 < 2 == true", .bool(true)), ("2 in [1, 2] && 3 > 2", .bool(true)),
            ("true ? 1 : false ? 2 : 3", .int(1)), ("false ? 1 : false ? 2 : 3", .int(3)), ("--5", .int(5)),
            ("!!true", .bool(true)), ("7 % 4 * 2", .int(6)),
        ])
    func precedence(source: String, expected: CELValue) throws {
        #expect(try evaluate(source).isIdentical(to: expected))
    }

    @Test("comments and whitespace")
    func comments() throws {
        #expect(try evaluate("1 + // one\n\t2 // two\r\n") == .int(3))
    }

    @Test("reserved words cannot be identifiers but can be selected")
    func reservedWords() throws {
        let error = try #require(compileError("package + 1"))
        #expect(error.message.contains("reserved"))
        #expect(try evaluate("{'package': 1}.package") == .int(1))
        #expect(compileError("x.if()", variables: ["x"])?.message.contains("reserved") != true)
    }

    @Test("parse errors carry line, column and a caret snippet")
    func errorPosition() throws {
        let error = try #require(compileError("1 +\n  (2 * )"))
        #expect(error.line == 2)
        #expect(error.column == 8)
        #expect(error.sourceLine == "  (2 * )")
        #expect(error.snippet == " |   (2 * )\n |        ^")
        #expect(error.description.hasPrefix("2:8: unexpected ')'"))
    }

    @Test(
        "invalid literals are compile errors",
        arguments: [
            "9223372036854775808", "18446744073709551616u", "'unterminated", "'line\nbreak'", "'\\s'",
            "'\\uD800'", "b'\\u0041'", "'\\U00110000'", "0x", "`a`", "1 +", "[1, 2", "{1: 2", "a.", "f(,)",
        ])
    func invalidSyntax(source: String) {
        #expect(compileError(source) != nil, "\(source) compiled")
    }

    @Test("backquoted field names")
    func quotedFields() throws {
        #expect(try evaluate("{'content-type': 'json'}.`content-type`") == .string("json"))
        #expect(try evaluate("has({'a.b': 1}.`a.b`)") == .bool(true))
    }

    @Test("long flat chains are fine")
    func longChains() throws {
        let sum = Array(repeating: "1", count: 200).joined(separator: " + ")
        #expect(try evaluate(sum) == .int(200))
        let conjunction = Array(repeating: "true", count: 5_000).joined(separator: " && ")
        #expect(try evaluate(conjunction) == .bool(true))
        let list = "[" + Array(repeating: "1", count: 10_000).joined(separator: ",") + "]"
        #expect(try evaluate("size(\(list))") == .int(10_000))
    }
}
