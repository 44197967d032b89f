import WASI
import WasmKit
import WasmKitWASI

/// The WASI preview 1 functions modules may import (module `wasi_snapshot_preview1`), with their
/// signatures: what WasmKit's WASI implementation provides.
public enum WASIFunctions {
    /// The import module name of WASI preview 1.
    public static let moduleName = "wasi_snapshot_preview1"

    /// Every provided function, by name.
    public static var provided: [String: WasmModuleInfo.Signature] { catalog.signatures }

    /// Functions that are provided only as stubs returning `ENOSYS` (e.g. `proc_raise`,
    /// `sock_accept`): a module may import them, but calling them fails.
    public static var stubs: Set<String> { catalog.stubs }

    /// The function names of each group of ``WASICapability/all``, by index.
    static var capabilityFunctionNames: [Set<String>] { catalog.capabilityNames }

    /// The groups of WASI functions to link for a module importing `names`, and whether any of them
    /// is a stub (so stubs must be linked too).
    static func linkPlan(forImports names: [String]) -> (capabilityIndices: [Int], includesStubs: Bool) {
        let imported = Set(names)
        let indices = catalog.capabilityNames.indices.filter { !catalog.capabilityNames[$0].isDisjoint(with: imported) }
        return (indices, !catalog.stubs.isDisjoint(with: imported))
    }

    private struct Catalog {
        var signatures: [String: WasmModuleInfo.Signature] = [:]
        var capabilityNames: [Set<String>] = []
        var stubs: Set<String> = []
    }

    // The table does not depend on the bridge's configuration; a throwaway bridge lists it.
    private static let catalog: Catalog = {
        var catalog = Catalog()
        guard let fileSystem = try? MemoryFileSystem(),
            let bridge = try? WASIBridgeToHost(fileSystem: .memory(fileSystem))
        else { return catalog }
        defer { try? bridge.close() }
        let functions: [String: WASIHostFunction<Memory>] = bridge.hostFunctions(capabilities: WASICapability.all)
        catalog.signatures = functions.mapValues { function in
            WasmModuleInfo.Signature(
                parameters: function.type.parameters.map(valueType),
                results: function.type.results.map(valueType)
            )
        }
        for capability in WASICapability.all {
            let group: [String: WASIHostFunction<Memory>] = bridge.hostFunctions(
                capabilities: [capability],
                stubUnlinked: false
            )
            catalog.capabilityNames.append(Set(group.keys))
        }
        catalog.stubs = Set(functions.keys).subtracting(
            catalog.capabilityNames.reduce(into: Set()) { $0.formUnion($1) })
        return catalog
    }()

    /// Throws ``WasmError/Reason/invalidModule`` naming the first import of `info` that this runtime
    /// cannot satisfy (and how many more there are).
    static func requireProvidedImports(of info: WasmModuleInfo, module name: String) throws(WasmError) {
        let unsatisfied = unsatisfiedImports(of: info)
        guard let (entry, reason) = unsatisfied.first else { return }
        let more = unsatisfied.count > 1 ? " (and \(unsatisfied.count - 1) more)" : ""
        throw .invalidModule(
            "imports \(entry.module).\(entry.name), which is not provided: \(reason)\(more)", module: name)
    }

    /// The imports of `info` that this runtime cannot satisfy, each with the reason.
    public static func unsatisfiedImports(of info: WasmModuleInfo) -> [(WasmModuleInfo.Import, String)] {
        info.imports.compactMap { entry in
            guard entry.module == moduleName else {
                return (entry, "only \(moduleName) functions are provided")
            }
            guard case .function(let signature) = entry.kind else {
                return (entry, "only functions are provided")
            }
            guard let provided = provided[entry.name] else {
                return (entry, "not a WASI preview 1 function")
            }
            if let signature, signature != provided {
                return (entry, "signature \(signature) does not match WASI's \(provided)")
            }
            return nil
        }
    }

    private static func valueType(_ type: ValueType) -> WasmModuleInfo.ValueType {
        switch type {
        case .i32: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        case .v128: .v128
        case .ref: .otherReference
        }
    }
}
