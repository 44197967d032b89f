import FisoGRPC
import FisoProcessTesting
import Foundation
import GRPCCore
import Testing

@Suite("TLS")
struct TLSTests {
    private func send(
        to port: Int, host: String = "127.0.0.1", tls: GRPCClientTLS?
    ) async throws(EventDeliveryFailure) -> Fiso_Flow_V1_Ack {
        let client: EventServiceClient
        do {
            client = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: HostPort(host: host, port: port), timeout: .seconds(30), tls: tls
                )
            )
        } catch {
            throw EventDeliveryFailure.configuration(error)
        }
        do {
            let ack = try await client.send(payload: Array(#"{"secure":true}"#.utf8), id: "t-1", contentType: "")
            await client.shutdown()
            return ack
        } catch {
            await client.shutdown()
            throw error
        }
    }

    @Test("Round trip over TLS with a self-signed certificate; the name can be overridden")
    func roundTrip() async throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        let serverTLS = GRPCServerTLS(certificateFile: certificate.certificateFile, keyFile: certificate.keyFile)
        try await withEventServer(tls: serverTLS, handler: echoHandler) { _, port in
            let trusted = GRPCClientTLS(caFile: certificate.certificateFile)
            let ack = try await send(to: port, host: "localhost", tls: trusted)
            #expect(ack.status == .ok)
            #expect(ack.cloudEventID == #"{"secure":true}"#)
            #expect(ack.eventID == "t-1")

            // The certificate names localhost only: by IP the certificate does not match...
            await #expect(throws: EventDeliveryFailure.self) { _ = try await send(to: port, tls: trusted) }

            // ...unless the client verifies (and sends SNI) for localhost.
            var named = trusted
            named.serverName = "localhost"
            let namedAck = try await send(to: port, tls: named)
            #expect(namedAck.status == .ok)

            // A name the certificate does not carry fails verification.
            var wrongName = trusted
            wrongName.serverName = "example.com"
            await #expect(throws: EventDeliveryFailure.self) { _ = try await send(to: port, tls: wrongName) }

            // Without the CA the self-signed certificate is not trusted.
            await #expect(throws: EventDeliveryFailure.self) { _ = try await send(to: port, tls: GRPCClientTLS()) }

            // Plaintext HTTP/2 to a TLS port does not work either.
            await #expect(throws: EventDeliveryFailure.self) { _ = try await send(to: port, tls: nil) }
        }
    }

    @Test("Mutual TLS: a client without a certificate is refused")
    func mutualTLS() async throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        let serverTLS = GRPCServerTLS(
            certificateFile: certificate.certificateFile, keyFile: certificate.keyFile,
            clientCAFile: certificate.certificateFile
        )
        try await withEventServer(tls: serverTLS, handler: echoHandler) { _, port in
            let withCertificate = GRPCClientTLS(
                caFile: certificate.certificateFile, certificateFile: certificate.certificateFile,
                keyFile: certificate.keyFile, serverName: "localhost"
            )
            let ack = try await send(to: port, tls: withCertificate)
            #expect(ack.status == .ok)
            await #expect(throws: EventDeliveryFailure.self) {
                _ = try await send(
                    to: port, tls: GRPCClientTLS(caFile: certificate.certificateFile, serverName: "localhost")
                )
            }
        }
    }

    @Test("Missing or non-PEM files are reported with their path")
    func badFiles() async throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        let missing = certificate.directory.appendingPathComponent("missing.pem").path
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(
                address: HostPort(host: "127.0.0.1", port: 0),
                tls: GRPCServerTLS(certificateFile: missing, keyFile: certificate.keyFile)
            ),
            handler: echoHandler
        )
        let runError = await #expect(throws: GRPCConfigurationError.self) { try await server.run() }
        #expect(runError?.message.contains(missing) == true)
        await #expect(throws: GRPCServerError.self) { _ = try await server.listeningPort() }

        let notPEM = certificate.directory.appendingPathComponent("plain.txt").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notPEM))
        let clientError = #expect(throws: GRPCConfigurationError.self) {
            _ = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: HostPort(host: "127.0.0.1", port: 1), tls: GRPCClientTLS(caFile: notPEM)
                )
            )
        }
        #expect(clientError?.message.contains("not PEM") == true)

        let keyOnly = #expect(throws: GRPCConfigurationError.self) {
            _ = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: HostPort(host: "127.0.0.1", port: 1), tls: GRPCClientTLS(keyFile: certificate.keyFile)
                )
            )
        }
        #expect(keyOnly != nil)
    }
}

extension EventDeliveryFailure {
    /// Test helper: a configuration error seen where a delivery failure is expected.
    static func configuration(_ error: GRPCConfigurationError) -> EventDeliveryFailure {
        EventDeliveryFailure(rpcCode: .invalidArgument, ack: nil, message: error.message, isRetryable: false)
    }
}
