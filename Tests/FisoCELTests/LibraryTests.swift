import FisoCEL
import Testing

@Suite("Library: strings, math, encoders, time, lists, network")
struct LibraryTests {
    static let stringCases: [(String, CELValue)] = [
        ("'hello'.charAt(1)", CELValue.string("e")), ("'héllo'.indexOf('l')", .int(2)),
        ("'hello'.lastIndexOf('l')", .int(3)), ("'HeLLo'.lowerAscii()", .string("hello")),
        ("'ab'.upperAscii()", .string("AB")), ("'a-b-c'.replace('-', '+', 1)", .string("a+b-c")),
        ("'a,b,,c'.split(',')", stringList("a", "b", "", "c")), ("'a,b,c'.split(',', 2)", stringList("a", "b,c")),
        ("'tacocat'.substring(2, 4)", .string("co")), ("' \\t x \\n'.trim()", .string("x")),
        ("['a', 'b'].join('/')", .string("a/b")), ("'abc'.reverse()", .string("cba")),
        ("strings.quote('a\"b\\n')", .string("\"a\\\"b\\n\"")), ("'%s is %d'.format(['x', 3])", .string("x is 3")),
        ("'%.2f|%e|%x|%o|%b'.format([3.14159, 1234.5, 255, 8, 5])", .string("3.14|1.234500e+03|ff|10|101")),
        ("'%s'.format([[1, 'a', {'k': true}]])", .string("[1, a, {k: true}]")),
        ("'é'.size() + b'é'.size()", .int(3)), ("'abc'.contains('bc') && 'abc'.startsWith('ab')", .bool(true)),
        ("'abc'.endsWith('bc') && !'abc'.endsWith('x')", .bool(true)),
        ("'e\\u0301' != '\\u00e9'", .bool(true)), ("'a' < 'b' && 'B' < 'a' && 'z' < 'é'", .bool(true)),
    ]

    @Test("strings", arguments: stringCases)
    func strings(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test(
        "regular expressions (RE2 syntax)",
        arguments: [
            ("'hello'.matches('l+')", true), ("'hello'.matches('^h.*o$')", true), ("'hello'.matches('^ell')", false),
            ("'Hello'.matches('(?i)^hello$')", true), ("'a1_'.matches('^\\\\w+$')", true),
            ("'2024-06-11'.matches('^\\\\d{4}-\\\\d{2}-\\\\d{2}$')", true), ("'abc'.matches('^[^x-z]+$')", true),
            ("'line1\\nline2'.matches('(?m)^line2$')", true), ("'line1\\nline2'.matches('^line2$')", false),
            ("'日本'.matches('^\\\\p{L}+$')", true), ("'a.b'.matches('a\\\\.b')", true),
            ("'ab'.matches('a\\\\b')", false),
            ("'colour'.matches('colou?r')", true), ("'aaa'.matches('^a{2,3}$')", true),
            ("'aaaa'.matches('^a{2,3}$')", false),
            ("'foo bar'.matches('\\\\bbar')", true), ("'x'.matches('[[:alpha:]]')", true),
            ("'a+b'.matches('\\\\Qa+b\\\\E')", true),
        ])
    func regex(source: String, expected: Bool) throws {
        #expect(try evaluate(source) == .bool(expected), "\(source)")
    }

    @Test(
        "invalid regular expressions are evaluation errors",
        arguments: ["(", "a**", "\\1", "(?<=a)b", "[z-a]", "x{2,1}"])
    func badRegex(pattern: String) throws {
        let error = try #require(try evaluationError("'abc'.matches(p)", ["p": .string(pattern)]))
        #expect(error.code == .invalidArgument, "\(pattern): \(error)")
    }

    static let mathCases: [(String, CELValue)] = [
        ("math.greatest(1, 2.5, 3u)", CELValue.uint(3)), ("math.least([3, -1, 2])", .int(-1)),
        ("math.ceil(1.2)", .double(2)), ("math.floor(-1.2)", .double(-2)), ("math.round(2.5)", .double(3)),
        ("math.trunc(-2.7)", .double(-2)), ("math.abs(-3)", .int(3)), ("math.sign(-2.0)", .double(-1)),
        ("math.sqrt(16)", .double(4)), ("math.isNaN(0.0/0.0)", .bool(true)), ("math.bitAnd(6, 3)", .int(2)),
        ("math.bitShiftLeft(1, 4)", .int(16)), ("math.bitShiftRight(-1, 60)", .int(15)),
    ]

    @Test("math", arguments: mathCases)
    func math(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test("encoders")
    func encoders() throws {
        #expect(try evaluate("base64.encode(b'hello')") == .string("aGVsbG8="))
        #expect(try evaluate("base64.decode('aGVsbG8')") == .bytes(Array("hello".utf8)))
        #expect(try evaluationError("base64.decode('!!')")?.code == .invalidArgument)
    }

    static let timeCases: [(String, CELValue)] = [
        ("timestamp('2024-02-29T23:30:00Z').getDate()", CELValue.int(29)),
        ("timestamp('2024-02-29T23:30:00Z').getDate('Europe/Paris')", .int(1)),
        ("timestamp('2024-02-29T23:30:00Z').getMonth('+01:00')", .int(2)),
        ("timestamp('2024-07-01T12:00:00Z').getHours('America/New_York')", .int(8)),
        ("timestamp('2024-01-01T12:00:00Z').getHours('America/New_York')", .int(7)),
        ("timestamp('2024-06-11T10:15:30.250+02:00').getMilliseconds()", .int(250)),
        ("timestamp('2024-06-11T10:15:30+02:00').getHours()", .int(8)),
        ("string(timestamp('2024-06-11T10:15:30.120+02:00'))", .string("2024-06-11T08:15:30.12Z")),
        ("timestamp('2024-01-01T00:00:00Z').getDayOfWeek()", .int(1)),
        ("timestamp('2024-12-31T00:00:00Z').getDayOfYear()", .int(365)),
        ("duration('1h30m').getMinutes()", .int(90)), ("string(duration('1.5s'))", .string("1.5s")),
        ("string(duration('-1m1ms'))", .string("-60.001s")),
        ("timestamp('2024-01-01T00:00:00Z') + duration('36h') == timestamp('2024-01-02T12:00:00Z')", .bool(true)),
        ("timestamp('2024-01-02T00:00:00Z') - timestamp('2024-01-01T00:00:00Z') == duration('24h')", .bool(true)),
        ("int(timestamp('1970-01-01T00:01:00Z'))", .int(60)), ("timestamp(86400).getDayOfMonth()", .int(1)),
    ]

    @Test("timestamps and durations", arguments: timeCases)
    func time(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test(
        "time errors",
        arguments: [
            "timestamp('2024-13-01T00:00:00Z')", "timestamp('x')", "duration('1d')",
            "timestamp(0).getHours('Mars/Olympus')", "timestamp('9999-12-31T23:59:59Z') + duration('1s')",
        ])
    func timeErrors(source: String) throws {
        #expect(try evaluationError(source) != nil, "\(source)")
    }

    static let listCases: [(String, CELValue)] = [
        ("[1, 2, 2, 1].distinct()", intList(1, 2)),
        ("[[1], [2, [3]]].flatten()", .list([.int(1), .int(2), intList(3)])),
        ("lists.range(3)", intList(0, 1, 2)), ("[1, 2, 3].slice(1, 3)", intList(2, 3)),
        ("[3, 1, 2].sort()", intList(1, 2, 3)),
        ("['b', 'a'].sort()", stringList("a", "b")), ("[1, 2].reverse()", intList(2, 1)),
        ("[].first().hasValue()", .bool(false)),
        ("[1, 2].last().value()", .int(2)), ("sets.contains([1, 2, 3], [2.0])", .bool(true)),
        ("sets.intersects([1], [2])", .bool(false)), ("sets.equivalent([1, 1], [1u])", .bool(true)),
    ]

    @Test("lists and sets extensions", arguments: listCases)
    func lists(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }

    @Test(
        "network",
        arguments: [
            ("string(ip('2001:DB8:0:0::1'))", CELValue.string("2001:db8::1")), ("ip('10.1.2.3').family()", .int(4)),
            ("cidr('10.0.0.0/8').containsIP('10.9.8.7')", .bool(true)),
            ("cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')", .bool(true)), ("isIP('300.1.1.1')", .bool(false)),
            ("ip('::1').isLoopback() && ip('fe80::1').isLinkLocalUnicast()", .bool(true)),
        ])
    func network(source: String, expected: CELValue) throws {
        let value = try evaluate(source)
        #expect(value.isIdentical(to: expected), "\(source) gave \(value)")
    }
}
