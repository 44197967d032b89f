/// `interceptors[].type: wasm` settings.
public struct WasmInterceptorSettings: InterceptorSettings, Equatable {
    public static let defaultTimeout = Duration.seconds(5)

    /// Path of the `.wasm` (or gzip-compressed) module.
    public var module: String
    public var timeout: Duration
    public var memoryLimit: Int?
    public var env: [String: String]
    public var maxOutputBytes: Int?
    public var engine: String
    public var mode: String
}

extension InterceptorType {
    public static let wasm = InterceptorType(
        name: "wasm",
        configKeys: ["module", "timeout", "memoryLimit", "env", "maxOutputBytes", "engine", "mode"],
        parse: { config, _ in
            guard let module = config["module"].requiredString() else { return nil }
            let timeout = config["timeout"].duration(minimum: .milliseconds(1)) ?? WasmInterceptorSettings.defaultTimeout
            let env = Dictionary(
                (config["env"].stringMap() ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }
            )
            return WasmInterceptorSettings(
                module: module, timeout: timeout, memoryLimit: config["memoryLimit"].byteSize(minimum: 65536),
                env: env, maxOutputBytes: config["maxOutputBytes"].byteSize(minimum: 1),
                engine: config["engine"].oneOf(["auto", "wasmkit", "wasmtime"]) ?? "auto",
                mode: config["mode"].oneOf(["command", "reactor"]) ?? "command"
            )
        },
        makeInterceptor: nil
    )
}
