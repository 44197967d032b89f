import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Why a ``TiedChildProcess`` could not start.
public struct TiedChildProcessError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A server process for tests and benchmarks (a Kafka broker, a Temporal dev server) that cannot
/// outlive the process that started it.
///
/// The server runs under `/bin/sh`, which ends it when its standard input reaches end-of-file:
/// ``stop()`` closes our end of the pipe, and so does the death of this process. The pipe is
/// close-on-exec, so no other child inherits our end, and the child starts with an empty signal
/// mask (threads of a Swift process block most signals, and a spawned process would inherit that
/// mask and ignore SIGTERM). The shell leads a process group of its own, so ``pause()`` and
/// ``resume()`` reach the server through it.
public final class TiedChildProcess: Sendable {
    /// The process id of the shell; it leads the server's process group.
    public let processID: pid_t
    private let stdinWriter: Int32

    private struct State {
        var stopped = false
        var exited = false
        var paused = false
    }

    /// Signals to the process group are sent under the lock, so a `stop()` cannot slip between
    /// `pause()` checking the state and stopping the group.
    private let state = NIOLockedValueBox(State())

    /// Serialises spawning, so that no other child inherits a pipe between `pipe()` and `fcntl()`
    /// (Glibc does not export `pipe2` to Swift).
    private static let spawnLock = NIOLockedValueBox(())

    private init(processID: pid_t, stdinWriter: Int32) {
        self.processID = processID
        self.stdinWriter = stdinWriter
    }

    /// Runs `command` — a shell command line that refers to `arguments` as `"$0"`, `"$1"` … and
    /// whose output goes nowhere — until ``stop()`` or the end of this process.
    public static func start(command: String, arguments: [String]) throws(TiedChildProcessError) -> TiedChildProcess {
        let script = """
            \(command) </dev/null >/dev/null 2>&1 &
            child=$!
            read _ignored
            kill $child 2>/dev/null
            wait $child 2>/dev/null
            exit 0
            """
        return try spawnLock.withLockedValue { _ in
            Result { () throws(TiedChildProcessError) in try spawnUnlocked(script: script, arguments: arguments) }
        }.get()
    }

    private static func spawnUnlocked(script: String, arguments: [String]) throws(TiedChildProcessError)
        -> TiedChildProcess
    {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw TiedChildProcessError("pipe() failed") }
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
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let cStrings = (["/bin/sh", "-c", script] + arguments).map { strdup($0) }
        defer { for string in cStrings { free(string) } }
        var argv = cStrings + [nil]
        var processID: pid_t = 0
        let spawned = posix_spawn(&processID, "/bin/sh", &actions, &attributes, &argv, environ)
        close(pipeEnds[0])
        guard spawned == 0 else {
            close(pipeEnds[1])
            throw TiedChildProcessError("posix_spawn failed: \(String(cString: strerror(spawned)))")
        }
        return TiedChildProcess(processID: processID, stdinWriter: pipeEnds[1])
    }

    /// Freezes the process group (SIGSTOP): connections stay open and nothing answers, as with a
    /// server that hangs. `resume()` continues it; `stop()` resumes it first.
    public func pause() {
        state.withLockedValue { state in
            guard !state.stopped, !state.paused else { return }
            state.paused = true
            _ = kill(-processID, SIGSTOP)
        }
    }

    public func resume() {
        state.withLockedValue { state in
            guard state.paused else { return }
            state.paused = false
            _ = kill(-processID, SIGCONT)
        }
    }

    /// True once the shell has exited (the server failed or was stopped).
    public var hasExited: Bool {
        state.withLockedValue { state in
            if state.exited { return true }
            var status: Int32 = 0
            if waitpid(processID, &status, WNOHANG) == processID { state.exited = true }
            return state.exited
        }
    }

    /// Stops the server and waits until it has exited. Safe to call more than once.
    public func stop() async {
        let (first, alreadyExited) = state.withLockedValue { state -> (Bool, Bool) in
            defer { state.stopped = true }
            if state.paused {
                // A stopped shell would never read the end of its input.
                state.paused = false
                _ = kill(-processID, SIGCONT)
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
}

/// Ports and tools on the machine the tests run on.
public enum LocalMachine {
    /// A 127.0.0.1 port that was free a moment ago (bind to port 0, read it, close).
    public static func freePort() throws(TiedChildProcessError) -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TiedChildProcessError("socket() failed") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TiedChildProcessError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw TiedChildProcessError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = loopback(port: UInt16(port))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }

    /// An executable: `environmentVariable` when it names one, else what `python3 -c pythonCode`
    /// prints (where a pip package put it), else `name` on `PATH`; nil when none exists.
    public static func findExecutable(
        environmentVariable: String, pythonCode: String, name: String
    ) -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment[environmentVariable], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        let finder = Process()
        finder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        finder.arguments = ["python3", "-c", pythonCode]
        let output = Pipe()
        finder.standardOutput = output
        finder.standardError = FileHandle.nullDevice
        if (try? finder.run()) != nil {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            finder.waitUntilExit()
            let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if finder.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return onPath(name)
    }

    /// `name` in a directory of `PATH` (or `/usr/sbin`, `/sbin`, where Debian puts daemons such as
    /// nginx); nil when none has it.
    public static func onPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
