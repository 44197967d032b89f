import FisoWasmTestSupport
import Foundation
import Testing

@testable import FisoWasm

/// Where the Wasmtime library is looked for, and which versions are accepted.
@Suite struct WasmtimeLibraryTests {
    /// Production looks at `FISO_WASMTIME_LIB` (handled before this list) or the image's path only;
    /// Python installations only with the development opt-in.
    @Test func pythonPackagesAreSearchedOnlyWhenAskedTo() throws {
        let directory = try TemporaryDirectory()
        var machine = utsname()
        uname(&machine)
        let architecture = withUnsafeBytes(of: &machine.machine) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        let package = directory.path + "/lib/python3.99/site-packages/wasmtime/linux-\(architecture)"
        try FileManager.default.createDirectory(atPath: package, withIntermediateDirectories: true)
        try directory.write("lib/python3.99/site-packages/wasmtime/linux-\(architecture)/_libwasmtime.so", [0])
        let environment = ["PATH": directory.path + "/bin", "HOME": directory.path + "/home"]

        #expect(WasmtimeLibrary.candidatePaths(environment: environment) == ["/usr/local/lib/libwasmtime.so"])
        var optedIn = environment
        optedIn["FISO_WASMTIME_SEARCH_PYTHON"] = "1"
        let candidates = WasmtimeLibrary.candidatePaths(environment: optedIn)
        #expect(candidates.first == "/usr/local/lib/libwasmtime.so")
        #expect(candidates.contains(package + "/_libwasmtime.so"))
        optedIn["FISO_WASMTIME_SEARCH_PYTHON"] = "0"
        #expect(WasmtimeLibrary.candidatePaths(environment: optedIn) == ["/usr/local/lib/libwasmtime.so"])
    }

    @Test func otherVersionsAreRefusedNamingBoth() throws {
        try WasmtimeLibrary.check(version: "50", path: "/opt/libwasmtime.so")
        try WasmtimeLibrary.check(version: "50.0.1", path: "/opt/libwasmtime.so")
        for version in ["49", "51", "14.0.4", "dev"] {
            #expect {
                try WasmtimeLibrary.check(version: version, path: "/opt/libwasmtime.so")
            } throws: { error in
                let message = "\(error)"
                return message.contains("/opt/libwasmtime.so is Wasmtime \(version)")
                    && message.contains("supports Wasmtime 50 (50.x) only")
            }
        }
    }

    @Test func versionIsReadFromSerializedCode() {
        // Not an ELF object, or one without the section: no version.
        for bytes in [[UInt8](), Array("not an object".utf8), [UInt8](repeating: 0, count: 128)] {
            #expect(bytes.withUnsafeBufferPointer { WasmtimeLibrary.engineVersion(inSerializedModule: $0) } == nil)
        }
    }

    @Test(.enabled(if: WasmtimeEngine.isAvailable, TestEngines.wasmtimeAbsence))
    func loadedLibraryReportsASupportedVersion() throws {
        let engine = try WasmtimeEngine.shared()
        #expect(engine.libraryVersion == "50")
        #expect(WasmtimeEngine.supportedMajorVersions.contains(Int(engine.libraryVersion) ?? 0))
    }

    /// The cache's `.cwasm` files are serialized modules: their version is the library's.
    @Test(.enabled(if: WasmtimeEngine.isAvailable, TestEngines.wasmtimeAbsence))
    func cachedCodeCarriesTheLibraryVersion() async throws {
        let engine = try WasmtimeEngine.shared()
        let bytes = try ExampleModules.bytes("enrich-c/enrich.wasm")
        _ = try await Blocking.run { try engine.compile(bytes, name: "enrich.wasm") }
        let path = try #require(engine.cachedCodePath(for: bytes))
        guard let code = FileManager.default.contents(atPath: path) else { return }  // cache off here
        let version = [UInt8](code).withUnsafeBufferPointer { WasmtimeLibrary.engineVersion(inSerializedModule: $0) }
        #expect(version == engine.libraryVersion)
    }
}

/// The executor's deadline timer: a min-heap with lazy cancellation.
@Suite struct DeadlineTimerTests {
    @Test func actionsRunInDeadlineOrderAndCancelledOnesNever() async throws {
        let timer = DeadlineTimer(name: "test-deadlines")
        defer { timer.stop() }
        let fired = FiredList()
        let now = ContinuousClock.now
        _ = timer.schedule(at: now + .milliseconds(60)) { fired.append(3) }
        _ = timer.schedule(at: now + .milliseconds(20)) { fired.append(1) }
        timer.cancel(timer.schedule(at: now + .milliseconds(30)) { fired.append(99) })
        _ = timer.schedule(at: now + .milliseconds(40)) { fired.append(2) }
        // Many cancelled deadlines (the heap is compacted on the way), due long after the test.
        for offset in 0..<3000 {
            timer.cancel(timer.schedule(at: now + .seconds(60) + .milliseconds(offset % 20)) { fired.append(-1) })
        }
        let waited = try await waitUntil(limit: .seconds(10)) { fired.values.count == 3 }
        #expect(waited != nil)
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.values == [1, 2, 3])
    }
}

private final class FiredList: @unchecked Sendable {
    // @unchecked: `list` is only touched under `lock`.
    private let lock = NSLock()
    private var list: [Int] = []

    func append(_ value: Int) {
        lock.lock()
        list.append(value)
        lock.unlock()
    }

    var values: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}
