import Glibc

/// The part of Wasmtime's C API this engine uses, resolved from the shared library at run time.
///
/// Declared here from the documented API (docs.wasmtime.dev, `wasmtime_c_api`), so that building
/// FisoWasm never needs Wasmtime's headers or library. Every handle is an opaque pointer; the
/// few structures passed by value (instances, externs, byte vectors) are laid out below.
struct WasmtimeCAPI: Sendable {
    typealias Handle = OpaquePointer
    typealias OutputCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int
    typealias Finalizer = @convention(c) (UnsafeMutableRawPointer?) -> Void

    // Engine and configuration.
    let configNew: @convention(c) () -> Handle?
    let configEpochInterruptionSet: @convention(c) (Handle, Bool) -> Void
    let engineNewWithConfig: @convention(c) (Handle) -> Handle?
    let engineDelete: @convention(c) (Handle) -> Void
    let engineIncrementEpoch: @convention(c) (Handle) -> Void

    // Modules, linkers and pre-linked instance templates.
    let moduleNew: @convention(c) (Handle, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Handle?>) -> Handle?
    let moduleDelete: @convention(c) (Handle) -> Void
    let moduleSerialize: @convention(c) (Handle, UnsafeMutableRawPointer) -> Handle?
    let moduleDeserialize: @convention(c) (Handle, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Handle?>) -> Handle?
    let linkerNew: @convention(c) (Handle) -> Handle?
    let linkerDelete: @convention(c) (Handle) -> Void
    let linkerDefineWASI: @convention(c) (Handle) -> Handle?
    let linkerInstantiatePre: @convention(c) (Handle, Handle, UnsafeMutablePointer<Handle?>) -> Handle?
    let instancePreDelete: @convention(c) (Handle) -> Void
    let instancePreInstantiate:
        @convention(c) (Handle, Handle, UnsafeMutableRawPointer, UnsafeMutablePointer<Handle?>) -> Handle?

    // Stores.
    let storeNew: @convention(c) (Handle, UnsafeMutableRawPointer?, Finalizer?) -> Handle?
    let storeDelete: @convention(c) (Handle) -> Void
    let storeContext: @convention(c) (Handle) -> Handle?
    let storeLimiter: @convention(c) (Handle, Int64, Int64, Int64, Int64, Int64) -> Void
    let contextSetEpochDeadline: @convention(c) (Handle, UInt64) -> Void
    let contextSetWASI: @convention(c) (Handle, Handle) -> Handle?

    // Instances, functions, memories.
    let instanceExportGet:
        @convention(c) (Handle, UnsafeRawPointer, UnsafePointer<CChar>, Int, UnsafeMutableRawPointer) -> Bool
    let funcCall:
        @convention(c) (
            Handle, UnsafeRawPointer, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int,
            UnsafeMutablePointer<Handle?>
        ) -> Handle?
    let memoryDataSize: @convention(c) (Handle, UnsafeRawPointer) -> Int
    let memoryData: @convention(c) (Handle, UnsafeRawPointer) -> UnsafeMutablePointer<UInt8>?

    // WASI configuration.
    let wasiConfigNew: @convention(c) () -> Handle?
    let wasiConfigDelete: @convention(c) (Handle) -> Void
    let wasiConfigSetArgv: @convention(c) (Handle, Int, UnsafePointer<UnsafePointer<CChar>?>?) -> Bool
    let wasiConfigSetEnv:
        @convention(c) (Handle, Int, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?)
            -> Bool
    let wasiConfigSetStdinBytes: @convention(c) (Handle, UnsafeMutableRawPointer) -> Void
    let wasiConfigSetStdoutCustom: @convention(c) (Handle, OutputCallback, UnsafeMutableRawPointer?, Finalizer?) -> Void
    let wasiConfigSetStderrCustom: @convention(c) (Handle, OutputCallback, UnsafeMutableRawPointer?, Finalizer?) -> Void

    // Errors, traps and byte vectors.
    let errorMessage: @convention(c) (Handle, UnsafeMutableRawPointer) -> Void
    let errorExitStatus: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Bool
    let errorDelete: @convention(c) (Handle) -> Void
    let trapMessage: @convention(c) (Handle, UnsafeMutableRawPointer) -> Void
    let trapCode: @convention(c) (Handle, UnsafeMutablePointer<UInt8>) -> Bool
    let trapDelete: @convention(c) (Handle) -> Void
    let byteVectorNew: @convention(c) (UnsafeMutableRawPointer, Int, UnsafePointer<UInt8>?) -> Void
    let byteVectorDelete: @convention(c) (UnsafeMutableRawPointer) -> Void
    /// Nil when the library lacks the pooling allocator.
    let pooling: PoolingAPI?
    /// Nil when the library lacks host functions (then warm reactor calls never run inline).
    let hostFunctions: HostFunctionAPI?

    /// `wasm_byte_vec_t`: a size and a pointer, owned by whoever the API says.
    struct ByteVector {
        var size: Int = 0
        var data: UnsafeMutablePointer<UInt8>? = nil
    }

    /// `wasmtime_extern_kind_t` values used here.
    static let externKindFunction: UInt8 = 0
    static let externKindMemory: UInt8 = 3
    /// `wasmtime_valkind_t` values used here.
    static let valueKindI32: UInt8 = 0
    static let valueKindI64: UInt8 = 1
    /// `wasmtime_val_t`: a one-byte kind, then (at offset 8) a union of 24 bytes.
    static let valueStorageBytes = 32
    static let valuePayloadOffset = 8
    /// `WASMTIME_TRAP_CODE_INTERRUPT`: the epoch deadline passed.
    static let trapCodeInterrupt: UInt8 = 10
    /// Room for a `wasmtime_instance_t` (16 bytes today) with a margin.
    static let instanceStorageBytes = 32
    /// Room for a `wasmtime_extern_t`: a one-byte kind, then (at offset 8) a union of at most 16
    /// bytes; with a margin.
    static let externStorageBytes = 48
    /// Offset of the union (the function or memory) inside `wasmtime_extern_t`.
    static let externPayloadOffset = 8

    /// Resolves every function from `library` (a `dlopen` handle).
    ///
    /// - Throws: ``WasmtimeUnavailable`` naming the first missing symbol.
    init(library: UnsafeMutableRawPointer, path: String) throws(WasmtimeUnavailable) {
        func symbol<Function>(_ name: String, as type: Function.Type) throws(WasmtimeUnavailable) -> Function {
            guard let address = dlsym(library, name) else {
                throw WasmtimeUnavailable(
                    "\(path) does not export \(name): it is not a Wasmtime C API library, or not "
                        + "the version this engine supports (Wasmtime 50)"
                )
            }
            return unsafeBitCast(address, to: type)
        }
        configNew = try symbol("wasm_config_new", as: type(of: configNew))
        configEpochInterruptionSet = try symbol(
            "wasmtime_config_epoch_interruption_set", as: type(of: configEpochInterruptionSet))
        engineNewWithConfig = try symbol("wasm_engine_new_with_config", as: type(of: engineNewWithConfig))
        engineDelete = try symbol("wasm_engine_delete", as: type(of: engineDelete))
        engineIncrementEpoch = try symbol("wasmtime_engine_increment_epoch", as: type(of: engineIncrementEpoch))
        moduleNew = try symbol("wasmtime_module_new", as: type(of: moduleNew))
        moduleDelete = try symbol("wasmtime_module_delete", as: type(of: moduleDelete))
        moduleSerialize = try symbol("wasmtime_module_serialize", as: type(of: moduleSerialize))
        moduleDeserialize = try symbol("wasmtime_module_deserialize", as: type(of: moduleDeserialize))
        linkerNew = try symbol("wasmtime_linker_new", as: type(of: linkerNew))
        linkerDelete = try symbol("wasmtime_linker_delete", as: type(of: linkerDelete))
        linkerDefineWASI = try symbol("wasmtime_linker_define_wasi", as: type(of: linkerDefineWASI))
        linkerInstantiatePre = try symbol("wasmtime_linker_instantiate_pre", as: type(of: linkerInstantiatePre))
        instancePreDelete = try symbol("wasmtime_instance_pre_delete", as: type(of: instancePreDelete))
        instancePreInstantiate = try symbol(
            "wasmtime_instance_pre_instantiate", as: type(of: instancePreInstantiate))
        storeNew = try symbol("wasmtime_store_new", as: type(of: storeNew))
        storeDelete = try symbol("wasmtime_store_delete", as: type(of: storeDelete))
        storeContext = try symbol("wasmtime_store_context", as: type(of: storeContext))
        storeLimiter = try symbol("wasmtime_store_limiter", as: type(of: storeLimiter))
        contextSetEpochDeadline = try symbol(
            "wasmtime_context_set_epoch_deadline", as: type(of: contextSetEpochDeadline))
        contextSetWASI = try symbol("wasmtime_context_set_wasi", as: type(of: contextSetWASI))
        instanceExportGet = try symbol("wasmtime_instance_export_get", as: type(of: instanceExportGet))
        funcCall = try symbol("wasmtime_func_call", as: type(of: funcCall))
        memoryDataSize = try symbol("wasmtime_memory_data_size", as: type(of: memoryDataSize))
        memoryData = try symbol("wasmtime_memory_data", as: type(of: memoryData))
        wasiConfigNew = try symbol("wasi_config_new", as: type(of: wasiConfigNew))
        wasiConfigDelete = try symbol("wasi_config_delete", as: type(of: wasiConfigDelete))
        wasiConfigSetArgv = try symbol("wasi_config_set_argv", as: type(of: wasiConfigSetArgv))
        wasiConfigSetEnv = try symbol("wasi_config_set_env", as: type(of: wasiConfigSetEnv))
        wasiConfigSetStdinBytes = try symbol("wasi_config_set_stdin_bytes", as: type(of: wasiConfigSetStdinBytes))
        wasiConfigSetStdoutCustom = try symbol(
            "wasi_config_set_stdout_custom", as: type(of: wasiConfigSetStdoutCustom))
        wasiConfigSetStderrCustom = try symbol(
            "wasi_config_set_stderr_custom", as: type(of: wasiConfigSetStderrCustom))
        errorMessage = try symbol("wasmtime_error_message", as: type(of: errorMessage))
        errorExitStatus = try symbol("wasmtime_error_exit_status", as: type(of: errorExitStatus))
        errorDelete = try symbol("wasmtime_error_delete", as: type(of: errorDelete))
        trapMessage = try symbol("wasm_trap_message", as: type(of: trapMessage))
        trapCode = try symbol("wasmtime_trap_code", as: type(of: trapCode))
        trapDelete = try symbol("wasm_trap_delete", as: type(of: trapDelete))
        byteVectorNew = try symbol("wasm_byte_vec_new", as: type(of: byteVectorNew))
        byteVectorDelete = try symbol("wasm_byte_vec_delete", as: type(of: byteVectorDelete))
        pooling = PoolingAPI(library: library)
        hostFunctions = HostFunctionAPI(library: library)
    }

    /// What defining a host function in a linker needs.
    struct HostFunctionAPI: Sendable {
        /// `wasmtime_func_callback_t`: env, caller, arguments, count, results, count; returns a trap.
        typealias Callback =
            @convention(c) (
                UnsafeMutableRawPointer?, Handle?, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int
            ) -> Handle?

        let linkerAllowShadowing: @convention(c) (Handle, Bool) -> Void
        let linkerDefineFunc:
            @convention(c) (
                Handle, UnsafePointer<CChar>, Int, UnsafePointer<CChar>, Int, Handle, Callback,
                UnsafeMutableRawPointer?, Finalizer?
            ) -> Handle?
        let valtypeNew: @convention(c) (UInt8) -> Handle?
        let valtypeVectorNew: @convention(c) (UnsafeMutableRawPointer, Int, UnsafePointer<Handle?>?) -> Void
        let functypeNew: @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Handle?
        let functypeDelete: @convention(c) (Handle) -> Void
        let callerContext: @convention(c) (Handle) -> Handle?
        let contextGetData: @convention(c) (Handle) -> UnsafeMutableRawPointer?
        let trapNew: @convention(c) (UnsafePointer<CChar>, Int) -> Handle?

        init?(library: UnsafeMutableRawPointer) {
            func symbol<Function>(_ name: String, as type: Function.Type) -> Function? {
                dlsym(library, name).map { unsafeBitCast($0, to: type) }
            }
            guard
                let linkerAllowShadowing = symbol(
                    "wasmtime_linker_allow_shadowing", as: (@convention(c) (Handle, Bool) -> Void).self),
                let linkerDefineFunc = symbol(
                    "wasmtime_linker_define_func",
                    as: (@convention(c) (
                        Handle, UnsafePointer<CChar>, Int, UnsafePointer<CChar>, Int, Handle, Callback,
                        UnsafeMutableRawPointer?, Finalizer?
                    ) -> Handle?).self),
                let valtypeNew = symbol("wasm_valtype_new", as: (@convention(c) (UInt8) -> Handle?).self),
                let valtypeVectorNew = symbol(
                    "wasm_valtype_vec_new",
                    as: (@convention(c) (UnsafeMutableRawPointer, Int, UnsafePointer<Handle?>?) -> Void).self),
                let functypeNew = symbol(
                    "wasm_functype_new",
                    as: (@convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Handle?).self),
                let functypeDelete = symbol("wasm_functype_delete", as: (@convention(c) (Handle) -> Void).self),
                let callerContext = symbol("wasmtime_caller_context", as: (@convention(c) (Handle) -> Handle?).self),
                let contextGetData = symbol(
                    "wasmtime_context_get_data", as: (@convention(c) (Handle) -> UnsafeMutableRawPointer?).self),
                let trapNew = symbol(
                    "wasmtime_trap_new", as: (@convention(c) (UnsafePointer<CChar>, Int) -> Handle?).self)
            else { return nil }
            self.linkerAllowShadowing = linkerAllowShadowing
            self.linkerDefineFunc = linkerDefineFunc
            self.valtypeNew = valtypeNew
            self.valtypeVectorNew = valtypeVectorNew
            self.functypeNew = functypeNew
            self.functypeDelete = functypeDelete
            self.callerContext = callerContext
            self.contextGetData = contextGetData
            self.trapNew = trapNew
        }
    }

    /// The pooling allocator's part of the API (Wasmtime 50 has it; a build without it is still
    /// usable, with the default on-demand allocator).
    struct PoolingAPI: Sendable {
        let configNew: @convention(c) () -> Handle?
        let configDelete: @convention(c) (Handle) -> Void
        let totalCoreInstancesSet: @convention(c) (Handle, UInt32) -> Void
        let totalMemoriesSet: @convention(c) (Handle, UInt32) -> Void
        let totalTablesSet: @convention(c) (Handle, UInt32) -> Void
        let maxMemorySizeSet: @convention(c) (Handle, Int) -> Void
        let tableElementsSet: @convention(c) (Handle, Int) -> Void
        let maxCoreInstanceSizeSet: @convention(c) (Handle, Int) -> Void
        let linearMemoryKeepResidentSet: @convention(c) (Handle, Int) -> Void
        let tableKeepResidentSet: @convention(c) (Handle, Int) -> Void
        let maxUnusedWarmSlotsSet: @convention(c) (Handle, UInt32) -> Void
        let strategySet: @convention(c) (Handle, Handle) -> Void
        let memoryInitCOWSet: @convention(c) (Handle, Bool) -> Void

        init?(library: UnsafeMutableRawPointer) {
            func symbol<Function>(_ name: String, as type: Function.Type) -> Function? {
                dlsym(library, name).map { unsafeBitCast($0, to: type) }
            }
            guard
                let configNew = symbol(
                    "wasmtime_pooling_allocation_config_new", as: (@convention(c) () -> Handle?).self),
                let configDelete = symbol(
                    "wasmtime_pooling_allocation_config_delete", as: (@convention(c) (Handle) -> Void).self),
                let totalCoreInstancesSet = symbol(
                    "wasmtime_pooling_allocation_config_total_core_instances_set",
                    as: (@convention(c) (Handle, UInt32) -> Void).self),
                let totalMemoriesSet = symbol(
                    "wasmtime_pooling_allocation_config_total_memories_set",
                    as: (@convention(c) (Handle, UInt32) -> Void).self),
                let totalTablesSet = symbol(
                    "wasmtime_pooling_allocation_config_total_tables_set",
                    as: (@convention(c) (Handle, UInt32) -> Void).self),
                let maxMemorySizeSet = symbol(
                    "wasmtime_pooling_allocation_config_max_memory_size_set",
                    as: (@convention(c) (Handle, Int) -> Void).self),
                let tableElementsSet = symbol(
                    "wasmtime_pooling_allocation_config_table_elements_set",
                    as: (@convention(c) (Handle, Int) -> Void).self),
                let maxCoreInstanceSizeSet = symbol(
                    "wasmtime_pooling_allocation_config_max_core_instance_size_set",
                    as: (@convention(c) (Handle, Int) -> Void).self),
                let linearMemoryKeepResidentSet = symbol(
                    "wasmtime_pooling_allocation_config_linear_memory_keep_resident_set",
                    as: (@convention(c) (Handle, Int) -> Void).self),
                let tableKeepResidentSet = symbol(
                    "wasmtime_pooling_allocation_config_table_keep_resident_set",
                    as: (@convention(c) (Handle, Int) -> Void).self),
                let maxUnusedWarmSlotsSet = symbol(
                    "wasmtime_pooling_allocation_config_max_unused_warm_slots_set",
                    as: (@convention(c) (Handle, UInt32) -> Void).self),
                let strategySet = symbol(
                    "wasmtime_pooling_allocation_strategy_set", as: (@convention(c) (Handle, Handle) -> Void).self),
                let memoryInitCOWSet = symbol(
                    "wasmtime_config_memory_init_cow_set", as: (@convention(c) (Handle, Bool) -> Void).self)
            else { return nil }
            self.configNew = configNew
            self.configDelete = configDelete
            self.totalCoreInstancesSet = totalCoreInstancesSet
            self.totalMemoriesSet = totalMemoriesSet
            self.totalTablesSet = totalTablesSet
            self.maxMemorySizeSet = maxMemorySizeSet
            self.tableElementsSet = tableElementsSet
            self.maxCoreInstanceSizeSet = maxCoreInstanceSizeSet
            self.linearMemoryKeepResidentSet = linearMemoryKeepResidentSet
            self.tableKeepResidentSet = tableKeepResidentSet
            self.maxUnusedWarmSlotsSet = maxUnusedWarmSlotsSet
            self.strategySet = strategySet
            self.memoryInitCOWSet = memoryInitCOWSet
        }
    }

    /// Takes an error's message and frees the error.
    func consume(error: Handle) -> (message: String, exitStatus: Int32?) {
        var status: Int32 = 0
        let exited = errorExitStatus(error, &status)
        var vector = ByteVector()
        errorMessage(error, &vector)
        let message = Self.text(of: vector)
        byteVectorDelete(&vector)
        errorDelete(error)
        return (message, exited ? status : nil)
    }

    /// Takes a trap's message and code and frees the trap.
    func consume(trap: Handle) -> (message: String, code: UInt8?) {
        var code: UInt8 = 0
        let hasCode = trapCode(trap, &code)
        var vector = ByteVector()
        trapMessage(trap, &vector)
        let message = Self.text(of: vector)
        byteVectorDelete(&vector)
        trapDelete(trap)
        return (message, hasCode ? code : nil)
    }

    /// A byte vector's text, without the terminating NUL some messages carry.
    static func text(of vector: ByteVector) -> String {
        guard let data = vector.data, vector.size > 0 else { return "" }
        var count = vector.size
        while count > 0, data[count - 1] == 0 { count -= 1 }
        return String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
    }
}

/// The Wasmtime library could not be loaded; ``description`` says why and how to get it.
public struct WasmtimeUnavailable: Error, Sendable, CustomStringConvertible {
    /// Why the library could not be used.
    public let reason: String

    init(_ reason: String) {
        self.reason = reason
    }

    /// How to get the library, for error messages.
    public static let installHint =
        "install the Wasmtime 50 C API (lib/libwasmtime.so of the wasmtime-v50.x-<arch>-linux-c-api release from "
        + "https://github.com/bytecodealliance/wasmtime/releases) as /usr/local/lib/libwasmtime.so or set "
        + "FISO_WASMTIME_LIB to its path; for development, FISO_WASMTIME_SEARCH_PYTHON=1 also finds the library of "
        + "pip install wasmtime==50.*"

    public var description: String { "Wasmtime is not available: \(reason); \(Self.installHint)" }
}
