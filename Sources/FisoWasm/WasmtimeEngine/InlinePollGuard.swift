/// A second WASI linker whose `poll_oneoff` never waits, for the instances that may run inline
/// (see ``WasmInlineCalls``).
///
/// Epoch interruption stops a module in its own code, not inside a host function, and WASI's
/// `poll_oneoff` sleeps for as long as the module asks (standard Go calls it to sleep). In this
/// linker `poll_oneoff` instead marks the store ``blockedMark`` and traps. A module's instances
/// (fresh command instances, warm reactor instances) are made from it while the module has not
/// been demoted (see ``WasmInlineState``); a call stopped in `poll_oneoff` runs again on an instance
/// from the ordinary linker, where `poll_oneoff` is Wasmtime's own. So every module behaves as
/// WASI says; modules that do not poll get inline calls.
///
/// A store takes part by having a pointer to one mark byte as its data.
enum InlinePollGuard {
    /// The store's mark byte: nothing happened.
    static let clearMark: UInt8 = 0
    /// The module called `poll_oneoff`, and was stopped.
    static let blockedMark: UInt8 = 2

    private static let wasiModule = "wasi_snapshot_preview1"
    private static let pollName = "poll_oneoff"

    /// A linker with WASI whose `poll_oneoff` marks and traps; nil when the library cannot define
    /// host functions (then no call runs inline).
    static func makeLinker(engine: EngineHandle, api: WasmtimeCAPI) -> LinkerHandle? {
        guard let host = api.hostFunctions, let raw = api.linkerNew(engine.raw) else { return nil }
        let linker = LinkerHandle(api: api, raw: raw, engine: engine)
        if let error = api.linkerDefineWASI(raw) {
            _ = api.consume(error: error)
            return nil
        }
        guard let type = pollType(host) else { return nil }
        defer { host.functypeDelete(type) }
        let refuse: WasmtimeCAPI.HostFunctionAPI.Callback = { environment, caller, _, _, _, _ in
            guard let environment, let caller else { return nil }
            let host = environment.assumingMemoryBound(to: WasmtimeCAPI.HostFunctionAPI.self).pointee
            if let context = host.callerContext(caller),
                let mark = host.contextGetData(context)?.assumingMemoryBound(to: UInt8.self)
            {
                mark.pointee = InlinePollGuard.blockedMark
            }
            let message = "poll_oneoff is not available to an instance that may run inline"
            return message.withCString { host.trapNew($0, message.utf8.count) }
        }
        let release: WasmtimeCAPI.Finalizer = { environment in
            environment?.assumingMemoryBound(to: WasmtimeCAPI.HostFunctionAPI.self).deinitialize(count: 1)
                .deallocate()
        }
        let environment = UnsafeMutablePointer<WasmtimeCAPI.HostFunctionAPI>.allocate(capacity: 1)
        environment.initialize(to: host)
        host.linkerAllowShadowing(raw, true)
        let error = wasiModule.withCString { module in
            pollName.withCString { name in
                host.linkerDefineFunc(
                    raw, module, wasiModule.utf8.count, name, pollName.utf8.count, type, refuse, environment, release)
            }
        }
        if let error {
            _ = api.consume(error: error)
            return nil  // the environment may leak here: once per process, at start-up
        }
        return linker
    }

    /// `(i32, i32, i32, i32) -> i32`, owned by the caller.
    private static func pollType(_ host: WasmtimeCAPI.HostFunctionAPI) -> WasmtimeCAPI.Handle? {
        let i32: UInt8 = 0  // WASM_I32
        let vectorBytes = 16  // wasm_valtype_vec_t: size, data
        let parameters = UnsafeMutableRawPointer.allocate(byteCount: vectorBytes, alignment: 8)
        let results = UnsafeMutableRawPointer.allocate(byteCount: vectorBytes, alignment: 8)
        defer {
            parameters.deallocate()
            results.deallocate()
        }
        let parameterTypes = (0..<4).map { _ in host.valtypeNew(i32) }
        let resultTypes = [host.valtypeNew(i32)]
        guard !parameterTypes.contains(nil), !resultTypes.contains(nil) else { return nil }
        parameterTypes.withUnsafeBufferPointer { host.valtypeVectorNew(parameters, 4, $0.baseAddress) }
        resultTypes.withUnsafeBufferPointer { host.valtypeVectorNew(results, 1, $0.baseAddress) }
        return host.functypeNew(parameters, results)  // takes both vectors
    }
}
