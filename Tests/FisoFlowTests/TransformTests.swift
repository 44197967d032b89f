import FisoFlow
import FisoFlowTestSupport
import FisoJSON
import Foundation
import Testing

private let orderEvent = #"""
    {"order_id":"123","amount":99.99,"qty":3,"customer":{"id":7,"name":"ada"},"items":[{"sku":"A","price":2.5},{"sku":"B","price":4}]}
    """#

@Suite struct TransformTests {
    @Test func transformFieldsShapeThePayloadInTheirOrder() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "t.yaml",
                httpFlow(
                    name: "t", sinkURL: receiver.url,
                    extra: """
                        transform:
                          fields:
                            order: data.order_id
                            total: data.amount * double(data.qty)
                            tier: 'data.amount > 50.0 ? "gold" : "standard"'
                            label: '"order-" + data.order_id + "/" + headers["X-Tenant"]'
                            customer: '{"id": data.customer.id, "name": data.customer.name.upperAscii()}'
                            skus: data.items.filter(i, i.price > 3.0).map(i, i.sku)
                            received: time < timestamp("2100-01-01T00:00:00Z")
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", orderEvent, headers: [("X-Tenant", "acme")])
                #expect(reply.status == 200)
                let data = try #require(receiver.requests.first?.json?["data"])
                guard case .object(let object) = data else {
                    Issue.record("data is not an object")
                    return
                }
                #expect(Array(object.keys) == ["order", "total", "tier", "label", "customer", "skus", "received"])
                #expect(object["order"] == "123")
                #expect(object["total"] == .double(99.99 * 3))
                #expect(object["tier"] == "gold")
                #expect(object["label"] == "order-123/acme")
                #expect(object["customer"] == ["id": 7, "name": "ADA"])
                #expect(object["skus"] == ["B"])
                #expect(object["received"] == true)
            }
        }
    }

    @Test func aFailingExpressionTakesTheErrorPath() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "t.yaml",
                httpFlow(
                    name: "t", sinkURL: receiver.url, extra: "transform:\n  fields:\n    total: data.amount * 2.0\n")
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", #"{"no_amount":true}"#)
                #expect(reply.status == 422)
                let body = try JSONValue(parsing: reply.body)
                #expect(body["code"] == "TRANSFORM_FAILED")
                #expect(body["error"]?.stringValue?.contains("field \"total\"") == true)
                #expect(body["error"]?.stringValue?.contains("amount") == true)
                #expect(receiver.count == 0)
                #expect(server.metric(#"fiso_flow_transform_errors_total{flow="t",stage="transform"}"#) == 1)
            }
        }
    }

    @Test func cloudEventOverridesMixLiteralsAndExpressions() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "ce.yaml",
                httpFlow(
                    name: "ce", sinkURL: receiver.url,
                    extra: """
                        transform:
                          fields:
                            amount: data.amount
                        cloudevents:
                          id: '"order-" + data.order_id'
                          type: order.created
                          source: order-service
                          subject: data.customer.name
                          dataschema: '"https://schemas.example.com/" + type + ".json"'
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", orderEvent)
                #expect(reply.status == 200)
                let event = try #require(receiver.requests.first?.json)
                #expect(event["id"] == "order-123")
                #expect(event["type"] == "order.created")
                #expect(event["source"] == "order-service")
                #expect(event["subject"] == "ada", "overrides read the event as it arrived, before the transform")
                #expect(event["dataschema"] == "https://schemas.example.com/fiso.event.json")
                #expect(event["data"] == ["amount": 99.99])
            }
        }
    }

    @Test func theDataOverrideSelectsPartOfTheOriginalEvent() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "d.yaml", httpFlow(name: "d", sinkURL: receiver.url, extra: "cloudevents:\n  data: data.customer\n"))
            try await withRunningServer(directory: directory.path) { server in
                _ = try await server.post("/in", orderEvent)
                #expect(receiver.requests.first?.json?["data"] == ["id": 7, "name": "ada"])
            }
        }
    }

    @Test func aFailingOverrideIsACloudEventError() async throws {
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "d.yaml", httpFlow(name: "d", sinkURL: receiver.url, extra: "cloudevents:\n  subject: data.missing\n"))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await server.post("/in", orderEvent)
                #expect(reply.status == 422)
                #expect(try JSONValue(parsing: reply.body)["code"] == "CLOUDEVENT_FAILED")
                #expect(server.metric(#"fiso_flow_transform_errors_total{flow="d",stage="cloudevent"}"#) == 1)
            }
        }
    }

    @Test func compileErrorsAreValidationErrorsWithPositions() {
        let text = """
            name: orders
            source: {type: http}
            transform:
              fields:
                ok: data.a
                broken: data.amount *+ 2
                unknown: nosuch.thing + 1
            cloudevents:
              id: data.x +
            sink: {type: stdout}
            """
        guard case .failure(let error) = FlowFileParser().parse(text, file: "orders.yaml") else {
            Issue.record("expected problems")
            return
        }
        let broken = error.problems.first { $0.path == "transform.fields.broken" }
        #expect(broken?.line == 6)
        #expect(broken?.message.contains("CEL error at column 14") == true)
        #expect(broken?.message.contains("^") == true, "the message carries a caret snippet")
        #expect(error.problems.contains { $0.path == "transform.fields.unknown" && $0.message.contains("nosuch") })
        #expect(error.problems.contains { $0.path == "cloudevents.id" })
        #expect(!error.problems.contains { $0.path == "transform.fields.ok" })
    }

    @Test(arguments: [
        ("order.created", true), ("order-service", true), ("my service", true), ("https://x.example/a", true),
        ("data.kind", false), ("\"fixed\"", false), ("type + \".v2\"", false), ("headers[\"X\"]", false),
    ])
    func overrideTextIsLiteralUnlessItIsAnExpressionOverKnownVariables(text: String, literal: Bool) throws {
        let override = try FlowExpressions().override(text)
        if case .literal(let value) = override {
            #expect(literal && value == text)
        } else {
            #expect(!literal)
        }
    }

    @Test func kafkaFlowsSeeTheKafkaVariable() throws {
        #expect(throws: Never.self) {
            try FlowExpressions(sourceVariables: ["kafka"]).compile("kafka.topic + '/' + string(kafka.partition)")
        }
        #expect(throws: (any Error).self) { try FlowExpressions().compile("kafka.topic") }
    }
}
