import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// The Wasmtime engine's on-disk cache of compiled code.
@Suite(.enabled(if: WasmtimeEngine.isAvailable, TestEngines.wasmtimeAbsence))
struct WasmtimeCacheTests {
    /// `TestModules.minimalCommand` with a custom section holding `marker`, so that each test
    /// has a module (and a cache entry) of its own.
    static func uniqueModule(_ marker: String) -> [UInt8] {
        let name = Array("fiso-test".utf8)
        let payload = Array(marker.utf8)
        let body = [UInt8(name.count)] + name + payload
        precondition(body.count < 128, "single-byte LEB128 size")
        return TestModules.minimalCommand + [0x00, UInt8(body.count)] + body
    }

    @Test func compiledCodeIsCachedAndADamagedEntryIsReplaced() async throws {
        let engine = try WasmtimeEngine.shared()
        guard engine.cacheDirectory != nil else {
            Issue.record(
                "the cache is off or its directory is not private; FISO_WASM_CACHE_DIR=\(ProcessInfo.processInfo.environment["FISO_WASM_CACHE_DIR"] ?? "")"
            )
            return
        }
        let module = Self.uniqueModule(UUID().uuidString)
        let entry = try #require(engine.cachedCodePath(for: module))
        defer { unlink(entry) }
        #expect(!FileManager.default.fileExists(atPath: entry))

        // First compile: compiled, then stored.
        let first = try await Blocking.run {
            try engine.compile(module, name: "minimal.wasm").run(WasmInvocation(stdin: []))
        }
        #expect(first.termination == .exited(code: 0))
        let stored = try #require(FileManager.default.contents(atPath: entry))
        #expect(stored.count > 0)

        // Second compile: from the cache, and it runs.
        let second = try await Blocking.run {
            try engine.compile(module, name: "minimal.wasm").run(WasmInvocation(stdin: []))
        }
        #expect(second.termination == .exited(code: 0))

        // A damaged entry is refused by Wasmtime, deleted, and replaced by a fresh compilation.
        try Data("not compiled code".utf8).write(to: URL(fileURLWithPath: entry))
        let third = try await Blocking.run {
            try engine.compile(module, name: "minimal.wasm").run(WasmInvocation(stdin: []))
        }
        #expect(third.termination == .exited(code: 0))
        let replaced = try #require(FileManager.default.contents(atPath: entry))
        #expect(replaced == stored)
    }

    /// The cache directory is private: mode 0700, owned by this user.
    @Test func cacheDirectoryIsPrivate() throws {
        let engine = try WasmtimeEngine.shared()
        let directory = try #require(engine.cacheDirectory)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory)
        #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
        #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == getuid())
    }
}
