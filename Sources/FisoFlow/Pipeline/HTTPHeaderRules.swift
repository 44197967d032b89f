/// Which HTTP header fields an event may carry between HTTP peers. The HTTP source drops the
/// same fields the HTTP sink refuses to forward, so an event's headers mean the same on both ends.
enum HTTPHeaderRules {
    /// Fields that describe one connection or one message's framing and encoding rather than the
    /// event (RFC 9110 §7.6.1 hop-by-hop fields, plus those the sink sets itself).
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "content-type", "content-encoding",
        "expect", "accept-encoding",
    ]

    /// `name` in lower case is one of ``hopByHop``.
    static func isHopByHop(_ lowercasedName: String) -> Bool { hopByHop.contains(lowercasedName) }

    static func isForwardable(_ name: String) -> Bool { !hopByHop.contains(name.lowercased()) }

    /// RFC 9110 token characters.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
    }

    /// No control characters other than tab: a value from an event must not split a header.
    static func isValidValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
