import FisoCEL
import FisoJSON
import Testing

@Suite("JSON ↔ CEL values")
struct JSONBridgeTests {
    @Test("JSON becomes CEL values; integral numbers are ints")
    func jsonToCEL() throws {
        let payload = try JSONValue(
            parsing:
                #"{"n": 3, "d": 3.0, "e": 1e3, "f": 2.5, "big": 1e300, "s": "x", "b": true, "z": null, "l": [1, "a"], "o": {"k": 1}}"#
        )
        let variables: [String: CELValue] = ["data": CELValue(json: payload)]
        #expect(
            try evaluate(
                "type(data.n) == int && type(data.d) == int && type(data.e) == int && type(data.f) == double"
                    + " && type(data.big) == double", variables) == .bool(true))
        #expect(try evaluate("data.d + data.e", variables) == .int(1003))
        #expect(try evaluate("data.n == data.d", variables) == .bool(true))
        #expect(try evaluate("data.s + string(data.b) + string(data.z == null)", variables) == .string("xtruetrue"))
        #expect(try evaluate("size(data.l) + size(data.o) + data.o.k", variables) == .int(4))
        #expect(try evaluate("has(data.o.k) && !has(data.o.missing) && 'k' in data.o", variables) == .bool(true))
        #expect(try evaluate("data.l.map(x, type(x))", variables) == .list([.type(.int), .type(.string)]))
        #expect(try evaluate("data.o.transformMap(k, v, v + 1)", variables).jsonValue() == ["k": 2])
    }

    @Test("CEL values become JSON as documented")
    func celToJSON() throws {
        #expect(
            try evaluate("{'a': 1, 'b': [true, null, 'x'], 'c': 1.5}").jsonValue() == [
                "a": 1, "b": [true, nil, "x"], "c": 1.5,
            ])
        #expect(try evaluate("9223372036854775807").jsonValue() == .int(.max))
        #expect(try evaluate("18446744073709551615u").jsonValue() == .string("18446744073709551615"))
        #expect(try evaluate("7u").jsonValue() == .int(7))
        #expect(try evaluate("[0.0/0.0, 1.0/0.0, -1.0/0.0]").jsonValue() == ["NaN", "Infinity", "-Infinity"])
        #expect(try evaluate("b'hello'").jsonValue() == "aGVsbG8=")
        #expect(try evaluate("timestamp('2024-06-11T10:15:30.5Z')").jsonValue() == "2024-06-11T10:15:30.5Z")
        #expect(try evaluate("duration('90m')").jsonValue() == "5400s")
        #expect(try evaluate("type(1)").jsonValue() == "int")
        #expect(try evaluate("[optional.of(1), optional.none()]").jsonValue() == [1, nil])
        #expect(try evaluate("{1: 'a', true: 'b'}").jsonValue() == ["1": "a", "true": "b"])
        #expect(throws: CELEvaluationError.self) { try evaluate("{1: 'a', '1': 'b'}").jsonValue() }
    }

    @Test("JSON-backed values round-trip without conversion")
    func passThrough() throws {
        let payload = try JSONValue(
            parsing: #"{"items": [{"sku": "a", "n": 1}], "nested": {"deep": {"x": [1.5, "y"]}}}"#)
        let variables: [String: CELValue] = ["data": CELValue(json: payload)]
        #expect(try evaluate("data.nested", variables).jsonValue() == payload["nested"])
        #expect(try evaluate("data", variables).jsonValue() == payload)
        #expect(
            try evaluate("data.items + data.items", variables).jsonValue() == [
                ["sku": "a", "n": 1], ["sku": "a", "n": 1],
            ])
    }

    @Test("free identifiers")
    func freeIdentifiers() throws {
        let environment = CELEnvironment()
        func free(_ source: String) throws -> Set<String> { try environment.parse(source).freeIdentifiers }
        #expect(try free("order.created") == ["order"])
        #expect(try free("order-service") == ["order", "service"])
        #expect(try free("[1, 2].map(x, x + y)") == ["y"])
        #expect(try free("items.exists(i, v, v > limit)") == ["items", "limit"])
        #expect(try free("cel.bind(t, 1, t + u)") == ["u"])
        #expect(try free("math.greatest(a, 1) + size(b)") == ["a", "b"])
        #expect(try free("type(x) == int || x == google.protobuf.Timestamp") == ["x"])
        #expect(try free("'literal text'").isEmpty)
        #expect(try free("[1].exists(x, .x == 1)") == ["x"])
        #expect(try free("m.?k.optMap(v, v + w)") == ["m", "w"])
        let program = try CELEnvironment(variables: ["data"]).compile("data.a + 1")
        #expect(program.freeIdentifiers == ["data"])
    }
}
