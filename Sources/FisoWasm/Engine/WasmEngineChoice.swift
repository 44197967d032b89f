/// Which engine runs a flow's modules: the `engine:` setting of a `wasm` interceptor and the
/// `--engine` option of `fiso-flow wasm run` / `wasm bench`.
public enum WasmEngineChoice: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Wasmtime when its library loads, else WasmKit.
    case auto
    /// The WasmKit interpreter (always available).
    case wasmkit
    /// The Wasmtime JIT (needs the Wasmtime C API library; see docs/wasm.md).
    case wasmtime

    public var description: String { rawValue }

    /// The engine this choice stands for: the process-wide ``WasmKitEngine/shared`` or
    /// ``WasmtimeEngine/shared()``.
    ///
    /// - Throws: ``WasmtimeUnavailable`` for ``wasmtime`` when the library cannot be loaded
    ///   (its description says how to get it); ``auto`` never throws.
    public func engine() throws(WasmtimeUnavailable) -> any WasmEngine {
        switch self {
        case .wasmkit:
            return WasmKitEngine.shared
        case .wasmtime:
            return try WasmtimeEngine.shared()
        case .auto:
            return (try? WasmtimeEngine.shared()) ?? WasmKitEngine.shared
        }
    }

    /// Why ``auto`` resolves as it does, for the start-up log: e.g. `wasmtime (library
    /// /usr/lib/libwasmtime.so)` or `wasmkit (Wasmtime is not available: …)`.
    public var resolutionNote: String {
        switch self {
        case .wasmkit:
            return "wasmkit"
        case .wasmtime, .auto:
            do {
                let engine = try WasmtimeEngine.shared()
                return "wasmtime (library \(engine.libraryPath))"
            } catch {
                return self == .auto ? "wasmkit (\(error))" : "unavailable: \(error)"
            }
        }
    }
}
