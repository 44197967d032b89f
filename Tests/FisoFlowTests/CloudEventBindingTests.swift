import FisoJSON
import Foundation
import Testing

@testable import FisoFlow

private func decode(
    _ body: String?, contentType: String? = nil, headers: EventHeaders = [:],
    binding: EventDecoder.Binding = .http
) -> Result<Event, EventDecoder.Failure> {
    EventDecoder.event(
        from: body.map { Array($0.utf8) }, named: "request body", contentType: contentType, headers: headers,
        binding: binding, flow: "f", origin: []
    )
}

private func decoded(
    _ body: String?, contentType: String? = nil, headers: EventHeaders = [:],
    binding: EventDecoder.Binding = .http
) throws -> Event {
    try decode(body, contentType: contentType, headers: headers, binding: binding).mapError { $0.error }.get()
}

private func decodingError(
    _ body: String?, contentType: String? = nil, headers: EventHeaders = [:]
) -> FlowError? {
    if case .failure(let failure) = decode(body, contentType: contentType, headers: headers) { return failure.error }
    return nil
}

@Suite struct CloudEventDecodingTests {
    static let structured =
        #"{"specversion":"1.0","id":"e-1","source":"/orders","type":"order.created","time":"2024-01-15T10:00:00Z","#
        + #""subject":"o-9","tenant":"acme","priority":3,"datacontenttype":"application/json","data":{"order_id":"9"}}"#

    @Test func aStructuredEventsDataIsThePayloadAndItsAttributesAreKept() throws {
        for contentType in ["application/cloudevents+json; charset=utf-8", nil] {
            let event = try decoded(Self.structured, contentType: contentType)
            #expect(event.payload == ["order_id": "9"])
            #expect(event.attributes.id == "e-1")
            #expect(event.attributes.source == "/orders")
            #expect(event.attributes.type == "order.created")
            #expect(event.attributes.subject == "o-9")
            #expect(event.attributes.extensions == ["tenant": "acme", "priority": 3])
            // The envelope built on the way out is the event that came in.
            let outgoing = CloudEvent(attributes: event.attributes, data: event.payload)
            guard case .object(let incoming) = try JSONValue(parsing: Self.structured) else { return }
            #expect(
                Dictionary(uniqueKeysWithValues: outgoing.json.map { ($0.key, $0.value) })
                    == Dictionary(uniqueKeysWithValues: incoming.map { ($0.key, $0.value) }))
        }
    }

    @Test func specVersionsOtherThanOneZeroAndMissingAttributesAreRejected() {
        let old = #"{"specversion":"0.3","id":"e","source":"s","type":"t","data":{}}"#
        #expect(decodingError(old)?.code == .invalidCloudEvent)
        #expect(decodingError(old)?.message.contains("specversion \"0.3\"") == true)
        let noID = #"{"specversion":"1.0","source":"s","type":"t"}"#
        #expect(decodingError(noID, contentType: "application/cloudevents+json")?.code == .invalidCloudEvent)
        #expect(decodingError("[1]", contentType: "application/cloudevents+json")?.code == .invalidCloudEvent)
        let badTime = #"{"specversion":"1.0","id":"e","source":"s","type":"t","time":"yesterday"}"#
        #expect(decodingError(badTime)?.message.contains("RFC 3339") == true)
        let badExtension = #"{"specversion":"1.0","id":"e","source":"s","type":"t","Tenant":"x"}"#
        #expect(decodingError(badExtension)?.message.contains("lower-case") == true)
    }

    @Test func aPlainPayloadIsNotACloudEvent() throws {
        let event = try decoded(#"{"id":"1","type":"x"}"#)
        #expect(event.payload == ["id": "1", "type": "x"])
        #expect(event.attributes.source == "fiso-flow/f")
        #expect(event.attributes.extensions.isEmpty)
    }

    @Test func binaryModeReadsPercentDecodedAttributeHeadersAndConsumesThem() throws {
        let headers: EventHeaders = [
            "ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/billing", "ce-type": "invoice.paid",
            "ce-subject": "Gr%C3%BC%C3%9Fe%20you", "ce-tenant": "acme", "X-Other": "kept",
        ]
        let event = try decoded(#"{"n":1}"#, contentType: "application/json", headers: headers)
        #expect(event.payload == ["n": 1])
        #expect(event.attributes.id == "b-1")
        #expect(event.attributes.subject == "Grüße you")
        #expect(event.attributes.extensions == ["tenant": "acme"])
        #expect(event.attributes.dataContentType == "application/json")
        #expect(event.headers.map(\.name) == ["X-Other"], "the ce- headers are consumed")
    }

    @Test func binaryDataThatIsNotJSONIsTextOrBase64() throws {
        let headers: EventHeaders = ["ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"]
        let text = try decoded("hello", contentType: "text/plain", headers: headers)
        #expect(text.payload == "hello")
        #expect(!text.attributes.dataIsBase64)
        let bytes = try decoded("\u{1}\u{2}", contentType: "application/octet-stream", headers: headers)
        #expect(bytes.payload == .string(Data([1, 2]).base64EncodedString()))
        #expect(bytes.attributes.dataIsBase64)
        let outgoing = CloudEvent(attributes: bytes.attributes, data: bytes.payload)
        #expect(outgoing.json["data_base64"] == .string("AQI="))
        #expect(outgoing.json["data"] == nil)
        #expect(outgoing.binaryModeData().bytes == [1, 2])
        #expect(outgoing.binaryModeData().contentType == "application/octet-stream")
        #expect(decodingError("{", contentType: "application/json", headers: headers)?.code == .invalidJSON)
    }

    @Test func kafkaBinaryModeUsesUnderscoreHeadersWithoutPercentDecoding() throws {
        let headers: EventHeaders = [
            "ce_specversion": "1.0", "ce_id": "k-1", "ce_source": "/kafka", "ce_type": "t", "ce_note": "50%off",
        ]
        let event = try decoded(#"{"n":2}"#, contentType: "application/json", headers: headers, binding: .kafka)
        #expect(event.attributes.id == "k-1")
        #expect(event.attributes.extensions == ["note": "50%off"])
        #expect(event.headers.isEmpty)
    }

    @Test func aBatchIsEveryEventOrNone() throws {
        let batch = "[\(Self.structured),\(Self.structured.replacingOccurrences(of: "e-1", with: "e-2"))]"
        let events = try EventDecoder.batch(from: Array(batch.utf8), headers: [:], flow: "f", origin: []).get()
        #expect(events.map(\.attributes.id) == ["e-1", "e-2"])
        let broken = "[\(Self.structured),{\"specversion\":\"1.0\"}]"
        guard
            case .failure(let error) = EventDecoder.batch(from: Array(broken.utf8), headers: [:], flow: "f", origin: [])
        else {
            Issue.record("expected the batch to be refused")
            return
        }
        #expect(error.code == .invalidCloudEvent)
        #expect(error.message.contains("batch element 1"))
    }

    @Test func binaryModeHeadersArePercentEncodedForHTTP() throws {
        let event = try decoded(Self.structured.replacingOccurrences(of: "o-9", with: "größe 100%"))
        let outgoing = CloudEvent(attributes: event.attributes, data: event.payload)
        let http = Dictionary(uniqueKeysWithValues: outgoing.binaryModeHeaders(prefix: "ce-", percentEncoding: true))
        #expect(http["ce-subject"] == "gr%C3%B6%C3%9Fe%20100%25")
        #expect(http["ce-priority"] == "3")
        #expect(http["ce-datacontenttype"] == nil)
        let kafka = Dictionary(uniqueKeysWithValues: outgoing.binaryModeHeaders(prefix: "ce_", percentEncoding: false))
        #expect(kafka["ce_subject"] == "größe 100%")
        #expect(outgoing.binaryModeData().bytes == Array(#"{"order_id":"9"}"#.utf8))
    }
}

@Suite struct HeaderPolicyTests {
    static let fields: [(name: String, value: String)] = [
        ("Authorization", "Bearer secret"), ("Cookie", "session=1"), ("User-Agent", "curl"),
        ("Connection", "keep-alive"), ("X-Request-ID", "r-1"), ("x-request-id", "r-2"), ("Accept", "*/*"),
    ]

    @Test func credentialsAndClientIdentityAreDroppedByDefault() {
        let headers = HeaderPolicy.standard.headers(from: Self.fields)
        #expect(headers.map(\.name) == ["X-Request-ID", "Accept"])
        #expect(headers["x-request-id"] == "r-1, r-2")
    }

    @Test func anAllowlistLetsOnlyItsNamesThroughAndADropListRemovesMore() {
        let allow = HeaderPolicy(forward: ["authorization", "X-Request-ID"])
        #expect(allow.headers(from: Self.fields).map(\.name) == ["Authorization", "X-Request-ID"])
        let drop = HeaderPolicy(drop: ["accept"])
        #expect(drop.headers(from: Self.fields).map(\.name) == ["X-Request-ID"])
        #expect(!HeaderPolicy(forward: ["connection"]).admits("Connection"), "hop-by-hop fields never pass")
    }
}

@Suite struct HeaderValueSourceTests {
    @Test func environmentAndFileValuesResolveAndErrorsNameOnlyTheSource() throws {
        // A variable the process has already: setting one would race with tests reading the environment.
        let home = try #require(ProcessInfo.processInfo.environment["HOME"])
        #expect(try HeaderValueSource.environment("HOME").resolved().current() == home)
        do {
            _ = try HeaderValueSource.environment("FISO_TEST_NO_SUCH_VARIABLE").resolved()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "environment variable FISO_TEST_NO_SUCH_VARIABLE is not set")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-header-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("key").path
        try "k3y\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(
            try HeaderValueSource.file(file).resolved().current() == "k3y", "the trailing newline is not part of it")
        try "bad\u{1}value".write(toFile: file, atomically: true, encoding: .utf8)
        do {
            _ = try HeaderValueSource.file(file).resolved()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("does not hold a valid header value"))
            #expect(!"\(error)".contains("bad"))
        }
    }
}
