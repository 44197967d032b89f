import FisoQuantities

/// Process-level settings of the runtime, from flags and environment variables.
public struct RuntimeConfiguration: Sendable {
    public static let defaultConfigDirectory = "/etc/fiso/flows"
    public static let defaultMetricsAddress = ListenAddress(host: "0.0.0.0", port: 9090)
    public static let defaultShutdownTimeout = Duration.seconds(10)
    public static let defaultReloadInterval = Duration.seconds(1)

    /// `FISO_CONFIG_DIR` / `--config`.
    public var configDirectory: String
    /// `FISO_KAFKA_CONFIG`.
    public var kafkaConfigPath: String
    /// `FISO_METRICS_ADDR` / `--metrics-addr`.
    public var metricsAddress: ListenAddress
    /// `FISO_SHUTDOWN_TIMEOUT`: how long a drain may take before events in flight are abandoned.
    public var shutdownTimeout: Duration
    /// `FISO_RELOAD_INTERVAL`: how often flow files (and modules) are checked for changes.
    public var reloadInterval: Duration
    public var registry: ComponentRegistry

    public init(
        configDirectory: String = Self.defaultConfigDirectory,
        kafkaConfigPath: String = KafkaClusterFile.defaultPath,
        metricsAddress: ListenAddress = Self.defaultMetricsAddress,
        shutdownTimeout: Duration = Self.defaultShutdownTimeout,
        reloadInterval: Duration = Self.defaultReloadInterval,
        registry: ComponentRegistry = .standard
    ) {
        self.configDirectory = configDirectory
        self.kafkaConfigPath = kafkaConfigPath
        self.metricsAddress = metricsAddress
        self.shutdownTimeout = shutdownTimeout
        self.reloadInterval = reloadInterval
        self.registry = registry
    }

    /// The loader that validates flow files the way this runtime will run them.
    public var loader: FlowLoader {
        FlowLoader(
            registry: registry, kafkaConfigPath: kafkaConfigPath, reservedAddresses: [metricsAddress]
        )
    }

    /// Reads `FISO_*` variables over the defaults; a malformed value is an error naming the variable.
    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigError) -> RuntimeConfiguration {
        var configuration = RuntimeConfiguration()
        var problems: [ConfigProblem] = []
        func problem(_ variable: String, _ message: String) {
            problems.append(ConfigProblem(file: nil, path: variable, message: message))
        }
        if let directory = environment["FISO_CONFIG_DIR"], !directory.isEmpty {
            configuration.configDirectory = directory
        }
        if let path = environment["FISO_KAFKA_CONFIG"], !path.isEmpty {
            configuration.kafkaConfigPath = path
        }
        if let text = environment["FISO_METRICS_ADDR"], !text.isEmpty {
            do {
                configuration.metricsAddress = try ListenAddress(parsing: text)
            } catch {
                problem("FISO_METRICS_ADDR", "\(error)")
            }
        }
        for (variable, keyPath) in [
            ("FISO_SHUTDOWN_TIMEOUT", \RuntimeConfiguration.shutdownTimeout),
            ("FISO_RELOAD_INTERVAL", \RuntimeConfiguration.reloadInterval),
        ] {
            guard let text = environment[variable], !text.isEmpty else { continue }
            do {
                let value = try GoDuration.parse(text)
                if value <= .zero {
                    problem(variable, "must be positive, got \(text)")
                } else {
                    configuration[keyPath: keyPath] = value
                }
            } catch {
                problem(variable, "\(error)")
            }
        }
        if !problems.isEmpty { throw ConfigError(problems: problems) }
        return configuration
    }
}
