import Foundation
import Synchronization
import Testing

/// The `fiso-flow` executable built beside the test bundle (or `FISO_FLOW_BINARY`).
func fisoFlowBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FISO_FLOW_BINARY"] { return path }
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // The test bundle may be a directory (…/Foo.xctest/Contents/MacOS/Foo) on some platforms.
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent("fiso-flow").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw BinaryNotFound()
}

struct BinaryNotFound: Error, CustomStringConvertible {
    var description: String { "fiso-flow binary not found beside the tests; build it or set FISO_FLOW_BINARY" }
}

/// A port that was free a moment ago on 127.0.0.1 (for processes that take a port number).
func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A child process with its output collected, killed if the test forgets it.
final class ChildProcess: Sendable {
    /// What the pipe and termination handlers write, shared with them.
    private final class Collected: Sendable {
        let output = Mutex<(stdout: Data, stderr: Data)>((Data(), Data()))
        let exit = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    }

    private let process: Process
    private let collected = Collected()

    init(_ executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let collected = collected
        stdoutPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            collected.output.withLock { $0.stdout.append(data) }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            collected.output.withLock { $0.stderr.append(data) }
        }
        process.terminationHandler = { process in
            let waiters = collected.exit.withLock { state in
                state.status = process.terminationStatus
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: process.terminationStatus) }
        }
        try process.run()
    }

    deinit {
        if process.isRunning {
            process.interrupt()
            kill(process.processIdentifier, SIGKILL)
        }
    }

    var standardOutput: String { String(decoding: collected.output.withLock { $0.stdout }, as: UTF8.self) }
    var standardError: String { String(decoding: collected.output.withLock { $0.stderr }, as: UTF8.self) }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The exit status, waiting at most `timeout`.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await withThrowingTaskGroup(of: Int32.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let status: Int32? = self.collected.exit.withLock { state in
                        if let status = state.status { return status }
                        state.waiters.append(continuation)
                        return nil
                    }
                    if let status { continuation.resume(returning: status) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                // Kill it so the waiter above returns and the group can finish.
                self.signal(SIGKILL)
                throw TimedOut(what: "the process exits")
            }
            defer { group.cancelAll() }
            let status = try await group.next()!
            // Let the pipes drain what the process wrote last.
            try await Task.sleep(for: .milliseconds(100))
            return status
        }
    }
}
