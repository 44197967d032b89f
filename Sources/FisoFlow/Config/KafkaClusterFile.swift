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
            guard let block = clusterNode.mapping(allowedKeys: ["brokers", "config", "auth", "tls"]) else { continue }
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
            var properties = Dictionary(
                (block["config"].stringMap() ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }
            )
            // The Go original's `auth` and `tls` blocks, as the librdkafka properties they mean;
            // properties written under `config` win.
            guard let security = readSecurity(auth: block["auth"], tls: block["tls"]) else { continue }
            properties.merge(security) { written, _ in written }
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

    /// `auth: {mechanism, username, password}` and `tls: {enabled, caFile, certFile, keyFile,
    /// skipVerify}` (the Go original's cluster settings) as librdkafka properties; nil after a
    /// problem.
    static func readSecurity(auth authNode: ConfigNode, tls tlsNode: ConfigNode) -> [String: String]? {
        var properties: [String: String] = [:]
        var usesSASL = false
        var usesTLS = false
        if !authNode.isMissing {
            guard let auth = authNode.mapping(allowedKeys: ["mechanism", "username", "password", "oauth"]) else {
                return nil
            }
            if !auth["oauth"].isMissing {
                auth["oauth"].problem(
                    "OAUTHBEARER (Azure) is not supported by fiso-flow; use SASL PLAIN or SCRAM, or set librdkafka's "
                        + "sasl.oauthbearer.* properties under config")
                return nil
            }
            let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
            guard let mechanism = auth["mechanism"].requiredString() else { return nil }
            guard mechanisms.contains(mechanism.uppercased()) else {
                auth["mechanism"].problem("must be one of \(mechanisms.joined(separator: ", ")), got \"\(mechanism)\"")
                return nil
            }
            guard let username = auth["username"].requiredString(), let password = auth["password"].requiredString()
            else { return nil }
            properties["sasl.mechanism"] = mechanism.uppercased()
            properties["sasl.username"] = username
            properties["sasl.password"] = password
            usesSASL = true
        }
        if !tlsNode.isMissing {
            guard let tls = tlsNode.mapping(allowedKeys: ["enabled", "caFile", "certFile", "keyFile", "skipVerify"])
            else { return nil }
            usesTLS = tls["enabled"].bool() ?? true
            if usesTLS {
                if let file = tls["caFile"].string() { properties["ssl.ca.location"] = file }
                if let file = tls["certFile"].string() { properties["ssl.certificate.location"] = file }
                if let file = tls["keyFile"].string() { properties["ssl.key.location"] = file }
                if (tls["certFile"].isMissing) != (tls["keyFile"].isMissing) {
                    tls.problem("certFile and keyFile go together (mutual TLS)")
                    return nil
                }
                if tls["skipVerify"].bool() == true { properties["enable.ssl.certificate.verification"] = "false" }
            }
        }
        if usesSASL || usesTLS {
            properties["security.protocol"] = (usesSASL ? "SASL_" : "") + (usesTLS ? "SSL" : "PLAINTEXT")
        }
        return properties
    }

    /// The name a flow's inline `brokers` list gets as a cluster (the Go original's spelling
    /// `source.config.brokers`).
    static func inlineClusterName(_ brokers: [String]) -> String {
        "brokers:" + brokers.joined(separator: ",")
    }

    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...])
        else { return false }
        return (1...65535).contains(port)
    }
}
