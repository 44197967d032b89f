import FisoGRPC
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// Where and how a ``TemporalClient`` reaches a Temporal frontend.
public struct TemporalConnection: Sendable {
    /// The frontend's `host:port`.
    public var target: HostPort
    /// The namespace every call works in.
    public var namespace: String
    /// TLS; nil connects in plaintext HTTP/2.
    public var tls: TemporalTLS?
    /// Sends `authorization: Bearer …` with every call; nil sends none.
    public var credentials: (any TemporalCredentials)?
    /// Who the calls say they come from (Temporal records it in the workflow history).
    public var identity: String

    public init(
        target: HostPort, namespace: String = "default", tls: TemporalTLS? = nil,
        credentials: (any TemporalCredentials)? = nil, identity: String = TemporalConnection.defaultIdentity
    ) {
        self.target = target
        self.namespace = namespace
        self.tls = tls
        self.credentials = credentials
        self.identity = identity
    }

    /// `fiso-flow@<host name>`, like the SDKs' `pid@host`.
    public static var defaultIdentity: String { "fiso-flow@\(ProcessInfo.processInfo.hostName)" }
}

/// Client TLS for the frontend: whom to trust, an optional client certificate (mTLS), and whether
/// to verify the server at all.
public struct TemporalTLS: Sendable, Equatable {
    /// CA certificates (PEM) to trust; nil trusts the system's roots.
    public var caFile: String?
    /// A client certificate (PEM) for mutual TLS, with ``keyFile``.
    public var certificateFile: String?
    public var keyFile: String?
    /// Accept any server certificate (development only).
    public var skipVerify: Bool
    /// The name to send (SNI, `:authority`) and verify instead of the target's host.
    public var serverName: String?

    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, skipVerify: Bool = false,
        serverName: String? = nil
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.skipVerify = skipVerify
        self.serverName = serverName
    }

    func transportSecurity() throws(TemporalConfigurationError) -> HTTP2ClientTransport.Posix.TransportSecurity {
        if (certificateFile == nil) != (keyFile == nil) {
            throw TemporalConfigurationError("a TLS client certificate needs both certFile and keyFile")
        }
        var tls = HTTP2ClientTransport.Posix.TransportSecurity.TLS.defaults
        if let caFile {
            tls.trustRoots = .certificates([.bytes(try Self.read(caFile, what: "TLS CA"), format: .pem)])
        }
        if let certificateFile, let keyFile {
            tls.certificateChain = [.bytes(try Self.read(certificateFile, what: "TLS certificate"), format: .pem)]
            tls.privateKey = .bytes(try Self.read(keyFile, what: "TLS private key"), format: .pem)
        }
        if skipVerify { tls.serverCertificateVerification = .noVerification }
        return .tls(tls)
    }

    private static func read(_ path: String, what: String) throws(TemporalConfigurationError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TemporalConfigurationError("cannot read the \(what) file \(path)")
        }
        guard String(decoding: data, as: UTF8.self).contains("-----BEGIN ") else {
            throw TemporalConfigurationError("the \(what) file \(path) is not PEM")
        }
        return [UInt8](data)
    }
}

/// Supplies the bearer token (API key, OIDC access token …) for a call. Called before every
/// call, so implementations decide what to cache.
public protocol TemporalCredentials: Sendable {
    /// The token without the `Bearer ` prefix.
    func token() async throws -> String
}

/// A fixed API key.
public struct StaticTemporalCredentials: TemporalCredentials {
    let value: String
    public init(_ value: String) { self.value = value }
    public func token() async throws -> String { value }
}

/// An API key read from an environment variable on every call, so a changed value is used at once.
public struct EnvironmentTemporalCredentials: TemporalCredentials {
    public let variable: String
    public init(variable: String) { self.variable = variable }
    public func token() async throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw TemporalConfigurationError("environment variable \(variable) is not set or empty")
        }
        return value
    }
}

/// A bearer token read from a file on every call (a projected service-account token or a
/// sidecar-refreshed token); surrounding white space is dropped.
public struct FileTemporalCredentials: TemporalCredentials {
    public let path: String
    public init(path: String) { self.path = path }
    public func token() async throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TemporalConfigurationError("cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw TemporalConfigurationError("the token file \(path) is empty") }
        return token
    }
}

/// A configuration problem: an unreadable certificate, a missing credential. Says what and where,
/// never a secret's value.
public struct TemporalConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension HostPort {
    /// What the transport connects to: IP literals directly, names through DNS.
    var temporalClientTarget: any ResolvableTarget {
        let isIPv4 =
            host.split(separator: ".", omittingEmptySubsequences: false).count == 4
            && host.allSatisfy { $0 == "." || ($0.isASCII && $0.isNumber) }
        if isIPv4 { return ResolvableTargets.IPv4(addresses: [.init(host: host, port: port)]) }
        if host.contains(":") { return ResolvableTargets.IPv6(addresses: [.init(host: host, port: port)]) }
        return ResolvableTargets.DNS(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }
}
