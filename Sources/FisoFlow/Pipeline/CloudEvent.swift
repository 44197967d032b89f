import FisoJSON
import Foundation

/// A CloudEvents 1.0 event in structured JSON mode (`application/cloudevents+json`).
public struct CloudEvent: Sendable {
    public static let specVersion = "1.0"
    public static let defaultType = "fiso.event"
    public static let defaultDataContentType = "application/json"
    public static let contentType = "application/cloudevents+json; charset=utf-8"

    /// The whole event as a JSON object: context attributes, extensions and `data`.
    public private(set) var json: JSONObject

    /// Wraps `data` in a new envelope with `attributes`.
    public init(attributes: CloudEventAttributes, data: JSONValue) {
        var json = JSONObject()
        json.reserveCapacity(9)
        json["specversion"] = .string(Self.specVersion)
        json["id"] = .string(attributes.id)
        json["source"] = .string(attributes.source)
        json["type"] = .string(attributes.type)
        if let subject = attributes.subject { json["subject"] = .string(subject) }
        json["time"] = .string(RFC3339.format(attributes.time))
        json["datacontenttype"] = .string(attributes.dataContentType ?? Self.defaultDataContentType)
        if let schema = attributes.dataSchema { json["dataschema"] = .string(schema) }
        json["data"] = data
        self.json = json
    }

    /// Takes an incoming event that already is a CloudEvent, as it is.
    public init?(passingThrough payload: JSONValue) {
        guard case .object(let object) = payload, Self.isCloudEvent(object) else { return nil }
        self.json = object
    }

    public var id: String { json["id"]?.stringValue ?? "" }
    public var type: String { json["type"]?.stringValue ?? "" }
    public var source: String { json["source"]?.stringValue ?? "" }

    /// Replaces one context attribute (or `data`). A new attribute goes before `data`, where
    /// readers expect the context attributes.
    public mutating func set(_ attribute: String, to value: JSONValue) {
        if json[attribute] == nil, attribute != "data", let dataIndex = json.index(forKey: "data") {
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

    /// True when `object` carries the required CloudEvents 1.0 context attributes.
    public static func isCloudEvent(_ object: JSONObject) -> Bool {
        guard case .string(let version) = object["specversion"], version.hasPrefix("1."),
            case .string(let id) = object["id"], !id.isEmpty,
            case .string(let source) = object["source"], !source.isEmpty,
            case .string(let type) = object["type"], !type.isEmpty
        else { return false }
        return true
    }

    /// The attributes of an incoming CloudEvent payload, or nil when the payload is not one.
    public static func attributes(of payload: JSONValue) -> CloudEventAttributes? {
        guard case .object(let object) = payload, isCloudEvent(object) else { return nil }
        let time = object["time"]?.stringValue.flatMap(RFC3339.parse) ?? Date()
        return CloudEventAttributes(
            id: object["id"]?.stringValue ?? "",
            source: object["source"]?.stringValue ?? "",
            type: object["type"]?.stringValue ?? "",
            time: time,
            subject: object["subject"]?.stringValue,
            dataContentType: object["datacontenttype"]?.stringValue,
            dataSchema: object["dataschema"]?.stringValue
        )
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
