/// The checks every engine makes before compiling a command-mode module, so that both engines
/// refuse the same modules with the same messages: a readable binary, an exported
/// `_start () -> ()`, only WASI imports. (Reactor mode: ``ReactorABI/check(info:name:)``.)
enum WasmCommandChecks {
    static func check(info: WasmModuleInfo, name: String) throws(WasmError) {
        guard case .function(let start) = info.export(named: "_start")?.kind else {
            throw .invalidModule(
                "not a WASI command: no exported _start function (build it as an executable, e.g. "
                    + "GOOS=wasip1 GOARCH=wasm, or --target=wasm32-wasi without -mexec-model=reactor)",
                module: name
            )
        }
        if let start, !start.parameters.isEmpty || !start.results.isEmpty {
            throw .invalidModule("_start must take and return nothing, but its type is \(start)", module: name)
        }
        try WASIFunctions.requireProvidedImports(of: info, module: name)
    }

    /// The checks of `mode` (command or reactor) on a module already read.
    static func check(info: WasmModuleInfo, mode: WasmExecutionMode, name: String) throws(WasmError) {
        if mode == .reactor {
            _ = try ReactorABI.check(info: info, name: name)
        } else {
            try check(info: info, name: name)
        }
    }

    /// The module's structure; `invalid_module` when `bytes` is not a readable module (both modes).
    static func read(_ bytes: [UInt8], name: String) throws(WasmError) -> WasmModuleInfo {
        do {
            return try WasmModuleInfo(reading: bytes)
        } catch {
            throw .invalidModule(error.description, module: name)
        }
    }
}
