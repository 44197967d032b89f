import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

/// The `fiso-flow` executable built beside the test bundle (or `FISO_FLOW_BINARY`).
package func fisoFlowBinary() throws -> String {
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

package struct BinaryNotFound: Error, CustomStringConvertible {
    package var description: String { "fiso-flow binary not found beside the tests; build it or set FISO_FLOW_BINARY" }
}

/// A port that was free a moment ago on 127.0.0.1 (for processes that take a port number).
package func freePort() throws -> Int {
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
package final class ChildProcess: Sendable {
    /// What the pipe and termination handlers write, shared with them.
    private final class Collected: Sendable {
        let output = NIOLockedValueBox<(stdout: Data, stderr: Data)>((Data(), Data()))
        let exit = NIOLockedValueBox<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    }

    private let process: Process
    private let collected = Collected()

    package init(_ executable: String, arguments: [String], environment: [String: String] = [:]) throws {
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
            collected.output.withLockedValue { $0.stdout.append(data) }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            collected.output.withLockedValue { $0.stderr.append(data) }
        }
        process.terminationHandler = { process in
            let waiters = collected.exit.withLockedValue { state in
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

    package var standardOutput: String {
        String(decoding: collected.output.withLockedValue { $0.stdout }, as: UTF8.self)
    }
    package var standardError: String {
        String(decoding: collected.output.withLockedValue { $0.stderr }, as: UTF8.self)
    }

    package func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The exit status, waiting at most `timeout`.
    package func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await withThrowingTaskGroup(of: Int32.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let status: Int32? = self.collected.exit.withLockedValue { state in
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

/// Posts `body` to `http://127.0.0.1:port/path` and returns the status once the whole answer is in.
package func postEvent(
    _ body: String, port: Int, path: String = "/in", timeout: Duration = .seconds(30)
) async throws -> Int {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = .POST
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout.components.seconds))
    _ = try await response.body.collect(upTo: 1 << 20)
    return Int(response.status.code)
}

/// Waits until a `fiso-flow` process answers `/readyz` with 200 on `metricsPort`.
package func waitUntilReady(metricsPort: Int, timeout: Duration = .seconds(60)) async throws {
    try await waitUntil("the process is ready", timeout: timeout) {
        let response = try? await HTTPClient.shared.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(metricsPort)/readyz"), timeout: .seconds(2))
        return response?.status == .ok
    }
}
