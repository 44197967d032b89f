import FisoJSON
import Foundation
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How log lines look: `text` for people, `json` (one object per line) for log pipelines.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Writes log lines to standard error, one `write` per line so concurrent lines never interleave.
public final class LogOutput: Sendable {
    private let lock = NIOLockedValueBox(())
    private let descriptor: Int32

    public init(descriptor: Int32 = 2) {
        self.descriptor = descriptor
    }

    func write(_ line: [UInt8]) {
        lock.withLockedValue { _ in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }
}

/// One JSON object per line: `timestamp`, `level`, `message`, then the metadata (`flow`,
/// `correlation_id`, …) as top-level keys.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let output: LogOutput

    public init(label: String, level: Logger.Level, output: LogOutput) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object = JSONObject()
        object["timestamp"] = .string(RFC3339.format(Date()))
        object["level"] = .string(event.level.rawValue)
        object["message"] = .string(event.message.description)
        object["logger"] = .string(label)
        for (key, value) in mergedMetadata(event.metadata) where object[key] == nil {
            object[key] = Self.json(value)
        }
        var line = JSONValue.object(object).serialized()
        line.append(UInt8(ascii: "\n"))
        output.write(line)
    }

    func mergedMetadata(_ explicit: Logger.Metadata?) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        return merged
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let members):
            .object(
                JSONObject(uniqueKeysWithValues: members.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
        }
    }
}

/// `2026-01-15T10:00:00.000Z ERROR message key=value key="value with spaces"`.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let output: LogOutput

    public init(level: Logger.Level, output: LogOutput) {
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var context = metadata
        if let provided = metadataProvider?.get() { context.merge(provided) { _, new in new } }
        let explicit = event.metadata ?? [:]
        var line = "\(RFC3339.format(Date())) \(event.level.rawValue.uppercased()) \(event.message)"
        // What the call site said first (`wasm module not found path=…`), then the context.
        for key in explicit.keys.sorted() {
            line += " \(key)=\(Self.quoted(explicit[key]!.description))"
        }
        for key in context.keys.sorted(by: Self.keyOrder) where explicit[key] == nil {
            line += " \(key)=\(Self.quoted(context[key]!.description))"
        }
        line += "\n"
        output.write(Array(line.utf8))
    }

    /// `flow` and `correlation_id` first, the rest alphabetically.
    static func keyOrder(_ lhs: String, _ rhs: String) -> Bool {
        let leading = ["flow", "correlation_id"]
        let left = leading.firstIndex(of: lhs) ?? leading.count
        let right = leading.firstIndex(of: rhs) ?? leading.count
        return left != right ? left < right : lhs < rhs
    }

    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline })
        else { return value }
        return JSONValue.string(value).jsonText
    }
}

extension Logger.Level {
    /// Reads `trace`, `debug`, `info`, `notice`, `warning` (or `warn`), `error`, `critical`.
    public init?(userText: String) {
        let text = userText.lowercased()
        if text == "warn" {
            self = .warning
        } else if let level = Logger.Level(rawValue: text) {
            self = level
        } else {
            return nil
        }
    }
}

/// Process-wide logging set-up for the command-line tool.
public enum LoggingSetup {
    /// Sends every logger of the process to standard error in `format` at `level`.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        let output = LogOutput()
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: JSONLogHandler(label: label, level: level, output: output)
            case .text: TextLogHandler(level: level, output: output)
            }
        }
    }
}
