import AsyncHTTPClient
import FisoFlowTestSupport
import FisoJSON
import FisoKafka
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Interop with the official CloudEvents Python SDK: the SDK builds the requests and records sent
/// into fiso-flow, and it parses what fiso-flow delivers. Needs `python3` with `cloudevents` 1.x
/// (`scripts/setup.sh test`); the Kafka tests need the test broker (`scripts/kafka/run.sh`).
@Suite(.serialized) struct CloudEventsInteropTests {
    // MARK: HTTP in, HTTP out

    @Test func sdkStructuredEventRoundTripsThroughAStructuredHTTPSink() async throws {
        let sent = CloudEventsSDK.event(
            id: "evt-a1", type: "order.created", source: "urn:shop:checkout", subject: "order-42",
            extensions: ["tenant": "acme"], data: ["order_id": "o-42", "amount": 30]
        )
        let request = try await CloudEventsSDK.httpRequest(mode: "structured", [sent])
        #expect(request.header("Content-Type")?.hasPrefix("application/cloudevents+json") == true)
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "a.yaml",
                httpFlow(
                    name: "ce-a", sinkURL: receiver.url,
                    extra: """
                        transform:
                          fields:
                            order: data.order_id
                            kind: type
                            tenant: extensions.tenant
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 200, "\(reply.body)")
                #expect(receiver.count == 1)
                let delivered = try #require(receiver.requests.first)
                #expect(delivered.header("Content-Type")?.hasPrefix("application/cloudevents+json") == true)
                let event = try await CloudEventsSDK.parse(delivered)
                #expect(event.mode == "structured")
                #expect(event.id == "evt-a1")
                #expect(event.attribute("source") == "urn:shop:checkout")
                #expect(event.attribute("type") == "order.created")
                #expect(event.attribute("specversion") == "1.0")
                #expect(event.attribute("tenant") == "acme", "the extension attribute is kept: \(event)")
                #expect(
                    event.data?.canonical
                        == (["order": "o-42", "kind": "order.created", "tenant": "acme"] as JSONValue).canonical,
                    "the transform sees the event's data, type and extensions: \(event)"
                )
            }
        }
    }

    @Test func sdkBinaryEventGoesOutInBinaryModeWhenTheFlowAsksForIt() async throws {
        let sent = CloudEventsSDK.event(
            id: "evt-b1", type: "order.paid", source: "urn:shop:payments", subject: "order-7",
            extensions: ["region": "eu"], data: ["order_id": "o-7", "paid": true]
        )
        let request = try await CloudEventsSDK.httpRequest(mode: "binary", [sent])
        #expect(request.header("ce-id") == "evt-b1", "the SDK made a binary-mode request")
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "b.yaml", httpFlow(name: "ce-b", sinkURL: receiver.url, extra: "cloudevents:\n  mode: binary\n"))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 200, "\(reply.body)")
                let delivered = try #require(receiver.requests.first)
                let event = try await CloudEventsSDK.parse(delivered)
                #expect(event.mode == "binary")
                #expect(event.id == "evt-b1")
                #expect(event.attribute("type") == "order.paid")
                #expect(event.attribute("source") == "urn:shop:payments")
                #expect(event.attribute("subject") == "order-7")
                #expect(event.attribute("region") == "eu")
                #expect(delivered.header("Content-Type") == "application/json", "Content-Type is the datacontenttype")
                #expect(event.attribute("datacontenttype") == "application/json")
                #expect(event.data?.canonical == (["order_id": "o-7", "paid": true] as JSONValue).canonical)
                #expect(
                    delivered.json?.canonical == (["order_id": "o-7", "paid": true] as JSONValue).canonical,
                    "the body is the data")
                let ceHeaders = Set(
                    delivered.headers.keys.map { $0.lowercased() }.filter { $0.hasPrefix("ce-") }.map {
                        String($0.dropFirst(3))
                    })
                #expect(
                    ceHeaders == ["specversion", "id", "source", "type", "subject", "time", "region"],
                    "the ce-* headers are exactly the event's attributes (datacontenttype is Content-Type)"
                )
            }
        }
    }

    @Test func aBatchOfThreeIsDeliveredAsThreeEventsAndAnsweredInOrder() async throws {
        let ids = ["batch-1", "batch-2", "batch-3"]
        let events = ids.enumerated().map { index, id in
            CloudEventsSDK.event(id: id, extensions: ["seq": String(index)], data: ["n": .int(Int64(index))])
        }
        let request = try await CloudEventsSDK.httpRequest(mode: "batch", events)
        #expect(request.header("Content-Type") == "application/cloudevents-batch+json")
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("c.yaml", httpFlow(name: "ce-c", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 200, "\(reply.body)")
                let results = try batchResults(reply.body)
                #expect(results.count == 3)
                #expect(results.map { $0["id"]?.stringValue } == ids, "results in the order of the batch")
                #expect(results.allSatisfy { $0["status"] == "delivered" }, "\(reply.body)")
                #expect(receiver.count == 3)
                var delivered: [String: CloudEventsSDK.ParsedEvent] = [:]
                for request in receiver.requests {
                    let event = try await CloudEventsSDK.parse(request)
                    delivered[event.id ?? ""] = event
                }
                #expect(Set(delivered.keys) == Set(ids))
                #expect(delivered["batch-2"]?.attribute("seq") == "1")
                #expect(delivered["batch-3"]?.data == ["n": 2])
            }
        }
    }

    @Test func aBatchWithAFailedEventIsAnswered207WithEachOutcome() async throws {
        let ids = ["mixed-1", "mixed-2", "mixed-3"]
        let request = try await CloudEventsSDK.httpRequest(
            mode: "batch", ids.map { CloudEventsSDK.event(id: $0, data: ["id": .string($0)]) })
        try await withTestReceiver({ _, request in
            request.json?["id"] == "mixed-2" ? .init(status: 400, body: #"{"error":"refused"}"#) : .init(status: 200)
        }) { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "c.yaml",
                httpFlow(name: "ce-c2", sinkURL: receiver.url, extra: "errorHandling: {backoff: {initial: 10ms}}\n"))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 207, "\(reply.body)")
                let results = try batchResults(reply.body)
                #expect(results.map { $0["id"]?.stringValue } == ids)
                #expect(results.map { $0["status"]?.stringValue } == ["delivered", "failed", "delivered"])
                #expect(Set(receiver.requests.compactMap { $0.json?["id"]?.stringValue }) == Set(ids))
            }
        }
    }

    @Test func overridesChangeTypeAndSetExtensionsButKeepTheID() async throws {
        let sent = CloudEventsSDK.event(
            id: "evt-d1", type: "order.created", source: "urn:shop:checkout", extensions: ["region": "eu"],
            data: ["tenant": "globex", "n": 1]
        )
        let request = try await CloudEventsSDK.httpRequest(mode: "structured", [sent])
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "d.yaml",
                httpFlow(
                    name: "ce-d", sinkURL: receiver.url,
                    extra: """
                        cloudevents:
                          type: order.v2
                          extensions:
                            tenant: data.tenant
                        """
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 200, "\(reply.body)")
                let event = try await CloudEventsSDK.parse(try #require(receiver.requests.first))
                #expect(event.attribute("type") == "order.v2")
                #expect(event.attribute("tenant") == "globex", "the extension the flow sets: \(event)")
                #expect(event.id == "evt-d1", "the id is kept")
                #expect(event.attribute("source") == "urn:shop:checkout", "the source is kept")
                #expect(event.attribute("region") == "eu", "the incoming extension is kept")
            }
        }
    }

    @Test func anEventOfAnotherSpecVersionOrWithoutRequiredAttributesIsRefused() async throws {
        // The SDK still speaks CloudEvents 0.3.
        let old = CloudEventsSDK.event(id: "evt-e1", specversion: "0.3", data: ["n": 1])
        let oldStructured = try await CloudEventsSDK.httpRequest(mode: "structured", [old])
        let oldBinary = try await CloudEventsSDK.httpRequest(mode: "binary", [old])
        #expect(oldBinary.header("ce-specversion") == "0.3")
        // The SDK cannot build an event without `source`; these are written by hand.
        let noSource = CloudEventsSDK.HTTPRequest(
            headers: [("Content-Type", "application/cloudevents+json")],
            body: Array(#"{"specversion":"1.0","id":"evt-e2","type":"order.created","data":{"n":1}}"#.utf8)
        )
        let noID = CloudEventsSDK.HTTPRequest(
            headers: [
                ("Content-Type", "application/json"), ("ce-specversion", "1.0"), ("ce-source", "urn:shop"),
                ("ce-type", "order.created"),
            ],
            body: Array(#"{"n":1}"#.utf8)
        )
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("e.yaml", httpFlow(name: "ce-e", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path) { server in
                for (what, request) in [
                    ("structured 0.3", oldStructured), ("binary 0.3", oldBinary), ("no source", noSource),
                    ("binary without ce-id", noID),
                ] {
                    let reply = try await send(request, to: server)
                    #expect(reply.status == 400, "\(what): \(reply.body)")
                    #expect(
                        (try? JSONValue(parsing: reply.body))?["code"] == "INVALID_CLOUDEVENT", "\(what): \(reply.body)"
                    )
                }
                #expect(receiver.count == 0, "nothing is delivered")
            }
        }
    }

    // MARK: Headers

    @Test func credentialsStayBehindUnlessTheSourceForwardsThem() async throws {
        let request = try await CloudEventsSDK.httpRequest(
            mode: "structured", [CloudEventsSDK.event(id: "evt-f1", data: ["n": 1])])
        let callerHeaders = [
            ("Authorization", "Bearer caller-token"), ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("Cookie", "session=abc123"), ("Set-Cookie", "tracking=1"), ("User-Agent", "ce-interop-test/1.0"),
            ("X-Tenant", "acme"), ("X-Internal", "drop-me"),
        ]
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "default.yaml",
                httpFlow(
                    name: "ce-f-default", path: "/default", sinkURL: receiver.url,
                    sourceConfig: [("dropHeaders", "[X-Internal]")]
                )
            )
            try directory.write(
                "allow.yaml",
                httpFlow(
                    name: "ce-f-allow", path: "/allow", sinkURL: receiver.url,
                    sourceConfig: [("forwardHeaders", "[Authorization, Cookie, X-Tenant]")]
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let byDefault = try await send(request, to: server, path: "/default", adding: callerHeaders)
                #expect(byDefault.status == 200, "\(byDefault.body)")
                let plain = try #require(receiver.requests.last)
                #expect(plain.header("Authorization") == nil)
                #expect(plain.header("Proxy-Authorization") == nil)
                #expect(plain.header("Cookie") == nil)
                #expect(plain.header("Set-Cookie") == nil)
                #expect(plain.header("User-Agent") != "ce-interop-test/1.0")
                #expect(plain.header("X-Internal") == nil, "dropHeaders removes it")
                #expect(plain.header("X-Tenant") == "acme", "other headers still travel")

                let allowed = try await send(request, to: server, path: "/allow", adding: callerHeaders)
                #expect(allowed.status == 200, "\(allowed.body)")
                let listed = try #require(receiver.requests.last)
                #expect(listed.header("Authorization") == "Bearer caller-token")
                #expect(listed.header("Cookie") == "session=abc123")
                #expect(listed.header("X-Tenant") == "acme")
                #expect(listed.header("X-Internal") == nil, "only the listed headers pass")
                #expect(listed.header("Proxy-Authorization") == nil)
                #expect(listed.header("User-Agent") != "ce-interop-test/1.0")
                #expect(try await CloudEventsSDK.parse(listed).id == "evt-f1")
            }
        }
    }

    @Test func sinkHeaderValuesComeFromTheEnvironmentAndFromFiles() async throws {
        // A variable the test process already has: setting one here would race with other suites
        // reading the environment.
        let home = try #require(ProcessInfo.processInfo.environment["HOME"], "HOME is set")
        let secrets = try TemporaryDirectory()
        try secrets.write("api-key", "key-from-file")
        let request = try await CloudEventsSDK.httpRequest(
            mode: "structured", [CloudEventsSDK.event(id: "evt-f2", data: ["n": 1])])
        let headers =
            "{X-Home: {valueFrom: {env: HOME}}, "
            + "X-Api-Key: {valueFrom: {file: \"\(secrets.file("api-key"))\"}}}"
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write(
                "h.yaml",
                httpFlow(
                    name: "ce-f-secrets", sinkURL: receiver.url,
                    sinkConfig: [("headers", headers)]
                )
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(
                    request, to: server, adding: [("Authorization", "Bearer caller-token")])
                #expect(reply.status == 200, "\(reply.body)")
                let delivered = try #require(receiver.requests.first)
                #expect(delivered.header("X-Home") == home)
                #expect(delivered.header("X-Api-Key") == "key-from-file")
                #expect(delivered.header("Authorization") == nil, "the caller's credentials stay behind")
            }
        }
        withExtendedLifetime(secrets) {}
    }

    @Test func aBinaryModeInputLeavesNoCEHeaderInAStructuredDelivery() async throws {
        let sent = CloudEventsSDK.event(
            id: "evt-g1", type: "order.shipped", subject: "order-9",
            extensions: ["tenant": "acme", "priority": "high"],
            data: ["order_id": "o-9"]
        )
        let request = try await CloudEventsSDK.httpRequest(mode: "binary", [sent])
        try await withTestReceiver { receiver in
            let directory = try TemporaryDirectory()
            try directory.write("g.yaml", httpFlow(name: "ce-g", sinkURL: receiver.url))
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 200, "\(reply.body)")
                let delivered = try #require(receiver.requests.first)
                let ceHeaders = delivered.headers.keys.filter { $0.lowercased().hasPrefix("ce-") }
                #expect(ceHeaders.isEmpty, "no ce-* header in a structured delivery: \(ceHeaders)")
                #expect(delivered.header("Content-Type")?.hasPrefix("application/cloudevents+json") == true)
                let event = try await CloudEventsSDK.parse(delivered)
                #expect(event.mode == "structured")
                #expect(event.id == "evt-g1")
                #expect(event.attribute("type") == "order.shipped")
                #expect(event.attribute("tenant") == "acme")
                #expect(event.attribute("priority") == "high")
                #expect(event.data == ["order_id": "o-9"])
            }
        }
    }

    // MARK: Kafka

    @Test func sdkKafkaRecordsInBothModesReachAnHTTPSinkWithTheirIDs() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("ce-in")
            let group = kafkaTestName("g")
            let binary = try await CloudEventsSDK.kafkaRecord(
                mode: "binary",
                CloudEventsSDK.event(id: "kafka-bin-1", extensions: ["tenant": "acme"], data: ["n": 1]),
                key: "customer-1", topic: topic
            )
            #expect(binary.headers.contains { $0.name == "ce_id" }, "the SDK made a binary-mode record")
            // The 1.x SDK writes the data's content type on a structured record; the Kafka protocol
            // binding (and SDK 2.x) write application/cloudevents+json. Both must be understood.
            let structured = try await CloudEventsSDK.kafkaRecord(
                mode: "structured",
                CloudEventsSDK.event(id: "kafka-str-1", extensions: ["tenant": "acme"], data: ["n": 2]),
                key: "customer-2", topic: topic
            )
            let structuredBySpec = try await CloudEventsSDK.kafkaRecord(
                mode: "structured",
                CloudEventsSDK.event(id: "kafka-str-2", extensions: ["tenant": "acme"], data: ["n": 3]),
                key: "customer-3", topic: topic, specContentType: true
            )
            try await broker.produce([binary, structured, structuredBySpec])
            try await withTestReceiver { receiver in
                let directory = try TemporaryDirectory()
                try directory.write(
                    "k.yaml",
                    kafkaSourceFlow(
                        name: "ce-k2h", broker: broker, topic: topic, group: group,
                        sink: httpSinkBlock(receiver.url)
                    )
                )
                try await withRunningServer(directory: directory.path) { _ in
                    try await waitUntil("3 events arrived", timeout: .seconds(30)) { receiver.count >= 3 }
                }
                var delivered: [String: CloudEventsSDK.ParsedEvent] = [:]
                for request in receiver.requests {
                    let event = try await CloudEventsSDK.parse(request)
                    delivered[event.id ?? ""] = event
                    let leaked = request.headers.keys.filter {
                        $0.lowercased().hasPrefix("ce-") || $0.lowercased().hasPrefix("ce_")
                    }
                    #expect(leaked.isEmpty, "the ce_ record headers became attributes, not HTTP headers: \(leaked)")
                }
                #expect(delivered["kafka-bin-1"] != nil, "the SDK's binary record keeps its id: \(delivered.keys)")
                #expect(
                    delivered["kafka-str-1"] != nil,
                    "the SDK's structured record (content-type = datacontenttype) keeps its id: \(delivered.keys)")
                #expect(
                    delivered["kafka-str-2"] != nil,
                    "a structured record with content-type application/cloudevents+json keeps its id: \(delivered.keys)"
                )
                for (id, number) in [("kafka-bin-1", 1), ("kafka-str-1", 2), ("kafka-str-2", 3)] {
                    let event = delivered[id]
                    #expect(event?.attribute("tenant") == "acme", "\(id): \(String(describing: event))")
                    #expect(event?.attribute("type") == "order.created", "\(id)")
                    #expect(event?.attribute("source") == "urn:fiso:tests:shop", "\(id)")
                    #expect(event?.data == ["n": .int(Int64(number))], "\(id): the data is the event's data")
                }
            }
        }
    }

    @Test func anHTTPEventGoesToKafkaInBinaryModeThatTheSDKReads() async throws {
        try await FlowTestBroker.with { broker in
            let topic = try await broker.createTopic("ce-out")
            let request = try await CloudEventsSDK.httpRequest(
                mode: "structured",
                [
                    CloudEventsSDK.event(
                        id: "evt-h1", type: "order.created", subject: "order-5", extensions: ["tenant": "acme"],
                        data: ["order_id": "o-5"]
                    )
                ]
            )
            let directory = try TemporaryDirectory()
            try directory.write(
                "h.yaml",
                """
                name: ce-h2k
                source:
                  type: http
                  config: {listenAddr: "127.0.0.1:0", path: /in}
                cloudevents:
                  mode: binary
                \(kafkaSinkBlock(topic: topic))
                \(broker.clusterBlock())
                """
            )
            try await withRunningServer(directory: directory.path) { server in
                let reply = try await send(request, to: server)
                #expect(reply.status == 202, "\(reply.body)")
            }
            let record = try #require(try await broker.read(1, from: topic).first)
            #expect(record.header("ce_specversion") == "1.0", "a binary-mode record")
            #expect(record.header("content-type") == "application/json", "content-type is the datacontenttype")
            let event = try await CloudEventsSDK.parse(record)
            #expect(event.mode == "binary")
            #expect(event.id == "evt-h1")
            #expect(event.attribute("type") == "order.created")
            #expect(event.attribute("subject") == "order-5")
            #expect(event.attribute("tenant") == "acme")
            #expect(event.attribute("datacontenttype") == "application/json")
            #expect(event.data == ["order_id": "o-5"])
        }
    }
}

// MARK: Helpers

/// Sends the SDK's request, headers and body exactly, to the flow on `path`, with `extra` headers.
private func send(
    _ request: CloudEventsSDK.HTTPRequest, to server: RunningServer, path: String = "/in",
    adding extra: [(String, String)] = []
) async throws -> (status: Int, body: String) {
    var http = HTTPClientRequest(url: "http://127.0.0.1:\(server.ingressPort)\(path)")
    http.method = .POST
    for (name, value) in request.headers + extra { http.headers.add(name: name, value: value) }
    http.body = .bytes(ByteBuffer(bytes: request.body))
    let response = try await server.client.execute(http, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

/// The `results` of a batch answer.
private func batchResults(_ body: String) throws -> [JSONValue] {
    guard case .array(let results)? = try JSONValue(parsing: body)["results"] else {
        throw CloudEventsSDK.UnexpectedOutput(command: "(batch answer)", output: .string(body))
    }
    return results
}
