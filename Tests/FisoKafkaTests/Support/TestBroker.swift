import FisoKafka
import FisoKafkaTesting
import Foundation
import Testing

/// A Kafka-protocol broker for one test: a `LocalKafkaBroker` (memory-only tansu on a free
/// 127.0.0.1 port) that stops when the test ends (or when the test process dies), or the external
/// broker named by `FISO_KAFKA_TEST_BROKERS`.
struct TestBroker: Sendable {
    /// `host:port` to bootstrap from.
    let address: String

    var cluster: KafkaClientConfiguration { KafkaClientConfiguration(brokers: [address], clientID: "fiso-kafka-tests") }

    /// Runs `body` with a broker and stops the broker afterwards.
    static func with<Result: Sendable>(
        _ body: (TestBroker) async throws -> Result
    ) async throws -> Result {
        if let external = ProcessInfo.processInfo.environment["FISO_KAFKA_TEST_BROKERS"], !external.isEmpty {
            return try await body(TestBroker(address: external))
        }
        let broker = try await LocalKafkaBroker.start()
        do {
            let result = try await body(TestBroker(address: broker.address))
            await broker.stop()
            return result
        } catch {
            await broker.stop()
            throw error
        }
    }

    /// tansu needs librdkafka >= 2.2.0; explain how to get it instead of timing out.
    static func requireModernLibrdkafka() throws {
        guard KafkaLibrary.parsesTaggedApiVersionFields else {
            throw TestSetupError(
                """
                the test process runs with librdkafka \(KafkaLibrary.version), which cannot talk to tansu \
                (needs >= 2.2.0). Run the tests through scripts/kafka/run.sh (for example \
                `scripts/kafka/run.sh swift test`), which puts the confluent-kafka wheel's librdkafka on \
                LD_LIBRARY_PATH, or set FISO_KAFKA_TEST_BROKERS to a real Kafka broker.
                """
            )
        }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
