import FisoGRPC
import GRPCCore
import Testing

@Suite("Addresses, server start-up and header mapping")
struct ServerConfigurationTests {
    @Test(
        "host:port parsing",
        arguments: [
            ("127.0.0.1:9000", "127.0.0.1", 9000), (":9000", "", 9000), ("localhost:0", "localhost", 0),
            ("[::1]:50051", "::1", 50051), (" grpc.internal:443 ", "grpc.internal", 443),
        ]
    )
    func parsesHostPort(text: String, host: String, port: Int) throws {
        let parsed = try HostPort(parsing: text)
        #expect(parsed.host == host)
        #expect(parsed.port == port)
    }

    @Test("bad host:port is a clear error", arguments: ["9000", "host:", "host:70000", "::1:9000", "h:p"])
    func rejectsBadHostPort(text: String) {
        let error = #expect(throws: GRPCConfigurationError.self) { _ = try HostPort(parsing: text) }
        #expect(error?.message.contains(text) == true)
    }

    @Test("A port that is taken: run() throws, listeningPort() throws, both say why")
    func portInUse() async throws {
        try await withEventServer(handler: echoHandler) { _, port in
            let second = GRPCEventServer(
                configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: port)),
                handler: echoHandler
            )
            let runError: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
                group.addTask {
                    do {
                        try await second.run()
                        return nil
                    } catch {
                        return error
                    }
                }
                let portError = await #expect(throws: GRPCServerError.self) { _ = try await second.listeningPort() }
                #expect(portError?.message.lowercased().contains("in use") == true)
                return await group.next() ?? nil
            }
            let serverError = try #require(runError as? GRPCServerError)
            #expect(serverError.message.contains("127.0.0.1:\(port)"))
            #expect(serverError.message.lowercased().contains("in use"))
            await second.shutdown(gracePeriod: .seconds(1))
        }
    }

    @Test("A server can listen on localhost by name and serve on it")
    func listensOnLocalhostByName() async throws {
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(address: HostPort(host: "localhost", port: 0)),
            handler: echoHandler
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningPort()
            #expect(port > 0)
            let client = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: HostPort(host: "localhost", port: port), timeout: .seconds(60))
            )
            let ack = try await client.send(payload: Array("{}".utf8), id: "by-name", contentType: "")
            #expect(ack.eventID == "by-name")
            await client.shutdown()
            await server.shutdown(gracePeriod: .seconds(1))
            try await group.waitForAll()
        }
    }

    @Test("Shutdown of a server that never ran returns at once, and run() afterwards does nothing")
    func shutdownBeforeRun() async throws {
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0)),
            handler: echoHandler
        )
        await server.shutdown(gracePeriod: .seconds(1))
        try await server.run()
        await #expect(throws: GRPCServerError.self) { _ = try await server.listeningPort() }
    }

    @Test("Shutdown cancels calls that outlive the grace period")
    func gracePeriodEnds() async throws {
        let handler: EventHandler = { _ in
            try? await Task.sleep(for: .seconds(60))
            return .delivered(cloudEventID: "late")
        }
        let server = GRPCEventServer(
            configuration: GRPCServerConfiguration(address: HostPort(host: "127.0.0.1", port: 0)), handler: handler
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningPort()
            let client = try EventServiceClient(
                configuration: EventClientConfiguration(
                    target: HostPort(host: "127.0.0.1", port: port), timeout: .seconds(60))
            )
            group.addTask {
                _ = try? await client.send(payload: Array("{}".utf8), id: nil, contentType: "")
            }
            #expect(await eventually { server.eventService.statistics.eventsReceived == 1 })
            let start = ContinuousClock.now
            await server.shutdown(gracePeriod: .milliseconds(300))
            #expect(ContinuousClock.now - start < .seconds(30))
            try await group.waitForAll()
            await client.shutdown()
        }
    }

    @Test("Metadata to headers drops gRPC's own keys; headers to metadata drops what metadata cannot carry")
    func headerMapping() {
        var metadata = Metadata()
        metadata.addString("application/grpc", forKey: "content-type")
        metadata.addString("trailers", forKey: "te")
        metadata.addString("grpc-swift/2", forKey: "user-agent")
        metadata.addString("100m", forKey: "grpc-timeout")
        metadata.addString("a", forKey: "x-multi")
        metadata.addString("b", forKey: "x-multi")
        metadata.addBinary([1, 2, 3], forKey: "x-trace-bin")
        metadata.addString("tok", forKey: "authorization")
        let headers = HeaderMetadata.headers(from: metadata)
        #expect(headers.map(\.name) == ["x-multi", "authorization"])
        #expect(headers.first?.value == "a, b")

        let back = HeaderMetadata.metadata(from: [
            ("X-Upper", "v"), ("te", "x"), (":path", "/"), ("x-data-bin", "abc"), ("x-emoji", "🙂"),
            ("with space", "v"), ("x-ok", "printable ~"),
        ])
        #expect(back.map(\.key) == ["x-upper", "x-ok"])
    }

    @Test("grpc-timeout becomes the event's deadline")
    func deadlineFromTimeout() {
        let now = ContinuousClock.now
        func deadline(_ value: String?) -> ContinuousClock.Instant? {
            var metadata = Metadata()
            if let value { metadata.addString(value, forKey: "grpc-timeout") }
            return HeaderMetadata.deadline(of: metadata, now: now)
        }
        #expect(deadline(nil) == nil)
        #expect(deadline("100m") == now + .milliseconds(100))
        #expect(deadline("2S") == now + .seconds(2))
        #expect(deadline("1H") == now + .seconds(3600))
        #expect(deadline("3M") == now + .seconds(180))
        #expect(deadline("250u") == now + .microseconds(250))
        #expect(deadline("7n") == now + .nanoseconds(7))
        #expect(deadline("123456789S") == nil, "more than 8 digits")
        #expect(deadline("10x") == nil)
        #expect(deadline("S") == nil)
        #expect(deadline("-1S") == nil)
    }
}
