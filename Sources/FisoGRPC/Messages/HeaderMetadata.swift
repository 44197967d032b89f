import GRPCCore

/// Converts between event headers and gRPC metadata.
///
/// gRPC metadata keys are lower-case tokens and text values are printable ASCII; some keys belong
/// to HTTP/2 and gRPC themselves. Headers that cannot travel as metadata still travel in the
/// event's `headers` map.
public enum HeaderMetadata {
    /// Keys that describe the call or the connection rather than the event.
    static let transportKeys: Set<String> = [
        "content-type", "content-length", "content-encoding", "te", "user-agent", "host", "connection",
        "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "accept-encoding", "authority",
    ]

    /// When a call's client stops waiting: now plus its `grpc-timeout` (digits and a unit, `H`, `M`,
    /// `S`, `m`, `u` or `n`); nil without one or when it is malformed.
    public static func deadline(
        of metadata: Metadata, now: ContinuousClock.Instant = .now
    ) -> ContinuousClock.Instant? {
        guard let text = metadata[stringValues: "grpc-timeout"].first(where: { _ in true }) else { return nil }
        return timeout(parsing: text).map { now + $0 }
    }

    /// A `grpc-timeout` value: up to 8 digits and a unit.
    static func timeout(parsing text: String) -> Duration? {
        guard let unit = text.last, text.count >= 2, text.count <= 9 else { return nil }
        let digits = text.dropLast()
        guard digits.allSatisfy({ $0 >= "0" && $0 <= "9" }), let amount = Int64(digits) else { return nil }
        switch unit {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }

    /// The event headers carried by a call's metadata: everything except gRPC's and HTTP/2's own
    /// keys (`grpc-*`, pseudo-headers, `content-type`, `te`, `user-agent`, …) and binary (`-bin`)
    /// values. Repeated keys are joined with ", ".
    public static func headers(from metadata: Metadata) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for (key, value) in metadata {
            let name = key.lowercased()
            guard !isReserved(name), case .string(let text) = value else { continue }
            if let index = headers.firstIndex(where: { $0.name == name }) {
                headers[index].value += ", " + text
            } else {
                headers.append((name, text))
            }
        }
        return headers
    }

    /// Metadata carrying `headers`: names lower-cased; reserved keys, names that are not valid
    /// metadata keys, `-bin` keys and values that are not printable ASCII are left out.
    public static func metadata(from headers: [(name: String, value: String)]) -> Metadata {
        var metadata = Metadata()
        for (name, value) in headers {
            let key = name.lowercased()
            guard !isReserved(key), isValidKey(key), !key.hasSuffix("-bin"), isPrintableASCII(value) else { continue }
            metadata.addString(value, forKey: key)
        }
        return metadata
    }

    /// `base` followed by the entries of `map` (in name order); a map entry replaces a `base` entry
    /// whose name differs only in case.
    static func merge(_ base: [(name: String, value: String)], _ map: [String: String]) -> [(
        name: String, value: String
    )] {
        guard !map.isEmpty else { return base }
        var merged = base
        for name in map.keys.sorted() {
            let value = map[name] ?? ""
            let lowered = name.lowercased()
            merged.removeAll { $0.name.lowercased() == lowered }
            merged.append((name, value))
        }
        return merged
    }

    static func isReserved(_ key: String) -> Bool {
        key.hasPrefix(":") || key.hasPrefix("grpc-") || transportKeys.contains(key)
    }

    static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty
            && key.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            }
    }

    static func isPrintableASCII(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }
}
