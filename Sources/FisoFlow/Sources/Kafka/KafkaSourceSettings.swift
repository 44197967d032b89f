/// `source.type: kafka` settings.
public struct KafkaSourceSettings: SourceSettings, Equatable {
    /// Where a consumer group without a committed offset starts.
    public enum StartOffset: Sendable, Equatable {
        case earliest
        case latest
        case offset(Int64)
    }

    public static let defaultMaxInFlight = 64

    public var cluster: String
    public var topics: [String]
    public var consumerGroup: String
    public var startOffset: StartOffset
    /// Events of one partition in flight at once.
    public var maxInFlight: Int
    /// Which record headers become event headers (`forwardHeaders`, `dropHeaders`).
    public var headerPolicy: HeaderPolicy = .standard
}

extension KafkaSourceSettings {
    public static let typeName = "kafka"
    public static let configKeys =
        ["cluster", "brokers", "topic", "topics", "consumerGroup", "startOffset", "maxInFlight"]
        + HeaderPolicy.configKeys
    public static let expressionVariables = ["kafka"]

    public var kafkaCluster: String? { cluster }

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        let cluster = context.kafkaCluster(of: config)
        var topics: [String] = []
        if let topic = config["topic"].string() { topics.append(topic) }
        topics += config["topics"].stringList() ?? []
        if topics.isEmpty {
            config["topic"].problem("is required (or topics: [...])")
        }
        for topic in topics where !KafkaNames.isValidTopic(topic) {
            config["topics"].problem(KafkaNames.invalidTopicMessage(topic))
        }
        let group = config["consumerGroup"].requiredString()
        var startOffset = KafkaSourceSettings.StartOffset.latest
        if let text = config["startOffset"].string() {
            switch text {
            // `oldest` and `newest` are the Go original's (sarama's) names.
            case "earliest", "oldest": startOffset = .earliest
            case "latest", "newest": startOffset = .latest
            default:
                if let offset = Int64(text), offset >= 0 {
                    startOffset = .offset(offset)
                } else {
                    config["startOffset"].problem("must be earliest, latest or an offset ≥ 0, got \"\(text)\"")
                }
            }
        }
        let maxInFlight = config["maxInFlight"].int(range: 1...100_000) ?? KafkaSourceSettings.defaultMaxInFlight
        let headerPolicy = HeaderPolicy.read(config)
        guard let cluster, let group, !topics.isEmpty else { return nil }
        return KafkaSourceSettings(
            cluster: cluster, topics: topics, consumerGroup: group, startOffset: startOffset,
            maxInFlight: maxInFlight, headerPolicy: headerPolicy
        )
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSource {
        try KafkaSource(settings: self, context: context)
    }
}
