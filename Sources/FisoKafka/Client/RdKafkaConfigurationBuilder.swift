internal import CRdKafka

/// Owns an `rd_kafka_conf_t` until it is handed to `rd_kafka_new`.
struct RdKafkaConfigurationBuilder: ~Copyable {
    private(set) var pointer: OpaquePointer

    init() throws(KafkaError) {
        guard let pointer = rd_kafka_conf_new() else {
            throw KafkaError(kind: .configuration, message: "librdkafka could not allocate a configuration")
        }
        self.pointer = pointer
    }

    /// Sets one property; librdkafka's own text explains a rejected name or value.
    mutating func set(_ key: String, _ value: String) throws(KafkaError) {
        if key.utf8.contains(0) || value.utf8.contains(0) {
            throw KafkaError(kind: .configuration, message: "property '\(key)' contains a NUL byte", property: key)
        }
        var errorText = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(pointer, key, value, &errorText, errorText.count)
        switch result {
        case RD_KAFKA_CONF_OK:
            return
        case RD_KAFKA_CONF_UNKNOWN:
            throw KafkaError(
                kind: .configuration,
                message: "unknown librdkafka property '\(key)': \(Self.text(errorText))",
                property: key
            )
        default:
            let shown = Self.isSensitive(key) ? "<redacted>" : "'\(value)'"
            throw KafkaError(
                kind: .configuration,
                message: "invalid value \(shown) for librdkafka property '\(key)': \(Self.text(errorText))",
                property: key
            )
        }
    }

    /// Hands the configuration to librdkafka (which owns it once `rd_kafka_new` succeeds).
    consuming func take() -> OpaquePointer {
        let pointer = self.pointer
        discard self
        return pointer
    }

    deinit { rd_kafka_conf_destroy(pointer) }

    private static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Values that must not appear in error messages or logs.
    static func isSensitive(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["password", "secret", "jaas", "key.pem", "oauthbearer.config", "token"].contains {
            lowered.contains($0)
        }
    }
}
