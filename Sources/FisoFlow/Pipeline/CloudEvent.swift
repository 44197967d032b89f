import FisoJSON
import Foundation

/// A CloudEvents 1.0 event, held as its structured JSON form (`application/cloudevents+json`), and
/// read from or written to the HTTP and Kafka bindings' structured and binary modes. See
/// docs/cloudevents.md.
public struct CloudEvent: Sendable {
    public static let specVersion = "1.0"
    public static let defaultType = "fiso.event"
    public static let defaultDataContentType = "application/json"
    public static let contentType = "application/cloudevents+json; charset=utf-8"
    public static let batchContentType = "application/cloudevents-batch+json"

    /// Context attributes the spec defines; every other attribute is an extension.
    static let contextAttributes: Set<String> = [
        "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
    ]

    /// The whole event as a JSON object: context attributes, extensions and `data` (or `data_base64`).
    public private(set) var json: JSONObject

    /// Wraps `data` in a new envelope with `attributes` (and their extensions).
    public init(attributes: CloudEventAttributes, data: JSONValue) {
        var json = JSONObject()
        json.reserveCapacity(9 + attributes.extensions.count)
        json["specversion"] = .string(Self.specVersion)
        json["id"] = .string(attributes.id)
        json["source"] = .string(attributes.source)
        json["type"] = .string(attributes.type)
        if let subject = attributes.subject { json["subject"] = .string(subject) }
        if attributes.hasTime { json["time"] = .string(attributes.timeText ?? RFC3339.format(attributes.time)) }
        // An incoming CloudEvent without a content type (its data is JSON) keeps having none.
        var contentType = attributes.dataContentType
        if let declared = contentType, !Self.isJSON(contentType: declared), !data.isString {
            // The flow turned text or bytes into structured data: say what it is now.
            contentType = Self.defaultDataContentType
        }
        if let contentType { json["datacontenttype"] = .string(contentType) }
        if let schema = attributes.dataSchema { json["dataschema"] = .string(schema) }
        for (name, value) in attributes.extensions where !Self.contextAttributes.contains(name) {
            json[name] = value
        }
        if attributes.dataIsBase64, case .string = data, !Self.isJSON(contentType: contentType ?? "") {
            json["data_base64"] = data
        } else {
            json["data"] = data
        }
        self.json = json
    }

    /// Takes a payload that already is a CloudEvent (a module or transform built the whole
    /// envelope), as it is.
    public init?(passingThrough payload: JSONValue) {
        guard case .object(let object) = payload, Self.isCloudEvent(object) else { return nil }
        self.json = object
    }

    public var id: String { json["id"]?.stringValue ?? "" }
    public var type: String { json["type"]?.stringValue ?? "" }
    public var source: String { json["source"]?.stringValue ?? "" }
    public var dataContentType: String { json["datacontenttype"]?.stringValue ?? Self.defaultDataContentType }

    /// Replaces one context attribute, an extension or `data`. A new attribute goes before `data`,
    /// where readers expect the context attributes.
    public mutating func set(_ attribute: String, to value: JSONValue) {
        if attribute == "data" { json.removeValue(forKey: "data_base64") }
        if json[attribute] == nil, attribute != "data",
            let dataIndex = json.index(forKey: "data") ?? json.index(forKey: "data_base64")
        {
            json.updateValue(value, forKey: attribute, insertingAt: dataIndex)
        } else {
            json[attribute] = value
        }
    }

    /// Removes an optional attribute (e.g. `subject`).
    public mutating func remove(_ attribute: String) {
        json.removeValue(forKey: attribute)
    }

    public func serialized() -> [UInt8] { JSONValue.object(json).serialized() }

    // MARK: Binary mode

    /// The attributes as binary-mode headers: `ce-id`, `ce-source`, … (HTTP, values
    /// percent-encoded as the HTTP binding asks) or `ce_id`, … (Kafka). `datacontenttype` is not
    /// among them: it travels as the content type.
    public func binaryModeHeaders(prefix: String, percentEncoding: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for (name, value) in json where !["data", "data_base64", "datacontenttype"].contains(name) {
            let text: String
            switch value {
            case .string(let string): text = string
            case .null: continue
            default: text = value.jsonText
            }
            headers.append((prefix + name, percentEncoding ? Self.percentEncoded(text) : text))
        }
        return headers
    }

    /// The data as a binary-mode body or record value, with its content type.
    public func binaryModeData() -> (contentType: String, bytes: [UInt8]) {
        let contentType = dataContentType
        if case .string(let encoded)? = json["data_base64"] {
            return (contentType, Array(Data(base64Encoded: encoded) ?? Data()))
        }
        switch json["data"] {
        case nil, .null?: return (contentType, [])
        case .string(let text)? where !Self.isJSON(contentType: contentType): return (contentType, Array(text.utf8))
        case let data?: return (contentType, data.serialized())
        }
    }

    // MARK: Reading incoming events

    /// True when `object` carries the required CloudEvents 1.0 context attributes.
    public static func isCloudEvent(_ object: JSONObject) -> Bool {
        guard case .string(let version) = object["specversion"], version == specVersion,
            case .string(let id) = object["id"], !id.isEmpty,
            case .string(let source) = object["source"], !source.isEmpty,
            case .string(let type) = object["type"], !type.isEmpty
        else { return false }
        return true
    }

    /// True when a JSON object presents itself as a CloudEvent (it has `specversion` and the
    /// required attributes' names), so that it is read, and rejected when it breaks the rules,
    /// rather than taken as a plain payload.
    static func claimsToBeCloudEvent(_ object: JSONObject) -> Bool {
        object["specversion"] != nil && object["id"] != nil && object["source"] != nil && object["type"] != nil
    }

    /// The attributes and data of a structured-mode event.
    static func readStructured(_ object: JSONObject) throws(FlowError) -> (CloudEventAttributes, JSONValue) {
        func attribute(_ name: String) throws(FlowError) -> String? {
            switch object[name] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw invalid("attribute \(name) must be a string")
            }
        }
        let attributes = try readAttributes { name throws(FlowError) in try attribute(name) }
        var result = attributes
        for (name, value) in object where !contextAttributes.contains(name) && name != "data" && name != "data_base64" {
            guard isValidExtensionName(name) else {
                throw invalid("extension attribute name \"\(name)\" must be lower-case letters and digits")
            }
            result.extensions[name] = value
        }
        if let encoded = object["data_base64"] {
            guard case .string(let text) = encoded, Data(base64Encoded: text) != nil else {
                throw invalid("data_base64 must be base64 text")
            }
            guard object["data"] == nil else { throw invalid("an event has data or data_base64, not both") }
            result.dataIsBase64 = true
            return (result, encoded)
        }
        return (result, object["data"] ?? .null)
    }

    /// The attributes of a binary-mode event from its `prefix`ed headers (`ce-`, `ce_`); the
    /// extensions are the other prefixed headers. `contentType` becomes `datacontenttype`.
    static func readBinary(
        headers: EventHeaders, prefix: String, percentDecoding: Bool, contentType: String?
    ) throws(FlowError) -> CloudEventAttributes {
        var values: [String: String] = [:]
        for (name, value) in headers where name.count > prefix.count && name.lowercased().hasPrefix(prefix) {
            let attribute = String(name.dropFirst(prefix.count)).lowercased()
            values[attribute] = percentDecoding ? (percentDecoded(value) ?? value) : value
        }
        var attributes = try readAttributes { name in values[name] }
        attributes.dataContentType = contentType
        for (name, value) in values.sorted(by: { $0.key < $1.key }) where !contextAttributes.contains(name) {
            guard isValidExtensionName(name) else {
                throw invalid("extension attribute name \"\(name)\" must be lower-case letters and digits")
            }
            attributes.extensions[name] = .string(value)
        }
        return attributes
    }

    /// The context attributes, checked: specversion 1.0, non-empty id, source and type, an RFC 3339
    /// time.
    private static func readAttributes(
        _ value: (String) throws(FlowError) -> String?
    ) throws(FlowError) -> CloudEventAttributes {
        guard let version = try value("specversion") else { throw invalid("specversion is missing") }
        guard version == specVersion else {
            throw invalid("specversion \"\(version)\" is not supported; send CloudEvents 1.0")
        }
        var required: [String] = []
        for name in ["id", "source", "type"] {
            guard let text = try value(name), !text.isEmpty else {
                throw invalid("required attribute \(name) is missing or empty")
            }
            required.append(text)
        }
        var attributes = CloudEventAttributes(id: required[0], source: required[1], type: required[2], time: Date())
        if let time = try value("time") {
            guard let parsed = RFC3339.parse(time) else {
                throw invalid("time \"\(time)\" is not an RFC 3339 timestamp")
            }
            attributes.time = parsed
            attributes.timeText = time
        } else {
            attributes.hasTime = false
        }
        attributes.subject = try value("subject")
        attributes.dataContentType = try value("datacontenttype")
        attributes.dataSchema = try value("dataschema")
        return attributes
    }

    private static func invalid(_ message: String) -> FlowError {
        FlowError(.invalidCloudEvent, "not a valid CloudEvent: \(message)")
    }

    /// CloudEvents attribute names: lower-case ASCII letters and digits (20 characters or fewer is
    /// only a recommendation, so longer names are accepted).
    public static func isValidExtensionName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    /// Whether data of `contentType` is JSON: `application/json`, any `…+json`, or `text/json`.
    public static func isJSON(contentType: String) -> Bool {
        let media = mediaType(contentType)
        return media == "application/json" || media == "text/json" || media.hasSuffix("+json")
    }

    /// `type/subtype` of a content type, lower-cased, without parameters.
    static func mediaType(_ contentType: String) -> String {
        (contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "").trimmingSpaces().lowercased()
    }

    /// Percent-encodes what the HTTP binding asks for: space, `"`, `%` and everything outside
    /// printable ASCII.
    static func percentEncoded(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            if byte > 0x20, byte < 0x7F, byte != 0x22, byte != 0x25 {
                output.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                output += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return output
    }

    static func percentDecoded(_ text: String) -> String? {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == 0x25 {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension JSONValue {
    fileprivate var isString: Bool {
        if case .string = self { return true }
        return false
    }
}

/// RFC 3339 timestamps in UTC with millisecond precision, as CloudEvents `time` uses them.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        let totalMilliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(totalMilliseconds / 1000)
        var milliseconds = Int(totalMilliseconds % 1000)
        if milliseconds < 0 {
            milliseconds += 1000
            seconds -= 1
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    public static func parse(_ text: String) -> Date? {
        let strategy = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? strategy.parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
