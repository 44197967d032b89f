import GRPCNIOTransportHTTP2
import NIOCore

/// A `host:port` pair as written in configuration: `127.0.0.1:9000`, `localhost:9000`,
/// `[::1]:9000`, or `:9000` (every interface, for servers).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; an IPv6 host needs brackets. An empty host is allowed (servers read it as
    /// every interface).
    public init(parsing text: String) throws(GRPCConfigurationError) {
        let trimmed = text.trimmingBlanks()
        guard let colon = trimmed.lastIndex(of: ":") else {
            throw GRPCConfigurationError("\"\(text)\" is not host:port")
        }
        var host = String(trimmed[..<colon])
        guard let port = Int(trimmed[trimmed.index(after: colon)...]), (0...65535).contains(port) else {
            throw GRPCConfigurationError("\"\(text)\" is not host:port (the port must be 0 to 65535)")
        }
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw GRPCConfigurationError("\"\(text)\" is not host:port (write an IPv6 address in brackets)")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The address a server binds: an IP literal as it is, "" as every IPv4 interface, a name as
    /// the first address it resolves to.
    func bindAddress() throws(GRPCConfigurationError) -> GRPCNIOTransportCore.SocketAddress {
        if host.isEmpty { return .ipv4(host: "0.0.0.0", port: port) }
        // As in Go and most servers: "localhost" means the IPv4 loopback, whatever the resolver says.
        if host == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
        if Self.isIPv4Literal(host) { return .ipv4(host: host, port: port) }
        if host.contains(":") { return .ipv6(host: host, port: port) }
        let resolved: NIOCore.SocketAddress
        do {
            resolved = try NIOCore.SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw GRPCConfigurationError("cannot resolve listen host \"\(host)\": \(error)")
        }
        switch resolved {
        case .v4:
            return .ipv4(host: resolved.ipAddress ?? host, port: port)
        case .v6:
            return .ipv6(host: resolved.ipAddress ?? host, port: port)
        case .unixDomainSocket:
            throw GRPCConfigurationError("listen host \"\(host)\" resolved to a Unix socket")
        }
    }

    /// What a client connects to: IP literals directly, names through DNS.
    func clientTarget() -> any ResolvableTarget {
        if host.isEmpty { return ResolvableTargets.IPv4(addresses: [.init(host: "127.0.0.1", port: port)]) }
        if Self.isIPv4Literal(host) { return ResolvableTargets.IPv4(addresses: [.init(host: host, port: port)]) }
        if host.contains(":") { return ResolvableTargets.IPv6(addresses: [.init(host: host, port: port)]) }
        return ResolvableTargets.DNS(host: host, port: port)
    }

    static func isIPv4Literal(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCIIDigit) && (Int(part) ?? 256) <= 255
            }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate func trimmingBlanks() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}

/// A configuration problem: a bad address, an unreadable certificate. The description says what
/// and where.
public struct GRPCConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
