/// A `host:port` to listen on, as written in flow files and environment variables. An empty host
/// (`:8081`) means every interface.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var text: String
        public var description: String {
            "invalid listen address \"\(text)\": expected [host]:port, e.g. \":8081\", \"127.0.0.1:8081\" or \"[::]:8081\""
        }
    }

    /// Parses `:8081`, `0.0.0.0:8081`, `localhost:8081`, `[::1]:8081`.
    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingSpaces()
        guard let colon = trimmed.lastIndex(of: ":") else { throw ParseError(text: text) }
        var host = String(trimmed[..<colon])
        let portText = trimmed[trimmed.index(after: colon)...]
        guard let port = Int(portText), (0...65535).contains(port) else { throw ParseError(text: text) }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw ParseError(text: text)  // an IPv6 address needs brackets
        }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// True when both would try to bind the same port on overlapping interfaces.
    public func conflicts(with other: ListenAddress) -> Bool {
        guard port == other.port, port != 0, self != other else { return false }
        let wildcards = ["0.0.0.0", "::"]
        return wildcards.contains(host) || wildcards.contains(other.host)
    }
}
