/// What a flow file's `config` readers may consult besides the mapping itself.
public struct ConfigContext {
    /// Clusters the flow may name: inline `kafka.clusters` over the shared cluster file.
    public var kafkaClusters: [String: KafkaClusterDefinition]
    /// Where the shared cluster file was looked for, for error messages.
    public var kafkaConfigPath: String

    public init(kafkaClusters: [String: KafkaClusterDefinition] = [:], kafkaConfigPath: String = "") {
        self.kafkaClusters = kafkaClusters
        self.kafkaConfigPath = kafkaConfigPath
    }

    /// Checks that `node` names a known Kafka cluster; records a problem otherwise.
    public func requireKafkaCluster(_ node: ConfigNode) -> String? {
        guard let name = node.requiredString() else { return nil }
        guard kafkaClusters[name] != nil else {
            let known = kafkaClusters.keys.sorted()
            node.problem(
                "unknown Kafka cluster \"\(name)\": define it under kafka.clusters in the flow or in "
                    + "\(kafkaConfigPath.isEmpty ? "the shared cluster file" : kafkaConfigPath)"
                    + (known.isEmpty ? " (no clusters are defined)" : " (known: \(known.joined(separator: ", ")))")
            )
            return nil
        }
        return name
    }
}

/// A source type a flow can name in `source.type`.
public struct SourceType: Sendable {
    public let name: String
    public let configKeys: [String]
    /// Variables this source adds for the flow's expressions (e.g. `kafka`).
    public let expressionVariables: [String]
    let parse: @Sendable (ConfigMapping, ConfigContext) -> (any SourceSettings)?
    /// Nil while the type's settings are validated but its runtime is not in this build.
    let makeSource: (@Sendable (any SourceSettings, FlowBuildContext) async throws -> any EventSource)?

    public init(
        name: String, configKeys: [String], expressionVariables: [String] = [],
        parse: @escaping @Sendable (ConfigMapping, ConfigContext) -> (any SourceSettings)?,
        makeSource: (@Sendable (any SourceSettings, FlowBuildContext) async throws -> any EventSource)?
    ) {
        self.name = name
        self.configKeys = configKeys
        self.expressionVariables = expressionVariables
        self.parse = parse
        self.makeSource = makeSource
    }
}

/// A sink type a flow can name in `sink.type`.
public struct SinkType: Sendable {
    public let name: String
    public let configKeys: [String]
    let parse: @Sendable (ConfigMapping, ConfigContext) -> (any SinkSettings)?
    let makeSink: (@Sendable (any SinkSettings, FlowBuildContext) async throws -> any EventSink)?

    public init(
        name: String, configKeys: [String],
        parse: @escaping @Sendable (ConfigMapping, ConfigContext) -> (any SinkSettings)?,
        makeSink: (@Sendable (any SinkSettings, FlowBuildContext) async throws -> any EventSink)?
    ) {
        self.name = name
        self.configKeys = configKeys
        self.parse = parse
        self.makeSink = makeSink
    }
}

/// An interceptor type a flow can name in `interceptors[].type`.
public struct InterceptorType: Sendable {
    public let name: String
    public let configKeys: [String]
    let parse: @Sendable (ConfigMapping, ConfigContext) -> (any InterceptorSettings)?
    let makeInterceptor: (@Sendable (any InterceptorSettings, FlowBuildContext) async throws -> any Interceptor)?

    public init(
        name: String, configKeys: [String],
        parse: @escaping @Sendable (ConfigMapping, ConfigContext) -> (any InterceptorSettings)?,
        makeInterceptor: (@Sendable (any InterceptorSettings, FlowBuildContext) async throws -> any Interceptor)?
    ) {
        self.name = name
        self.configKeys = configKeys
        self.parse = parse
        self.makeInterceptor = makeInterceptor
    }
}

/// Every component type the runtime knows, keyed by the `type` string of flow files. Adding a type
/// means adding its folder under Sources/, Sinks/ or Interceptors/ and one entry here.
public struct ComponentRegistry: Sendable {
    public var sources: [SourceType]
    public var sinks: [SinkType]
    public var interceptors: [InterceptorType]

    public init(sources: [SourceType], sinks: [SinkType], interceptors: [InterceptorType]) {
        self.sources = sources
        self.sinks = sinks
        self.interceptors = interceptors
    }

    public static let standard = ComponentRegistry(
        sources: [.http, .kafka, .grpc],
        sinks: [.http, .stdout, .kafka, .grpc],
        interceptors: [.wasm]
    )

    func source(named name: String) -> SourceType? { sources.first { $0.name == name } }
    func sink(named name: String) -> SinkType? { sinks.first { $0.name == name } }
    func interceptor(named name: String) -> InterceptorType? { interceptors.first { $0.name == name } }
}
