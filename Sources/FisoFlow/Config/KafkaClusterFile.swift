import Foundation
import Yams

/// The shared Kafka cluster file (`FISO_KAFKA_CONFIG`, default `/etc/fiso/kafka/kafka.yaml`):
///
/// ```yaml
/// clusters:
///   main:
///     brokers: [kafka-0.kafka-headless:9092]
///     config: {security.protocol: SASL_SSL}
/// ```
public enum KafkaClusterFile {
    public static let defaultPath = "/etc/fiso/kafka/kafka.yaml"

    /// Reads the file. A missing file means no shared clusters; a broken one is an error.
    public static func load(path: String) -> Result<[String: KafkaClusterDefinition], ConfigError> {
        guard FileManager.default.fileExists(atPath: path) else { return .success([:]) }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return .failure(
                ConfigError("cannot read the Kafka cluster file: \(error.localizedDescription)", file: path))
        }
        return parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) -> Result<[String: KafkaClusterDefinition], ConfigError> {
        let problems = ConfigProblems(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return .failure(ConfigError("invalid YAML: \(error)", file: file))
        }
        let document = ConfigNode(node: root, path: "", problems: problems)
        guard let top = document.mapping(allowedKeys: ["clusters"]) else {
            return .failure(ConfigError(problems: problems.all))
        }
        let clusters = readClusters(top["clusters"]) ?? [:]
        return problems.isEmpty ? .success(clusters) : .failure(ConfigError(problems: problems.all))
    }

    /// Reads a `clusters:` mapping (shared file or a flow's inline `kafka.clusters`).
    static func readClusters(_ node: ConfigNode) -> [String: KafkaClusterDefinition]? {
        guard let members = node.freeMapping() else { return nil }
        var clusters: [String: KafkaClusterDefinition] = [:]
        for (name, clusterNode) in members {
            guard let block = clusterNode.mapping(allowedKeys: ["brokers", "config"]) else { continue }
            let brokers = block["brokers"].stringList() ?? []
            if brokers.isEmpty {
                block["brokers"].problem("is required: list the bootstrap brokers as host:port")
                continue
            }
            var valid = true
            for broker in brokers where !isHostPort(broker) {
                block["brokers"].problem("\"\(broker)\" is not host:port")
                valid = false
            }
            let properties = Dictionary(
                (block["config"].stringMap() ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }
            )
            if let reserved = properties.keys.first(where: { $0 == "bootstrap.servers" || $0 == "group.id" }) {
                block["config"].problem("\"\(reserved)\" is set by fiso-flow (use brokers / consumerGroup instead)")
                valid = false
            }
            let cluster = KafkaClusterDefinition(brokers: brokers, properties: properties)
            if valid, let problem = cluster.problem {  // librdkafka's offline check of config:
                block["config"].problem(problem)
                valid = false
            }
            if valid { clusters[name] = cluster }
        }
        return clusters
    }

    private static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...])
        else { return false }
        return (1...65535).contains(port)
    }
}
