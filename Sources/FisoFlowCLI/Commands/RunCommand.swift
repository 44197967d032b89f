import ArgumentParser
import FisoFlow
import Foundation
import Logging
import Metrics
import Prometheus

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every flow of the configuration directory until SIGTERM or SIGINT.",
        discussion: """
            Environment: FISO_CONFIG_DIR, FISO_METRICS_ADDR, FISO_KAFKA_CONFIG, FISO_SHUTDOWN_TIMEOUT, \
            FISO_RELOAD_INTERVAL, FISO_LOG_LEVEL, LOG_FORMAT (text or json), FISO_WASMTIME_LIB (the Wasmtime \
            library for engine wasmtime/auto), FISO_WASM_CACHE_DIR (Wasmtime's compiled-code cache). Flags win \
            over variables.
            """
    )

    @Option(name: .long, help: "Flow directory (overrides FISO_CONFIG_DIR; default /etc/fiso/flows).")
    var config: String?

    @Option(name: .long, help: "Metrics and health address, [host]:port (overrides FISO_METRICS_ADDR; default :9090).")
    var metricsAddr: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let logger = try logging.bootstrap(environment: environment)
        var configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration.fromEnvironment(environment)
            if let metricsAddr { configuration.metricsAddress = try ListenAddress(parsing: metricsAddr) }
        } catch {
            throw ValidationError("\(error)")
        }
        if let config { configuration.configDirectory = config }

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let server = FisoFlowServer(
            configuration: configuration, metricsRegistry: registry, logger: logger,
            handlesShutdownSignals: true
        )
        logger.info(
            "starting fiso-flow",
            metadata: [
                "config": .string(configuration.configDirectory),
                "metrics_addr": .string(configuration.metricsAddress.description),
            ]
        )
        do {
            try await server.run()
        } catch let error as FlowRuntime.StartupError {
            logger.critical("fiso-flow cannot start", metadata: ["reason": .string(error.description)])
            FileHandle.standardError.write(Data("fiso-flow: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `--log-level` and the logging environment variables, shared by the commands that log.
struct LoggingOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "trace, debug, info, notice, warning, error or critical (overrides FISO_LOG_LEVEL; default info).")
    var logLevel: String?

    /// Sets up process-wide logging from the flag, FISO_LOG_LEVEL and LOG_FORMAT.
    func bootstrap(environment: [String: String]) throws -> Logger {
        let levelText = logLevel ?? environment["FISO_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(userText: levelText) else {
            throw ValidationError(
                "unknown log level \"\(levelText)\" (use trace, debug, info, notice, warning, error, critical)")
        }
        let formatText = (environment["LOG_FORMAT"] ?? "text").lowercased()
        guard let format = LogFormat(rawValue: formatText) else {
            throw ValidationError("LOG_FORMAT must be text or json, got \"\(formatText)\"")
        }
        LoggingSetup.bootstrap(format: format, level: level)
        return Logger(label: "fiso-flow")
    }
}
