import Foundation

/// Why a ``SelfSignedCertificate`` could not be made.
public struct SelfSignedCertificateError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A throw-away self-signed certificate and its key (EC P-256, valid two days), made with the
/// machine's `openssl` for TLS tests. It is its own CA, so the same file serves as a server
/// certificate, a client certificate and the CA that trusts both.
public struct SelfSignedCertificate: Sendable {
    public let directory: URL
    public var certificateFile: String { directory.appendingPathComponent("cert.pem").path }
    public var keyFile: String { directory.appendingPathComponent("key.pem").path }

    /// `subjectAlternativeNames` in openssl's spelling: `DNS:localhost`, `IP:127.0.0.1`.
    public init(commonName: String = "localhost", subjectAlternativeNames: [String] = ["DNS:localhost"]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fiso-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", directory.appendingPathComponent("key.pem").path,
            "-out", directory.appendingPathComponent("cert.pem").path,
            "-days", "2", "-subj", "/CN=\(commonName)",
            "-addext", "subjectAltName=" + subjectAlternativeNames.joined(separator: ","),
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SelfSignedCertificateError(description: "openssl failed with status \(process.terminationStatus)")
        }
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }
}
