import FisoKafka

/// How a cluster of a flow file (`brokers` plus `config:`) becomes FisoKafka client configurations.
///
/// `config:` is passed to librdkafka as it is, except for properties fiso-flow sets through its own
/// settings: a few are taken over as the typed setting they correspond to (`client.id`,
/// `session.timeout.ms`, `linger.ms`, `message.timeout.ms`), and the rest are refused with the
/// flow setting to use instead (`acks` → the sink's `requiredAcks`, …).
enum KafkaClusterSettings {
    /// Properties fiso-flow controls, with the setting that does it.
    static let controlledProperties: [String: String] = [
        "metadata.broker.list": "set by brokers",
        "acks": "set by the kafka sink's requiredAcks",
        "request.required.acks": "set by the kafka sink's requiredAcks",
        "enable.idempotence": "set by the kafka sink's idempotent",
        "transactional.id": "set by errorHandling.transactionalId",
        "enable.auto.commit": "fiso-flow commits offsets itself, after each event's final outcome",
        "enable.auto.offset.store": "fiso-flow commits offsets itself, after each event's final outcome",
        "auto.offset.reset": "set by the kafka source's startOffset",
    ]

    /// A cluster's settings: the client configuration and the typed settings taken from `config:`.
    struct Resolved: Sendable {
        var client: KafkaClientConfiguration
        /// `session.timeout.ms` for consumers.
        var sessionTimeout: Duration?
        /// `linger.ms` / `queue.buffering.max.ms` for producers.
        var linger: Duration?
        /// `message.timeout.ms` / `delivery.timeout.ms` for producers.
        var deliveryTimeout: Duration?
    }

    static let clientID = "fiso-flow"

    /// Splits `config:` into typed settings and librdkafka properties; checks the properties with
    /// librdkafka (offline).
    static func resolve(_ cluster: KafkaClusterDefinition) throws(KafkaError) -> Resolved {
        var properties = cluster.properties
        for key in properties.keys.sorted() {
            if let reason = controlledProperties[key] {
                throw KafkaError(kind: .configuration, message: "property '\(key)' is \(reason)", property: key)
            }
        }
        func takeMilliseconds(_ names: [String]) throws(KafkaError) -> Duration? {
            var result: Duration?
            for name in names {
                guard let text = properties.removeValue(forKey: name) else { continue }
                guard let value = Int(text), value > 0 else {
                    throw KafkaError(
                        kind: .configuration,
                        message: "invalid value '\(text)' for librdkafka property '\(name)': expected milliseconds > 0",
                        property: name
                    )
                }
                result = .milliseconds(value)
            }
            return result
        }
        let session = try takeMilliseconds(["session.timeout.ms"])
        let linger = try takeMilliseconds(["queue.buffering.max.ms", "linger.ms"])
        let delivery = try takeMilliseconds(["delivery.timeout.ms", "message.timeout.ms"])
        var clientID = Self.clientID
        if let given = properties.removeValue(forKey: "client.id") {
            guard !given.isEmpty else {
                throw KafkaError(
                    kind: .configuration, message: "property 'client.id' must not be empty", property: "client.id")
            }
            clientID = given
        }
        let client = KafkaClientConfiguration(brokers: cluster.brokers, clientID: clientID, properties: properties)
        try client.validate()
        return Resolved(client: client, sessionTimeout: session, linger: linger, deliveryTimeout: delivery)
    }

    /// Why a cluster definition cannot be used, or nil. Checked offline, by `fiso-flow validate`
    /// and whenever flow files are loaded.
    static func problem(in cluster: KafkaClusterDefinition) -> String? {
        do {
            _ = try resolve(cluster)
            return nil
        } catch {
            return error.message
        }
    }

    /// The producer configuration for a cluster.
    static func producerConfiguration(
        _ cluster: KafkaClusterDefinition, acks: KafkaAcks = .all, idempotent: Bool = true,
        transactionalID: String? = nil
    ) throws(KafkaError) -> KafkaProducerConfiguration {
        let resolved = try resolve(cluster)
        var configuration = KafkaProducerConfiguration(
            cluster: resolved.client, acks: acks, idempotent: idempotent, transactionalID: transactionalID
        )
        if let linger = resolved.linger { configuration.linger = linger }
        if let timeout = resolved.deliveryTimeout { configuration.deliveryTimeout = timeout }
        try configuration.validate()
        return configuration
    }
}

extension KafkaClusterDefinition {
    /// Why this cluster's `brokers` and `config:` cannot be used, or nil (checked offline with
    /// librdkafka).
    public var problem: String? { KafkaClusterSettings.problem(in: self) }
}
