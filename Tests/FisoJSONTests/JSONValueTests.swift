import FisoJSON
import Testing

@Suite struct JSONParsingTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue(
            parsing: #" { "a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"} } "#
        )
        #expect(
            value == [
                "a": [1, -2, 3.5, 1000.0, true, false, nil],
                "b": ["c": "d\né😀"],
            ]
        )
    }

    @Test func keepsObjectKeyOrder() throws {
        let value = try JSONValue(parsing: #"{"z":1,"a":2,"m":3}"#)
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(Array(members.keys) == ["z", "a", "m"])
        #expect(value.jsonText == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test func integersStayExactAtTheEdgesOfInt64() throws {
        #expect(try JSONValue(parsing: "9223372036854775807") == .int(.max))
        #expect(try JSONValue(parsing: "-9223372036854775808") == .int(.min))
        #expect(try JSONValue(parsing: "9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSONValue(parsing: "-0") == .int(0))
        #expect(try JSONValue(parsing: "2.0") == .double(2))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc",
        "\"\\x\"", "\"\\ud800\"", "[1] 2", "{'a':1}", "\"\u{01}\"", "NaN", "[", "{\"a\":1,}",
    ])
    func rejectsMalformedDocuments(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: bytes) }
    }

    @Test func reportsLineAndColumn() {
        do {
            _ = try JSONValue(parsing: "{\n  \"a\": 1,\n  \"b\": ?\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.column == 8)
            #expect(error.description.contains("line 3, column 8"))
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        let allowed = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONValue(parsing: allowed) }
    }
}

@Suite struct JSONSerializationTests {
    @Test func escapesWhatJSONRequires() {
        let value: JSONValue = .string("q\"b\\n\n\t\u{01}é")
        #expect(value.jsonText == #""q\"b\\n\n\t\u0001é""#)
    }

    @Test func writesNumbersTheWayJavaScriptReadsThem() {
        #expect(JSONValue.double(3).jsonText == "3")
        #expect(JSONValue.double(99.99).jsonText == "99.99")
        #expect(JSONValue.double(1e300).jsonText == "1e+300")
        #expect(JSONValue.double(-0.0).jsonText == "-0")
        #expect(JSONValue.double(.nan).jsonText == "null")
        #expect(JSONValue.int(.min).jsonText == "-9223372036854775808")
    }

    @Test func prettyTextIndentsNestedValues() {
        let value: JSONValue = ["a": [1, ["b": nil]], "c": [:], "d": []]
        #expect(
            value.prettyText
                == "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}")
    }

    @Test func roundTripsThroughText() throws {
        let text = #"{"id":"a1","n":[1,2.5,{"x":null}],"ok":false,"s":"\u0000"}"#
        let value = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }
}
