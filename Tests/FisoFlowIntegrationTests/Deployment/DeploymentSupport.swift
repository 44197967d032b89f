import FisoFlowTestSupport
import Foundation
import Testing
import Yams

/// The repository this test file belongs to (symlinks resolved, so a development package that
/// links the test folder still finds the real tree).
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent()  // Deployment
        .deletingLastPathComponent()  // FisoFlowTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

/// What a finished command printed.
struct ToolOutput {
    var status: Int32
    var stdout: Data
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

struct ToolFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command to completion, collecting its output (for short-lived tools only).
func runTool(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil
) throws -> ToolOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var merged = ProcessInfo.processInfo.environment
    for (key, value) in environment { merged[key] = value }
    process.environment = merged
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let stdoutFile = try TemporaryFolder()
    let outPath = stdoutFile.file("stdout")
    let errPath = stdoutFile.file("stderr")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    // Files rather than pipes: a large output (a rendered module) cannot block the child.
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return ToolOutput(
        status: process.terminationStatus,
        stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
        stderr: String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
    )
}

/// A directory removed when the value goes away.
final class TemporaryFolder: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "fiso-deploy-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ data: Data) throws {
        let target = file(name)
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true
        )
        try data.write(to: URL(fileURLWithPath: target))
    }
}

/// `kubectl` from `FISO_KUBECTL` or `PATH`; a clear failure when it is missing, since the
/// README's test command (scripts/test.sh → scripts/setup.sh test) installs it.
func kubectl() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FISO_KUBECTL"] { return path }
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let candidate = "\(directory)/kubectl"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw ToolFailure(
        description:
            "kubectl not found on PATH: run scripts/setup.sh test (it installs kubectl 1.21+) or set FISO_KUBECTL"
    )
}

/// One Kubernetes object of a rendered manifest, read through its YAML node.
struct KubeObject {
    let node: Node

    var kind: String { node["kind"]?.string ?? "" }
    var name: String { node["metadata"]?["name"]?.string ?? "" }
    var namespace: String? { node["metadata"]?["namespace"]?.string }
    var labels: [String: String] { stringMap(node["metadata"]?["labels"]) }
    var annotations: [String: String] { stringMap(node["metadata"]?["annotations"]) }
    var data: [String: String] { stringMap(node["data"]) }
    var binaryData: [String: Data] {
        stringMap(node["binaryData"]).compactMapValues {
            Data(base64Encoded: $0.filter { !$0.isWhitespace })
        }
    }
}

/// A mapping of scalars as a dictionary (empty when absent).
func stringMap(_ node: Node?) -> [String: String] {
    guard let mapping = node?.mapping else { return [:] }
    var result: [String: String] = [:]
    for (key, value) in mapping {
        if let key = key.string, let value = value.string { result[key] = value }
    }
    return result
}

func nodes(_ node: Node?) -> [Node] { node?.sequence.map(Array.init) ?? [] }

/// A rendered kustomization: every object, with lookups for the ones the deployment has.
struct RenderedManifest {
    let objects: [KubeObject]
    let source: String

    init(kustomization: String) throws {
        source = kustomization
        let output = try runTool(try kubectl(), ["kustomize", kustomization])
        guard output.status == 0 else {
            let version = (try? runTool(try kubectl(), ["version", "--client"]).text) ?? "?"
            throw ToolFailure(
                description:
                    "kubectl kustomize \(kustomization) failed (status \(output.status)): \(output.stderr)\n"
                    + "kubectl: \(version) — deploy/ needs kustomize v4 or later (kubectl 1.21+)"
            )
        }
        objects = try Yams.compose_all(yaml: output.text).compactMap { $0 }.map(KubeObject.init)
    }

    func objects(kind: String) -> [KubeObject] { objects.filter { $0.kind == kind } }

    func object(kind: String, name: String) throws -> KubeObject {
        guard let found = objects.first(where: { $0.kind == kind && $0.name == name }) else {
            throw ToolFailure(
                description: "\(source): no \(kind) \(name) in \(objects.map { "\($0.kind)/\($0.name)" })")
        }
        return found
    }

    var deployment: KubeObject { get throws { try object(kind: "Deployment", name: "fiso-flow") } }

    var podSpec: Node { get throws { try #require(try deployment.node["spec"]?["template"]?["spec"]) } }

    var container: Node {
        get throws {
            let containers = nodes(try podSpec["containers"])
            return try #require(containers.first { $0["name"]?.string == "fiso-flow" })
        }
    }

    var environment: [String: String] {
        get throws {
            var result: [String: String] = [:]
            for variable in nodes(try container["env"]) {
                if let name = variable["name"]?.string { result[name] = variable["value"]?.string ?? "" }
            }
            return result
        }
    }

    /// The ConfigMap a pod volume of this name refers to.
    func configMap(volume: String) throws -> KubeObject {
        let volumes = nodes(try podSpec["volumes"])
        let entry = try #require(volumes.first { $0["name"]?.string == volume }, "no volume \(volume)")
        let name = try #require(entry["configMap"]?["name"]?.string, "volume \(volume) is not a ConfigMap")
        return try object(kind: "ConfigMap", name: name)
    }

    /// The container's mount of a volume.
    func mount(volume: String, container: Node) throws -> (path: String, readOnly: Bool) {
        let mounts = nodes(container["volumeMounts"])
        let mount = try #require(mounts.first { $0["name"]?.string == volume }, "no mount of \(volume)")
        return (try #require(mount["mountPath"]?.string), mount["readOnly"]?.bool ?? false)
    }
}

/// The kustomizations of deploy/, each rendered by the tests.
enum Kustomizations {
    static let base = "deploy/base"
    static let largeModule = "deploy/overlays/large-module"
    static let hotReload = "deploy/overlays/hot-reload"
    static let all = [base, largeModule, hotReload]
    /// Those whose modules come from a ConfigMap (the large-module overlay fetches its module).
    static let withModuleConfigMap = [base, hotReload]
}

/// The port of a `[host]:port` address.
func port(ofAddress address: String) -> Int? {
    guard let colon = address.lastIndex(of: ":") else { return nil }
    return Int(address[address.index(after: colon)...])
}

/// Reads HTTP status and body of `GET path` on 127.0.0.1 with a plain socket (no HTTP client
/// library needed by these tests).
func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return nil }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else {
        return nil
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    let parts = text.components(separatedBy: " ")
    guard parts.count > 1, let status = Int(parts[1]) else { return nil }
    let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, body)
}

/// A free port on 127.0.0.1 at the moment of asking.
func unusedPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ToolFailure(description: "socket() failed") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw ToolFailure(description: "bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A `fiso-flow run` child, stopped with SIGTERM (then SIGKILL) when the value goes away.
final class RunningFisoFlow: Sendable {
    private let process: Process
    let logPath: String

    init(arguments: [String], environment: [String: String], logDirectory: TemporaryFolder) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: try fisoFlowBinary())
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        logPath = logDirectory.file("fiso-flow.log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self) }
    var isRunning: Bool { process.isRunning }

    /// Polls `GET path` until it answers `status` (the process must stay up meanwhile).
    func waitFor(port: Int, path: String, status: Int = 200, within seconds: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !process.isRunning { throw ToolFailure(description: "fiso-flow exited early; log:\n\(log)") }
            if let answer = httpGet(port: port, path: path), answer.status == status { return answer.body }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ToolFailure(description: "GET \(path) on port \(port) never answered \(status); log:\n\(log)")
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
