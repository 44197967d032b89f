import FisoFlow
import FisoFlowTestSupport
import FisoGRPC
import FisoProcessTesting
import FisoTemporal
import FisoTemporalTesting
import Foundation
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// TLS, mutual TLS and the bearer credentials of the temporal sink, against a frontend that
/// records what arrives (the dev server neither serves TLS nor checks credentials).
@Suite("Temporal sink TLS and credentials", .serialized)
struct TemporalSecurityTests {
    /// Waits until every named flow is in its expected `/readyz` state.
    static func waitForStates(_ server: RunningServer, _ expected: [String: String]) async throws {
        try await waitUntil("flows reach \(expected)", timeout: .seconds(45)) {
            expected.allSatisfy { TemporalFlowTests.flowState(server, $0.key).state == $0.value }
        }
    }

    @Test("TLS with a CA file or skipVerify works, an untrusted server fails; mTLS needs the client certificate")
    func tlsAndMutualTLS() async throws {
        let certificate = try SelfSignedCertificate(subjectAlternativeNames: ["DNS:localhost", "IP:127.0.0.1"])
        defer { certificate.remove() }
        let tls = try await RecordingTemporalFrontend.start(
            tls: GRPCServerTLS(certificateFile: certificate.certificateFile, keyFile: certificate.keyFile))
        let mutual = try await RecordingTemporalFrontend.start(
            tls: GRPCServerTLS(
                certificateFile: certificate.certificateFile, keyFile: certificate.keyFile,
                clientCAFile: certificate.certificateFile))
        let directory = try TemporaryDirectory()
        let common = ["taskQueue: q", "workflowType: W", "timeout: 3s"]
        let flows: [(name: String, frontend: RecordingTemporalFrontend, tls: String)] = [
            ("ca", tls, "tls: {caFile: \"\(certificate.certificateFile)\"}"),
            ("skip", tls, "tls: {enabled: true, skipVerify: true}"),
            ("untrusted", tls, "tls: {enabled: true}"),
            (
                "mtls", mutual,
                "tls: {caFile: \"\(certificate.certificateFile)\", certFile: \"\(certificate.certificateFile)\", "
                    + "keyFile: \"\(certificate.keyFile)\"}"
            ),
            ("nocert", mutual, "tls: {caFile: \"\(certificate.certificateFile)\"}"),
        ]
        for flow in flows {
            try directory.write(
                "\(flow.name).yaml",
                temporalFlow(name: flow.name, hostPort: flow.frontend.address, sink: common + [flow.tls])
                    .replacingOccurrences(of: "path: /in", with: "path: /\(flow.name)"))
        }
        do {
            try await withRunningServer(directory: directory.path, waitForReady: false) { server in
                try await Self.waitForStates(
                    server,
                    ["ca": "running", "skip": "running", "mtls": "running", "untrusted": "failed", "nocert": "failed"])
                for name in ["ca", "skip", "mtls"] {
                    let response = try await server.post("/\(name)", #"{"flow":"\#(name)"}"#)
                    #expect((200..<300).contains(response.status), "\(name): \(response.body)")
                }
                #expect(TemporalFlowTests.flowState(server, "untrusted").detail?.contains("Temporal frontend") == true)
                #expect(TemporalFlowTests.flowState(server, "nocert").detail?.contains("Temporal frontend") == true)
            }
            #expect(tls.calls.filter { $0.method == "StartWorkflowExecution" }.count == 2)
            #expect(mutual.calls.filter { $0.method == "StartWorkflowExecution" }.count == 1)
        } catch {
            Issue.record("\(error)")
        }
        await tls.stop()
        await mutual.stop()
    }

    @Test("apiKey goes as authorization: Bearer; apiKeyEnv is read for every call, so a rotated key is used at once")
    func apiKeys() async throws {
        let variable = "FISO_TEST_TEMPORAL_KEY_\(UUID().uuidString.prefix(8))"
        setenv(variable, "rotating-key-1", 1)
        defer { unsetenv(variable) }
        let fixed = try await RecordingTemporalFrontend.start()
        let rotating = try await RecordingTemporalFrontend.start()
        let directory = try TemporaryDirectory()
        let common = ["taskQueue: q", "workflowType: W", "tls: {disabled: true}"]
        try directory.write(
            "fixed.yaml",
            temporalFlow(name: "fixed", hostPort: fixed.address, sink: common + ["auth: {apiKey: test-key-1}"])
                .replacingOccurrences(of: "path: /in", with: "path: /fixed"))
        try directory.write(
            "rotate.yaml",
            temporalFlow(name: "rotate", hostPort: rotating.address, sink: common + ["auth: {apiKeyEnv: \(variable)}"]))
        do {
            try await withRunningServer(directory: directory.path) { server in
                for (path, body) in [("/fixed", #"{"n":0}"#), ("/in", #"{"n":1}"#)] {
                    let response = try await server.post(path, body)
                    #expect((200..<300).contains(response.status), "\(path): \(response.body)")
                }
                setenv(variable, "rotating-key-2", 1)
                let second = try await server.post("/in", #"{"n":2}"#)
                #expect((200..<300).contains(second.status), "\(second.body)")
            }
            // Every call (the start-up probes too) carries the key.
            #expect(fixed.calls.contains { $0.method == "StartWorkflowExecution" })
            #expect(fixed.calls.allSatisfy { $0.value("authorization") == "Bearer test-key-1" })
            let starts = rotating.calls.filter { $0.method == "StartWorkflowExecution" }
            #expect(starts.map { $0.value("authorization") } == ["Bearer rotating-key-1", "Bearer rotating-key-2"])
        } catch {
            Issue.record("\(error)")
        }
        await fixed.stop()
        await rotating.stop()
    }

    @Test(
        "OIDC client credentials: the form the token endpoint gets, the token as Bearer, one renewal for concurrent calls"
    )
    func oidcClientCredentials() async throws {
        let variable = "FISO_TEST_OIDC_SECRET_\(UUID().uuidString.prefix(8))"
        setenv(variable, "s3cret&more", 1)
        defer { unsetenv(variable) }
        let frontend = try await RecordingTemporalFrontend.start()
        // Every token lives 4 s, so the sink renews it after 2 s (half its life, as it is short).
        try await withTestReceiver({ number, _ in
            .init(status: 200, body: #"{"access_token":"oidc-token-\#(number)","token_type":"Bearer","expires_in":4}"#)
        }) { idp in
            let directory = try TemporaryDirectory()
            try directory.write(
                "f.yaml",
                temporalFlow(
                    name: "oidc", hostPort: frontend.address,
                    sink: [
                        "taskQueue: q", "workflowType: W", "tls: {disabled: true}",
                        "auth: {oidc: {tokenURL: \"http://127.0.0.1:\(idp.port)/token\", clientID: fiso-flow, "
                            + "clientSecretEnv: \(variable), scopes: [\"temporal:read\", \"temporal:write\"]}}",
                    ]))
            try await withRunningServer(directory: directory.path) { server in
                #expect(idp.count >= 1)
                // Past the renewal point: three concurrent events share one token request.
                try await Task.sleep(for: .seconds(2.3))
                let before = idp.count
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for n in 0..<3 { group.addTask { try await server.post("/in", #"{"n":\#(n)}"#).status } }
                    for try await status in group { #expect((200..<300).contains(status)) }
                }
                #expect(idp.count == before + 1)
                let starts = frontend.calls.filter { $0.method == "StartWorkflowExecution" }
                #expect(starts.count == 3)
                #expect(starts.allSatisfy { $0.value("authorization") == "Bearer oidc-token-\(before + 1)" })
            }
            let request = try #require(idp.requests.first)
            #expect(request.method == "POST")
            #expect(request.path == "/token")
            #expect(request.header("content-type") == "application/x-www-form-urlencoded")
            let form = Dictionary(
                String(decoding: request.body, as: UTF8.self).split(separator: "&").map { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    return (parts[0], (parts.count > 1 ? parts[1] : "").removingPercentEncoding ?? "")
                }, uniquingKeysWith: { $1 })
            #expect(form["grant_type"] == "client_credentials")
            #expect(form["client_id"] == "fiso-flow")
            #expect(form["client_secret"] == "s3cret&more")
            #expect(form["scope"] == "temporal:read temporal:write")
            // The probes at start used the first token.
            let probe = try #require(frontend.calls.first { $0.method == "GetSystemInfo" })
            #expect(probe.value("authorization") == "Bearer oidc-token-1")
        }
        await frontend.stop()
    }
}
