import ArgumentParser
import FisoCEL
import FisoJSON

/// CEL transform cost against JSON decoding and encoding, in one run.
///
/// For a ~1 KiB event and a six-field transform (mapping, arithmetic, conditional, string
/// concatenation, nested object, macro) it measures (a) decode + encode of the event alone,
/// (b) decode + evaluate the six fields into one JSON object + encode that object, and
/// (c) evaluating the six fields alone. The goal is (b) ≤ 1.5 × (a).
struct CELBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cel",
        abstract: "Cost of a six-field CEL transform against JSON decode + encode of a 1 KiB event.",
        discussion: """
            Each measurement runs in rounds of a fixed number of operations; the fastest round of each is \
            reported, so background noise on a shared machine inflates neither side of the ratio.
            """
    )

    @Option(help: "Operations per round.") var iterations: Int = 20_000
    @Option(help: "Rounds per measurement (the fastest is reported).") var rounds: Int = 7

    /// The six fields of the transform, in output order.
    static let fields: [(name: String, expression: String)] = [
        ("email", "data.customer.email"),
        ("total", "data.order.subtotal + data.order.shipping"),
        ("size", "data.order.subtotal > 100.0 ? 'large' : 'small'"),
        ("customer", "data.customer.firstName + ' ' + data.customer.lastName"),
        ("shipTo", "{'city': data.customer.address.city, 'country': data.customer.address.country}"),
        ("skus", "data.items.filter(i, i.price > 20.0).map(i, i.sku)"),
    ]

    /// A realistic order event, padded to 1,024 bytes of compact JSON.
    static func event() -> [UInt8] {
        var event: JSONValue = [
            "id": "ord-20240611-0042", "type": "order.created", "source": "shop/checkout",
            "time": "2024-06-11T10:15:30Z",
            "customer": [
                "id": "c-1029", "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                "tier": "gold",
                "address": [
                    "street": "12 Analytical Row", "city": "London", "zip": "N1 9GU", "country": "GB",
                ],
            ],
            "order": ["currency": "EUR", "subtotal": 249.5, "shipping": 4.99, "discountCode": "SPRING24"],
            "items": [
                ["sku": "BK-001", "name": "Notes on the Analytical Engine", "price": 39.9, "qty": 1],
                ["sku": "PN-778", "name": "Fountain pen", "price": 89.0, "qty": 2],
                ["sku": "NB-123", "name": "Notebook", "price": 12.5, "qty": 4],
                ["sku": "IN-450", "name": "Ink, blue", "price": 6.25, "qty": 3],
            ],
            "tags": ["priority", "gift"],
            "notes": "",
        ]
        let unpadded = event.serialized().count
        if case .object(var members) = event {
            members["notes"] = .string(String(repeating: "n", count: max(0, 1024 - unpadded)))
            event = .object(members)
        }
        return event.serialized()
    }

    func run() throws {
        let eventBytes = Self.event()
        let environment = CELEnvironment(variables: ["data"])
        var programs: [(name: String, program: CELProgram)] = []
        for field in Self.fields {
            do {
                programs.append((field.name, try environment.compile(field.expression)))
            } catch {
                throw ValidationError("field '\(field.name)': \(error)")
            }
        }
        let transform = { (payload: JSONValue) throws -> JSONValue in
            let activation: CELActivation = ["data": CELValue(json: payload)]
            var output = JSONObject(minimumCapacity: programs.count)
            for (name, program) in programs {
                output[name] = try program.evaluate(activation).jsonValue()
            }
            return .object(output)
        }
        let parsedEvent = try JSONValue(parsing: eventBytes)
        print("Transform output: \(try transform(parsedEvent).jsonText)")
        print(
            "Event: \(eventBytes.count) bytes, \(Self.fields.count) fields, \(iterations) operations × \(rounds) rounds"
        )

        var sink = 0
        let operations: [() throws -> Void] = [
            {
                let value = try JSONValue(parsing: eventBytes)
                sink &+= value.serialized().count
            },
            {
                let value = try JSONValue(parsing: eventBytes)
                sink &+= try transform(value).serialized().count
            },
            {
                if case .object(let output) = try transform(parsedEvent) { sink &+= output.count }
            },
        ]
        let timings = try measure(operations)
        let (decodeEncode, decodeTransformEncode, evaluateOnly) = (timings[0], timings[1], timings[2])
        let ratio = decodeTransformEncode / decodeEncode
        print("(a) decode + encode:                 \(format(decodeEncode)) ns/op")
        print("(b) decode + evaluate 6 + encode:    \(format(decodeTransformEncode)) ns/op")
        print("(c) evaluate 6 fields only:          \(format(evaluateOnly)) ns/op")
        print("(b)/(a) = \(format(ratio, digits: 2)) (goal ≤ 1.50)")
        print(
            "Transforms per second (c): \(format(1e9 / evaluateOnly, digits: 0)); "
                + "field evaluations per second: \(format(1e9 / evaluateOnly * Double(Self.fields.count), digits: 0))")
        if sink == 42 { print("") }  // keeps the measured work observable
    }

    /// The fastest round's time per operation of each operation, in nanoseconds. Rounds of the
    /// operations are interleaved, so a busy machine slows all of them alike.
    private func measure(_ operations: [() throws -> Void]) throws -> [Double] {
        for operation in operations {
            for _ in 0..<max(1, iterations / 10) { try operation() }
        }
        var best = [Double](repeating: .infinity, count: operations.count)
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            for (index, operation) in operations.enumerated() {
                let start = clock.now
                for _ in 0..<iterations { try operation() }
                let elapsed = clock.now - start
                let nanoseconds =
                    Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
                best[index] = min(best[index], nanoseconds / Double(iterations))
            }
        }
        return best
    }

    private func format(_ value: Double, digits: Int = 0) -> String {
        if digits == 0 { return String(Int(value.rounded())) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        return String((value * scale).rounded() / scale)
    }
}
