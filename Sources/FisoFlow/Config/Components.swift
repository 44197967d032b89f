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

    /// The cluster of a source or sink `config`: its `cluster`, or — as the Go original also
    /// allows — its own `brokers` list. Records a problem when neither (or both) is there.
    public func kafkaCluster(of config: ConfigMapping) -> String? {
        let brokersNode = config["brokers"]
        guard !brokersNode.isMissing else { return requireKafkaCluster(config["cluster"]) }
        if !config["cluster"].isMissing {
            config["brokers"].problem("set cluster or brokers, not both")
            return nil
        }
        guard let brokers = brokersNode.stringList(), !brokers.isEmpty else {
            brokersNode.problem("must list the bootstrap brokers as host:port")
            return nil
        }
        for broker in brokers where !KafkaClusterFile.isHostPort(broker) {
            brokersNode.problem("\"\(broker)\" is not host:port")
            return nil
        }
        return KafkaClusterFile.inlineClusterName(brokers)
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

/// The settings of one component type (a source, sink or interceptor): how flow files spell it,
/// how its `config` block is read, and how the component is built. Each type is one settings
/// struct in its own folder plus one line in ``ComponentRegistry/standard``; code that handles
/// every type asks the settings (``SourceSettings/listener``, ``SourceSettings/kafkaCluster`` …)
/// instead of testing for concrete types.
public protocol ComponentSettings: Sendable {
    associatedtype Component
    /// The `type` string flow files use.
    static var typeName: String { get }
    /// The keys its `config` block may have; others are reported as unknown.
    static var configKeys: [String] { get }
    /// Reads the `config` block, recording problems on the nodes; nil when it cannot be used.
    static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self?
    /// Builds the component for a flow.
    func makeComponent(context: FlowBuildContext) async throws -> Component
}

/// Settings of a source type.
public protocol SourceSettings: ComponentSettings where Component == any EventSource {
    /// Variables this source adds for the flow's expressions (e.g. `kafka`).
    static var expressionVariables: [String] { get }
    /// Whether flows with this source type may share a listener with each other (their claims
    /// are ``ListenerClaim/Sharing/routed(by:value:)``); named in conflict messages.
    static var sharesListeners: Bool { get }
    /// The flow admits at most this many events at once; more are refused as `OVERLOADED`.
    var maxEventsInFlight: Int { get }
    /// The address the source listens on, so flows never collide; nil for sources that do not listen.
    var listener: ListenerClaim? { get }
    /// The Kafka cluster the source reads from, for Kafka sources (their dead letters and
    /// transactions go to that cluster).
    var kafkaCluster: String? { get }
}

extension SourceSettings {
    public static var expressionVariables: [String] { [] }
    public static var sharesListeners: Bool { false }
    public var maxEventsInFlight: Int { .max }
    public var listener: ListenerClaim? { nil }
    public var kafkaCluster: String? { nil }
}

/// Settings of a sink type.
public protocol SinkSettings: ComponentSettings where Component == any EventSink {
    /// Whether the sink can write CloudEvents in binary mode (`cloudevents.mode: binary`).
    static var writesBinaryCloudEvents: Bool { get }
    /// The Kafka cluster the sink writes to, for Kafka sinks.
    var kafkaCluster: String? { get }
}

extension SinkSettings {
    public static var writesBinaryCloudEvents: Bool { false }
    public var kafkaCluster: String? { nil }
}

/// Settings of an interceptor type.
public protocol InterceptorSettings: ComponentSettings where Component == any Interceptor {}

/// The address a listening source binds, and how it may share that address with other flows.
public struct ListenerClaim: Sendable, Equatable {
    public enum Sharing: Sendable, Equatable {
        /// No other flow may listen on the port.
        case exclusive
        /// Flows of the same source type share the listener, told apart by a routing key (for
        /// HTTP: the path), which must differ between them.
        case routed(by: String, value: String)
    }

    public var address: ListenAddress
    public var sharing: Sharing

    public init(address: ListenAddress, sharing: Sharing) {
        self.address = address
        self.sharing = sharing
    }
}

/// Every component type the runtime knows, keyed by the `type` string of flow files.
public struct ComponentRegistry: Sendable {
    public var sources: [any SourceSettings.Type]
    public var sinks: [any SinkSettings.Type]
    public var interceptors: [any InterceptorSettings.Type]

    public init(
        sources: [any SourceSettings.Type], sinks: [any SinkSettings.Type], interceptors: [any InterceptorSettings.Type]
    ) {
        self.sources = sources
        self.sinks = sinks
        self.interceptors = interceptors
    }

    /// Adding a component type means one folder under Sources/, Sinks/ or Interceptors/ and one
    /// entry here.
    public static let standard = ComponentRegistry(
        sources: [HTTPSourceSettings.self, KafkaSourceSettings.self, GRPCSourceSettings.self],
        sinks: [
            HTTPSinkSettings.self, StdoutSinkSettings.self, KafkaSinkSettings.self, GRPCSinkSettings.self,
            TemporalSinkSettings.self,
        ],
        interceptors: [WasmInterceptorSettings.self]
    )

    func source(named name: String) -> (any SourceSettings.Type)? { sources.first { $0.typeName == name } }
    func sink(named name: String) -> (any SinkSettings.Type)? { sinks.first { $0.typeName == name } }
    func interceptor(named name: String) -> (any InterceptorSettings.Type)? {
        interceptors.first { $0.typeName == name }
    }
}
