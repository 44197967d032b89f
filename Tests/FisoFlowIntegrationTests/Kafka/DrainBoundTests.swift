import AsyncHTTPClient
import FisoFlowTestSupport
import FisoKafkaTesting
import Foundation
import NIOCore
import Testing

/// A drain must end within `FISO_SHUTDOWN_TIMEOUT` even when a broker stops answering, and say
/// what it gave up: waits on the broker end when the runtime's shutdown timeout cancels them.
@Suite(.serialized, .enabled(if: FlowTestBroker.startsLocalBroker, "needs a broker process it can pause"))
struct DrainBoundTests {
    @Test func aDrainAgainstASilentBrokerEndsWithinTheShutdownTimeout() async throws {
        try await FlowTestBroker.with { broker in
            let local = try #require(broker.local)
            let topic = try await broker.createTopic("drain-bound")
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let metricsPort = try freePort()
            try directory.write(
                "to-kafka.yaml",
                """
                name: to-kafka
                source: {type: http, config: {listenAddr: "127.0.0.1:\(port)", path: /in}}
                \(kafkaSinkBlock(topic: topic))
                errorHandling: {maxRetries: 0}
                \(broker.clusterBlock())
                """
            )
            let shutdownTimeout = 3
            let child = try ChildProcess(
                try fisoFlowBinary(), arguments: ["run", "--config", directory.path],
                environment: [
                    "FISO_METRICS_ADDR": "127.0.0.1:\(metricsPort)", "FISO_SHUTDOWN_TIMEOUT": "\(shutdownTimeout)s",
                ]
            )
            let client = HTTPClient.shared
            try await waitUntilReady(metricsPort: metricsPort)
            #expect(try await postEvent(#"{"n":0}"#, port: port) == 202, "the broker answers before it is paused")

            local.pause()
            defer { local.resume() }
            let stuck = 4
            let statuses = Task {
                try await withThrowingTaskGroup(of: Int?.self) { group in
                    for number in 1...stuck {
                        group.addTask { try? await postEvent(#"{"n":\#(number)}"#, port: port, timeout: .seconds(60)) }
                    }
                    var statuses: [Int?] = []
                    for try await status in group { statuses.append(status) }
                    return statuses
                }
            }
            try await waitUntil("the events wait for the silent broker", timeout: .seconds(30)) {
                let metrics = try? await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(metricsPort)/metrics"), timeout: .seconds(2))
                guard let metrics else { return false }
                let text = String(buffer: try await metrics.body.collect(upTo: 1 << 22))
                return text.contains(#"fiso_flow_events_in_flight{flow="to-kafka"} \#(stuck)"#)
            }

            let signalled = ContinuousClock.now
            child.signal(SIGTERM)
            let exitStatus = try await child.waitForExit(timeout: .seconds(60))
            let drainTime = ContinuousClock.now - signalled
            #expect(
                drainTime <= .seconds(shutdownTimeout + 1),
                "the drain took \(drainTime) with FISO_SHUTDOWN_TIMEOUT=\(shutdownTimeout)s")
            #expect(exitStatus == 0, "stderr: \(child.standardError)")
            let log = child.standardError
            #expect(log.contains("the drain did not finish within the shutdown timeout"), "\(log)")
            #expect(log.contains("events_in_flight=\"to-kafka: \(stuck)\""), "\(log)")
            #expect(log.contains("not confirmed by the broker"), "\(log)")
            // Every caller got an answer (an error status) or lost its connection; none hangs.
            let answered = try await statuses.value
            #expect(answered.count == stuck)
            #expect(answered.allSatisfy { $0 == nil || $0! >= 500 }, "\(answered)")
        }
    }
}
