import FisoJSON
import FisoWasm
import Logging
import NIOConcurrencyHelpers
import Prometheus

/// `interceptors[].type: wasm` settings.
public struct WasmInterceptorSettings: InterceptorSettings, Equatable {
    /// Path of the `.wasm` (or gzip-compressed) module.
    public var module: String
    public var configuration: WasmModuleConfiguration
    public var engine: WasmEngineChoice
    /// The Go original's `runtime` (`wazero`, `wasmer`): accepted so its flow files run, and
    /// ignored — the module runs on `engine`.
    public var ignoredRuntime: String? = nil
}

extension WasmInterceptorSettings {
    public static let typeName = "wasm"
    public static let configKeys = [
        "module", "timeout", "memoryLimit", "env", "maxOutputBytes", "concurrency", "engine", "mode",
        "maxCallsPerInstance", "recycleMemoryAbove", "runtime",
    ]

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        guard let module = config["module"].requiredString() else { return nil }
        var configuration = WasmModuleConfiguration()
        if let timeout = config["timeout"].duration(minimum: .milliseconds(1)) { configuration.timeout = timeout }
        if let limit = config["memoryLimit"].byteSize(minimum: 65536) { configuration.memoryLimitBytes = limit }
        if let limit = config["maxOutputBytes"].byteSize(minimum: 1) { configuration.maxOutputBytes = limit }
        if let limit = config["concurrency"].int(range: 1...1024) { configuration.maxConcurrency = limit }
        configuration.environment = Dictionary(
            (config["env"].stringMap() ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }
        )
        let engine =
            config["engine"].oneOf(WasmEngineChoice.allCases.map(\.rawValue)).flatMap(WasmEngineChoice.init)
            ?? .auto
        if engine == .wasmtime {
            // The library is a run-time dependency: checked on the machine that validates.
            do {
                _ = try engine.engine()
            } catch {
                config["engine"].problem("\(error)")
            }
        }
        if let mode = config["mode"].oneOf(WasmExecutionMode.all.map(\.name)).flatMap(
            WasmExecutionMode.init(named:))
        {
            configuration.mode = mode
        }
        if let calls = config["maxCallsPerInstance"].int(range: 1...100_000_000) {
            configuration.maxCallsPerInstance = calls
        }
        if let bound = config["recycleMemoryAbove"].byteSize(minimum: 65536) {
            configuration.recycleMemoryBytes = bound
        }
        if configuration.mode != .reactor {
            for key in ["maxCallsPerInstance", "recycleMemoryAbove"] where !config[key].isMissing {
                config[key].problem("applies only to mode: reactor (command mode uses a fresh instance per event)")
            }
        }
        for problem in configuration.problems { config.problem(problem) }
        let runtime = config["runtime"].oneOf(["wazero", "wasmer"])
        return WasmInterceptorSettings(
            module: module, configuration: configuration, engine: engine, ignoredRuntime: runtime)
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any Interceptor {
        if let ignoredRuntime {
            context.logger.notice(
                "interceptor setting runtime is ignored: fiso-flow runs WASI modules on its own engines",
                metadata: [
                    "runtime": .string(ignoredRuntime), "engine": .string(engine.rawValue), "module": .string(module),
                ])
        }
        return try await WasmInterceptor.load(self, context: context)
    }
}

/// Runs a WASI module per event with the guide's JSON stdin/stdout ABI. The module's headers
/// replace the event's headers; failures are classified (`reason` label) and counted per module.
final class WasmInterceptor: Interceptor {
    let transformer: WasmTransformer
    let metrics: FlowMetrics
    let duration: DurationHistogram
    let logger: Logger
    /// The last reload failure logged, so a broken file is reported once, not on every check.
    private let lastReloadFailure = NIOLockedValueBox<String?>(nil)

    var name: String { transformer.name }

    private init(transformer: WasmTransformer, metrics: FlowMetrics, logger: Logger) {
        self.transformer = transformer
        self.metrics = metrics
        self.duration = metrics.interceptorDuration(module: transformer.name)
        var logger = logger
        logger[metadataKey: "module"] = .string(transformer.name)
        self.logger = logger
    }

    static func load(_ settings: WasmInterceptorSettings, context: FlowBuildContext) async throws -> WasmInterceptor {
        let engine: any WasmEngine
        do {
            engine = try settings.engine.engine()
        } catch {
            context.logger.error("wasm engine unavailable", metadata: ["error": .string("\(error)")])
            throw error
        }
        do {
            let transformer = try await WasmTransformer.load(
                path: settings.module, configuration: settings.configuration, engine: engine
            )
            context.logger.info(
                "wasm module loaded",
                metadata: [
                    "module": .string(transformer.name), "engine": .string(transformer.engineName),
                    "engine_choice": .string(settings.engine.rawValue),
                    "path": .string(settings.module),
                    "compile_ms": .string(formatMilliseconds(transformer.version.compileDuration)),
                ]
            )
            return WasmInterceptor(transformer: transformer, metrics: context.metrics, logger: context.logger)
        } catch {
            // The guide's troubleshooting line: `ERROR wasm module not found path=/etc/fiso/modules/x.wasm`.
            context.logger.error(
                "\(error.message)", metadata: ["path": .string(error.path ?? settings.module)]
            )
            throw error
        }
    }

    func intercept(_ event: Event) async throws -> Event {
        let input = WasmTransformInput(
            payload: event.payload,
            headers: WasmHeaders(event.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
        )
        do {
            let output = try await transformer.transform(input)
            duration.record(output.timing.total)
            var event = event
            event.payload = output.payload
            if output.moduleReturnedHeaders {
                event.headers = EventHeaders(output.headers.map { ($0.key, $0.value) })
            }
            return event
        } catch let error as WasmError {
            if let timing = error.timing { duration.record(timing.total) }
            var metadata: Logger.Metadata = [
                "error": .string(error.message), "reason": .string(error.reason.rawValue),
                "correlation_id": .string(event.correlationID),
            ]
            if !error.stderr.isEmpty { metadata["stderr"] = .string(error.stderr) }
            logger.error("wasm module execution failed", metadata: metadata)
            throw InterceptorFailure(interceptor: name, reason: error.reason.rawValue, message: error.message)
        }
    }

    /// Swaps in a changed module file; counted in `fiso_flow_module_reloads_total`.
    func checkForUpdates() async {
        do {
            switch try await transformer.reload() {
            case .unchanged:
                break
            case .reloaded(let from, let to):
                lastReloadFailure.withLockedValue { $0 = nil }
                metrics.recordModuleReload(module: name, success: true)
                logger.info(
                    "wasm module reloaded",
                    metadata: [
                        "from": .string(String(from.contentHash.prefix(12))),
                        "to": .string(String(to.contentHash.prefix(12))),
                        "compile_ms": .string(formatMilliseconds(to.compileDuration)),
                    ]
                )
            }
        } catch {
            let isNew = lastReloadFailure.withLockedValue { last in
                defer { last = error.description }
                return last != error.description
            }
            guard isNew else { return }
            metrics.recordModuleReload(module: name, success: false)
            logger.error(
                "wasm module reload failed; the previous version stays in service",
                metadata: ["error": .string(error.description)]
            )
        }
    }

    func shutdown() async {}
}

private func formatMilliseconds(_ duration: Duration) -> String {
    let milliseconds = duration.seconds * 1000
    return String(Int(milliseconds.rounded()))
}
