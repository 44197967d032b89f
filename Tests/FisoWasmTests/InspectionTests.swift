import FisoWasm
import FisoWasmTestSupport
import Foundation
import Testing

/// What a module declares, read without compiling it (``WasmModuleInfo``), and the WASI functions
/// the runtime provides.
@Suite struct InspectionTests {
    @Test func moduleInfoOfTheCExample() throws {
        let info = try WasmModuleInfo(reading: try ExampleModules.bytes("enrich-c/enrich.wasm"))
        #expect(Set(info.imports.map(\.name)).isSuperset(of: ["fd_read", "fd_write", "proc_exit"]))
        #expect(info.imports.allSatisfy { $0.module == "wasi_snapshot_preview1" })
        #expect(info.export(named: "_start") != nil)
        #expect(info.memories.count == 1)
        #expect(!info.hasStartSection)
    }

    @Test func notWebAssembly() {
        #expect(throws: WasmBinaryError.self) { try WasmModuleInfo(reading: Array("hello".utf8)) }
        #expect(throws: WasmBinaryError.self) {
            try WasmModuleInfo(reading: Array(TestModules.minimalCommand.dropLast(3)))
        }
    }

    @Test func providedWASIFunctions() {
        #expect(WASIFunctions.provided.count >= 45)
        #expect(WASIFunctions.provided["fd_write"]?.description == "(i32, i32, i32, i32) -> i32")
        #expect(WASIFunctions.provided["proc_exit"]?.description == "(i32) -> ()")
        #expect(WASIFunctions.stubs.contains("sock_accept") || WASIFunctions.stubs.contains("proc_raise"))
    }
}

/// ``WasmModuleInfo`` read with WasmParser: signatures resolved across imports and definitions,
/// sections noticed, malformed binaries refused with their position.
@Suite struct ModuleInfoTests {
    /// `(module (type (func)) (func) (start 0))` with a custom section `hello` at the end.
    static let startAndCustomSection: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
        0x08, 0x01, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, 0x00, 0x06, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ]

    @Test func exportsAndImportsCarryTheirTypes() throws {
        let info = try WasmModuleInfo(reading: TestModules.unknownImport)
        #expect(info.imports.count == 1)
        #expect(info.imports.first?.module == "env")
        #expect(info.imports.first?.kind == .function(WasmModuleInfo.Signature(parameters: [.i32], results: [])))
        // `_start` is function 1: after the imported one, so its type comes from the function section.
        #expect(info.export(named: "_start")?.kind == .function(WasmModuleInfo.Signature(parameters: [], results: [])))
        let memory = WasmModuleInfo.Limits(minimum: 1, maximum: nil, isShared: false, is64Bit: false)
        #expect(info.export(named: "memory")?.kind == .memory(memory))
        #expect(info.memories == [memory])
        #expect(info.definedFunctionCount == 1)
        #expect(!info.hasStartSection)
        #expect(info.customSectionNames.isEmpty)
    }

    @Test func startAndCustomSectionsAreNoticed() throws {
        let info = try WasmModuleInfo(reading: Self.startAndCustomSection)
        #expect(info.hasStartSection)
        #expect(info.customSectionNames == ["hello"])
        #expect(info.exports.isEmpty)
        #expect(info.memories.isEmpty)
    }

    @Test func goExampleSignatures() throws {
        let info = try WasmModuleInfo(reading: try ExampleModules.bytes("enrich-go/enrich.wasm"))
        #expect(info.export(named: "_start")?.kind == .function(WasmModuleInfo.Signature(parameters: [], results: [])))
        let fdWrite = info.imports.first { $0.name == "fd_write" }
        #expect(fdWrite?.kind == .function(WASIFunctions.provided["fd_write"]))
        #expect(info.definedFunctionCount > 1000)
    }

    @Test func malformedBinariesSayWhatAndWhere() {
        func error(_ bytes: [UInt8]) -> WasmBinaryError? {
            do {
                _ = try WasmModuleInfo(reading: bytes)
                return nil
            } catch {
                return error
            }
        }
        #expect(
            error(Array("hello, world\n".utf8))?.description
                == "not a WebAssembly binary (no \\0asm magic number) (at byte 0)")
        #expect(
            error([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00])?.reason.hasPrefix(
                "unsupported WebAssembly binary version") == true)
        let truncated = error(Array(TestModules.minimalCommand.dropLast(3)))
        #expect(truncated != nil)
        #expect(truncated.map { $0.offset > 8 && $0.offset <= TestModules.minimalCommand.count } == true)
        // The position is said once, in our words.
        #expect(truncated?.description.contains("offset 0x") == false)
        #expect(truncated?.description.hasSuffix("(at byte \(truncated?.offset ?? -1))") == true)
        // A section out of order (the function section after the code section).
        var outOfOrder = Array(TestModules.minimalCommand[0..<8])
        outOfOrder += [0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, 0x03, 0x02, 0x01, 0x00]
        #expect(error(outOfOrder) != nil)
    }
}
