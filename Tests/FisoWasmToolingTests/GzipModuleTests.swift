import FisoWasm
import FisoWasmTestSupport
import FisoWasmTooling
import Testing

/// Reading gzip-compressed modules (``WasmModuleFile``), with inputs made by the tooling's gzip
/// (FisoWasmTests has no compressor).
@Suite struct GzipModuleTests {
    /// A gzip bomb stops at the size limit instead of filling memory.
    @Test func gzipBombStopsAtTheLimit() async throws {
        let directory = try TemporaryDirectory()
        try directory.write(
            "bomb.wasm", try await Blocking.run { try WasmConfigMap.gzip([UInt8](repeating: 0, count: 8 << 20)) })
        let outcome = try await Blocking.run {
            Result { () throws(WasmError) in
                try WasmModuleFile.read(path: directory.file("bomb.wasm"), maximumBytes: 1 << 20)
            }
        }
        #expect(throws: WasmError.self) { try outcome.get() }
        if case .failure(let error) = outcome { #expect(error.reason == .invalidModule) }
    }
}
