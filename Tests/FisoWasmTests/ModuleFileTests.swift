import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

@Suite struct ModuleFileTests {
    /// Content hashes are SHA-256 (FIPS 180-4 test vectors).
    @Test(arguments: [
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (String(repeating: "a", count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ])
    func contentHashIsSHA256(text: String, digest: String) async throws {
        let directory = try TemporaryDirectory()
        try directory.write("file", Array(text.utf8))
        let file = try await Blocking.run { try WasmModuleFile.read(path: directory.file("file")) }
        #expect(file.contentHash == digest)
        #expect(!file.isGzipped)
        #expect(file.name == "file")
    }

    @Test func symlinksAreFollowedAndResolved() throws {
        let directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.file("real"), withIntermediateDirectories: false)
        try directory.write("real/module.wasm", TestModules.minimalCommand)
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("link.wasm"), withDestinationPath: "real/module.wasm")
        let file = try WasmModuleFile.read(path: directory.file("link.wasm"))
        #expect(file.name == "link.wasm")
        #expect(file.resolvedPath.hasSuffix("/real/module.wasm"))
        #expect(file.bytes == TestModules.minimalCommand)
        #expect(WasmFileFingerprint.of(path: directory.file("link.wasm")) == file.fingerprint)
    }

    @Test func directoriesAndOversizedFilesAreRefused() throws {
        let directory = try TemporaryDirectory()
        #expect {
            try WasmModuleFile.read(path: directory.path)
        } throws: { error in
            (error as? WasmError)?.reason == .invalidModule
        }
        try directory.write("big.wasm", [UInt8](repeating: 0, count: 2048))
        #expect {
            try WasmModuleFile.read(path: directory.file("big.wasm"), maximumBytes: 1024)
        } throws: { error in
            (error as? WasmError)?.message.contains("more than the 1024-byte limit") == true
        }
    }
}
