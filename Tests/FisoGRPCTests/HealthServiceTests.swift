import FisoGRPC
import GRPCCore
import Testing

@Suite("grpc.health.v1.Health")
struct HealthServiceTests {
    private func check(_ client: HealthClient, _ service: String) async throws -> HealthServingStatus {
        var request = Grpc_Health_V1_HealthCheckRequest()
        request.service = service
        return try await client.check(request).status
    }

    @Test("Check: NOT_SERVING until ready, SERVING when ready, NOT_SERVING on drain")
    func statusFlips() async throws {
        try await withEventServer(serving: false, handler: echoHandler) { server, port in
            try await withConnection(port: port) { connection in
                let health = HealthClient(wrapping: connection)
                #expect(try await check(health, "") == .notServing)
                #expect(try await check(health, ServiceNames.eventService) == .notServing)

                server.setServing(true)
                #expect(try await check(health, "") == .serving)
                #expect(try await check(health, "fiso.flow.v1.EventService") == .serving)

                let list = try await health.list(Grpc_Health_V1_HealthListRequest())
                #expect(Set(list.statuses.keys) == ["", "fiso.flow.v1.EventService"])
                #expect(list.statuses.values.allSatisfy { $0.status == .serving })

                server.setServing(false)
                #expect(try await check(health, "") == .notServing)

                let error = await #expect(throws: RPCError.self) {
                    _ = try await check(health, "no.such.Service")
                }
                #expect(error?.code == .notFound)
            }
        }
    }

    @Test("Watch: the current status, every change, and the end on shutdown")
    func watchFollowsChanges() async throws {
        let updates = try await withEventServer(serving: false, handler: echoHandler) { server, port in
            try await withConnection(port: port) { connection in
                let health = HealthClient(wrapping: connection)
                var request = Grpc_Health_V1_HealthCheckRequest()
                request.service = ServiceNames.eventService
                async let watched: [HealthServingStatus] = health.watch(request) { response in
                    var seen: [HealthServingStatus] = []
                    for try await message in response.messages {
                        seen.append(message.status)
                        if seen.count == 1 { server.setServing(true) }
                        if seen.count == 2 {
                            // Shutting down turns the status off and ends the watch.
                            Task { await server.shutdown(gracePeriod: .seconds(5)) }
                        }
                    }
                    return seen
                }
                return try await watched
            }
        }
        #expect(updates == [.notServing, .serving, .notServing])
    }

    @Test("Watch of an unknown service reports SERVICE_UNKNOWN instead of failing")
    func watchUnknownService() async throws {
        let health = HealthService(services: [])
        health.finishWatches()
        try await withServer(services: [health]) { port in
            try await withConnection(port: port) { connection in
                var request = Grpc_Health_V1_HealthCheckRequest()
                request.service = "later.Service"
                let seen = try await HealthClient(wrapping: connection).watch(request) { response in
                    var seen: [HealthServingStatus] = []
                    for try await message in response.messages { seen.append(message.status) }
                    return seen
                }
                #expect(seen == [.serviceUnknown])
            }
        }
    }
}
