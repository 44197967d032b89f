import FisoCEL

/// `sink.type: kafka` settings.
public struct KafkaSinkSettings: SinkSettings, Equatable {
    public enum RequiredAcks: String, Sendable, CaseIterable {
        case all
        case leader = "1"
        case none = "0"
    }

    public var cluster: String
    public var topic: String
    /// CEL expression computing the record key; nil sends records without a key.
    public var key: String?
    public var requiredAcks: RequiredAcks
    public var idempotent: Bool
}

extension KafkaSinkSettings {
    public static let typeName = "kafka"
    public static let configKeys = ["cluster", "brokers", "topic", "key", "requiredAcks", "idempotent"]
    public static let writesBinaryCloudEvents = true

    public var kafkaCluster: String? { cluster }

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        let cluster = context.kafkaCluster(of: config)
        let topic = config["topic"].requiredString()
        if let topic, !KafkaNames.isValidTopic(topic) {
            config["topic"].problem(KafkaNames.invalidTopicMessage(topic))
        }
        var acks = KafkaSinkSettings.RequiredAcks.all
        if let text = config["requiredAcks"].string() {
            if let value = KafkaSinkSettings.RequiredAcks(rawValue: text == "-1" ? "all" : text) {
                acks = value
            } else {
                config["requiredAcks"].problem("must be all, 1 or 0, got \"\(text)\"")
            }
        }
        let key = config["key"].string()
        if let key {
            // The flow's own variables are known only with its source; `kafka` is accepted here
            // and checked against the source when the flow is built.
            do throws(CELCompileError) {
                _ = try FlowExpressions(sourceVariables: KafkaSourceSettings.expressionVariables).compile(key)
            } catch {
                config["key"].problem(FlowFileParser.describe(error))
            }
        }
        let idempotent = config["idempotent"].bool() ?? true
        if idempotent, acks != .all {
            config["requiredAcks"].problem(
                "an idempotent producer needs requiredAcks: all (or set idempotent: false)")
        }
        guard let cluster, let topic else { return nil }
        return KafkaSinkSettings(
            cluster: cluster, topic: topic, key: key, requiredAcks: acks, idempotent: idempotent
        )
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSink {
        try KafkaSink(settings: self, context: context)
    }
}
