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
    public var tls: GRPCClientTLS?
    /// Sends `authorization: Bearer …` with every call; nil sends none.
    public var credentials: (any TemporalCredentials)?
    /// Who the calls say they come from (Temporal records it in the workflow history).
    public var identity: String

    public init(
        target: HostPort, namespace: String = "default", tls: GRPCClientTLS? = nil,
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
