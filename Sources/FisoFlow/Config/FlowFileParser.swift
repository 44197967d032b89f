import FisoCEL
import FisoQuantities
import Yams

/// Reads flow files (YAML) into validated ``FlowDefinition``s, reporting every problem found.
public struct FlowFileParser: Sendable {
    public var registry: ComponentRegistry
    /// Clusters from the shared Kafka cluster file.
    public var sharedKafkaClusters: [String: KafkaClusterDefinition]
    public var kafkaConfigPath: String

    static let topLevelKeys = [
        "name", "source", "transform", "cloudevents", "interceptors", "sink", "errorHandling", "kafka",
    ]

    public init(
        registry: ComponentRegistry = .standard,
        sharedKafkaClusters: [String: KafkaClusterDefinition] = [:],
        kafkaConfigPath: String = ""
    ) {
        self.registry = registry
        self.sharedKafkaClusters = sharedKafkaClusters
        self.kafkaConfigPath = kafkaConfigPath
    }

    /// Parses one flow file. Returns the flow, or every problem found in it.
    public func parse(_ text: String, file: String) -> Result<FlowDefinition, ConfigError> {
        let problems = ConfigProblems(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return .failure(ConfigError(problems: [yamlSyntaxProblem(error, file: file)]))
        }
        guard let root else {
            return .failure(ConfigError("the file is empty; a flow needs at least name, source and sink", file: file))
        }
        let document = ConfigNode(node: root, path: "", problems: problems)
        guard let top = document.mapping(allowedKeys: Self.topLevelKeys) else {
            return .failure(ConfigError(problems: problems.all))
        }
        let flow = readFlow(top, file: file, problems: problems)
        if let flow, problems.isEmpty { return .success(flow) }
        return .failure(ConfigError(problems: problems.all))
    }

    private func readFlow(_ top: ConfigMapping, file: String, problems: ConfigProblems) -> FlowDefinition? {
        let name = readName(top["name"])
        var clusters = sharedKafkaClusters.merging(readKafkaClusters(top["kafka"]) ?? [:]) { _, inline in inline }
        // A source or sink that lists `brokers` itself (the Go original's spelling) gets a cluster
        // of its own; its settings check the list.
        for role in ["source", "sink"] {
            if let brokers = top[role].child("config").child("brokers").quietStringList(), !brokers.isEmpty,
                brokers.allSatisfy(KafkaClusterFile.isHostPort)
            {
                clusters[KafkaClusterFile.inlineClusterName(brokers)] = KafkaClusterDefinition(brokers: brokers)
            }
        }
        let context = ConfigContext(kafkaClusters: clusters, kafkaConfigPath: kafkaConfigPath)

        let source = readComponent(top["source"], role: "source", types: registry.sources).flatMap { block in
            registry.sources[block.index].parse(block.config, context: context).map {
                ComponentDefinition<any SourceSettings>(type: block.type, settings: $0)
            }
        }
        let sink = readComponent(top["sink"], role: "sink", types: registry.sinks).flatMap { block in
            registry.sinks[block.index].parse(block.config, context: context).map {
                ComponentDefinition<any SinkSettings>(type: block.type, settings: $0)
            }
        }
        var interceptors: [ComponentDefinition<any InterceptorSettings>] = []
        for element in top["interceptors"].sequence() ?? [] {
            guard let block = readComponent(element, role: "interceptor", types: registry.interceptors),
                let settings = registry.interceptors[block.index].parse(block.config, context: context)
            else { continue }
            interceptors.append(ComponentDefinition(type: block.type, settings: settings))
        }
        let expressions = FlowExpressions(
            sourceVariables: source.map { type(of: $0.settings).expressionVariables } ?? []
        )
        let transform = readTransform(top["transform"], expressions: expressions)
        let cloudEvents = readCloudEvents(top["cloudevents"], expressions: expressions)
        let errorHandling = readErrorHandling(top["errorHandling"], context: context)

        guard let name, let source, let sink, let errorHandling, let cloudEvents else {
            if top["source"].isMissing { top["source"].problem("is required") }
            if top["sink"].isMissing { top["sink"].problem("is required") }
            return nil
        }
        let flow = FlowDefinition(
            name: name, file: file, source: source, transform: transform, cloudEvents: cloudEvents,
            interceptors: interceptors, sink: sink, errorHandling: errorHandling, kafkaClusters: context.kafkaClusters
        )
        checkCombination(flow, top: top)
        return flow
    }

    // MARK: Sections

    private func readName(_ node: ConfigNode) -> String? {
        guard let name = node.requiredString() else { return nil }
        guard name.count <= 200, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else {
            node.problem(
                "\"\(name)\" is not a valid flow name: use letters, digits, '.', '_' and '-' (at most 200); "
                    + "it appears in metrics, the CloudEvent source and topic names"
            )
            return nil
        }
        return name
    }

    /// Reads a `{type, config}` block: the position in `types` of the named type, and its `config`
    /// checked against the type's keys. The caller parses the config with that type.
    private func readComponent(
        _ node: ConfigNode, role: String, types: [any ComponentSettings.Type]
    ) -> (index: Int, type: String, config: ConfigMapping)? {
        if node.isMissing { return nil }
        guard let block = node.mapping(allowedKeys: ["type", "config"]) else { return nil }
        guard let type = block["type"].requiredString() else { return nil }
        guard let index = types.firstIndex(where: { $0.typeName == type }) else {
            let known = types.map { $0.typeName }.joined(separator: ", ")
            block["type"].problem("unknown \(role) type \"\(type)\" (known: \(known))")
            return nil
        }
        guard let config = block["config"].mapping(allowedKeys: types[index].configKeys) else { return nil }
        return (index, type, config)
    }

    private func readTransform(_ node: ConfigNode, expressions: FlowExpressions) -> TransformDefinition? {
        if node.isMissing { return nil }
        guard let block = node.mapping(allowedKeys: ["fields"]) else { return nil }
        guard let members = block["fields"].freeMapping() else { return nil }
        if members.isEmpty {
            block["fields"].problem("is required when transform is present: map output field names to CEL expressions")
            return nil
        }
        var fields: [(path: [String], expression: String)] = []
        var lines: [Int?] = []
        /// A field, or a nested mapping of fields (an object in the output).
        func read(_ members: [(key: String, value: ConfigNode)], under path: [String]) {
            for (name, valueNode) in members {
                if !valueNode.isMissing, !valueNode.isScalar, let nested = valueNode.freeMapping() {
                    if nested.isEmpty { valueNode.problem("a nested object needs at least one field") }
                    read(nested, under: path + [name])
                    continue
                }
                guard let expression = valueNode.requiredString() else { continue }
                do {
                    _ = try expressions.compile(expression)
                } catch {
                    valueNode.problem(Self.describe(error))
                    continue
                }
                fields.append((path + [name], expression))
                lines.append(valueNode.line)
            }
        }
        read(members, under: [])
        return TransformDefinition(fields: fields, lines: lines)
    }

    private func readCloudEvents(_ node: ConfigNode, expressions: FlowExpressions) -> CloudEventOverrides? {
        guard let block = node.mapping(allowedKeys: CloudEventOverrides.blockKeys) else { return nil }
        /// The text of an override that compiles (or is a literal); nil, with a problem, otherwise.
        func override(_ valueNode: ConfigNode, _ value: String) -> String? {
            if value.isEmpty {
                valueNode.problem("must not be empty; remove the key to use the default")
                return nil
            }
            do {
                _ = try expressions.override(value)
            } catch {
                valueNode.problem(Self.describe(error))
                return nil
            }
            return value
        }
        var overrides = CloudEventOverrides()
        if let mode = block["mode"].oneOf(CloudEventMode.allCases.map(\.rawValue)).flatMap(CloudEventMode.init) {
            overrides.mode = mode
        }
        for (name, value) in block["extensions"].stringMap() ?? [] {
            let valueNode = block["extensions"].child(name)
            guard CloudEvent.isValidExtensionName(name), !CloudEvent.contextAttributes.contains(name),
                !["data", "data_base64"].contains(name)
            else {
                valueNode.problem(
                    "\"\(name)\" is not an extension attribute name: use lower-case letters and digits, and not a "
                        + "name the CloudEvents spec defines (set those with their own keys)")
                continue
            }
            if let expression = override(valueNode, value) {
                overrides.extensions.append(.init(name: name, expression: expression))
            }
        }
        for key in CloudEventOverrides.keys {
            let valueNode = block[key]
            guard let value = valueNode.string() else { continue }
            if let expression = override(valueNode, value) { overrides[key] = expression }
        }
        return overrides
    }

    private func readErrorHandling(_ node: ConfigNode, context: ConfigContext) -> ErrorHandlingPolicy? {
        guard
            let block = node.mapping(allowedKeys: [
                "deadLetterTopic", "deadLetterCluster", "maxRetries", "backoff", "commitPolicy", "transactionalId",
            ])
        else { return nil }
        var policy = ErrorHandlingPolicy()
        if let topic = block["deadLetterTopic"].string() {
            if KafkaNames.isValidTopic(topic) {
                policy.deadLetterTopic = topic
            } else {
                block["deadLetterTopic"].problem(KafkaNames.invalidTopicMessage(topic))
            }
        }
        if !block["deadLetterCluster"].isMissing {
            policy.deadLetterCluster = context.requireKafkaCluster(block["deadLetterCluster"])
        }
        if let retries = block["maxRetries"].int(range: 0...100) { policy.maxRetries = retries }
        if let backoff = readBackoff(block["backoff"]) { policy.backoff = backoff }
        if let commit = block["commitPolicy"].oneOf(ErrorHandlingPolicy.CommitPolicy.allCases.map(\.rawValue)) {
            policy.commitPolicy = ErrorHandlingPolicy.CommitPolicy(rawValue: commit) ?? .sinkOrDeadLetter
        }
        policy.transactionalID = block["transactionalId"].string()
        return policy
    }

    /// `backoff: exponential`, `backoff: constant`, or a mapping with the details.
    private func readBackoff(_ node: ConfigNode) -> BackoffPolicy? {
        if node.isMissing { return nil }
        var policy = BackoffPolicy.default
        if node.node?.scalar != nil {
            guard let kind = node.oneOf(BackoffPolicy.Kind.allCases.map(\.rawValue)) else { return nil }
            policy.kind = BackoffPolicy.Kind(rawValue: kind) ?? .exponential
            return policy
        }
        guard let block = node.mapping(allowedKeys: ["type", "initial", "max", "multiplier", "jitter"]) else {
            return nil
        }
        if let kind = block["type"].oneOf(BackoffPolicy.Kind.allCases.map(\.rawValue)) {
            policy.kind = BackoffPolicy.Kind(rawValue: kind) ?? .exponential
        }
        if let initial = block["initial"].duration() { policy.initial = initial }
        if let maximum = block["max"].duration() { policy.maximum = maximum }
        if let multiplier = block["multiplier"].double() {
            if multiplier >= 1 { policy.multiplier = multiplier } else { block["multiplier"].problem("must be ≥ 1") }
        }
        if let jitter = block["jitter"].double() {
            if (0...1).contains(jitter) { policy.jitter = jitter } else { block["jitter"].problem("must be 0…1") }
        }
        if policy.initial > policy.maximum {
            block["initial"].problem("must not exceed max (\(GoDuration.format(policy.maximum)))")
        }
        return policy
    }

    private func readKafkaClusters(_ node: ConfigNode) -> [String: KafkaClusterDefinition]? {
        guard let block = node.mapping(allowedKeys: ["clusters"]) else { return nil }
        return KafkaClusterFile.readClusters(block["clusters"])
    }

    // MARK: Rules across sections

    private func checkCombination(_ flow: FlowDefinition, top: ConfigMapping) {
        let errorHandling = top["errorHandling"]
        let policy = flow.errorHandling
        let sourceCluster = flow.source.settings.kafkaCluster
        let sinkCluster = flow.sink.settings.kafkaCluster
        if flow.cloudEvents.mode == .binary, !type(of: flow.sink.settings).writesBinaryCloudEvents {
            top["cloudevents"].child("mode").problem(
                "binary mode needs a sink that writes CloudEvents as headers and data (http, kafka); "
                    + "a \(flow.sink.type) sink writes structured events")
        }
        if policy.commitPolicy != .sinkOrDeadLetter, sourceCluster == nil {
            errorHandling.child("commitPolicy").problem(
                "\"\(policy.commitPolicy.rawValue)\" applies only to kafka sources; this flow's source is "
                    + "\(flow.source.type)"
            )
        }
        if policy.commitPolicy == .kafkaTransaction {
            if sinkCluster == nil {
                errorHandling.child("commitPolicy").problem("kafka_transaction needs a kafka sink")
            }
            if policy.transactionalID?.isEmpty ?? true {
                errorHandling.child("transactionalId").problem("is required when commitPolicy is kafka_transaction")
            }
            if let sourceCluster, let sinkCluster, sourceCluster != sinkCluster {
                errorHandling.child("commitPolicy").problem(
                    "kafka_transaction needs the source and sink on the same cluster "
                        + "(source: \(sourceCluster), sink: \(sinkCluster))"
                )
            }
        }
        if sourceCluster != nil, policy.commitPolicy != .sinkOrDeadLetter {
            // These policies never skip an event, so nothing would ever reach a dead-letter topic.
            for key in ["deadLetterTopic", "deadLetterCluster"] where !errorHandling.child(key).isMissing {
                errorHandling.child(key).problem(
                    "is not used with commitPolicy \(policy.commitPolicy.rawValue): failed events are retried, never "
                        + "dead-lettered; remove it or use sink_or_dlq"
                )
            }
        }
        if policy.deadLetterTopic != nil, sourceCluster == nil, policy.deadLetterCluster == nil {
            errorHandling.child("deadLetterTopic").problem(
                "a \(flow.source.type) source has no Kafka cluster of its own: set errorHandling.deadLetterCluster "
                    + "(or remove deadLetterTopic to answer errors to the caller)"
            )
        }
    }

    /// A CEL compile error as a one-problem message: position, reason and the caret snippet.
    static func describe(_ error: CELCompileError) -> String {
        "CEL error at column \(error.column)\(error.line > 1 ? " of line \(error.line)" : ""): \(error.message)\n"
            + error.snippet
    }

    private func yamlSyntaxProblem(_ error: any Error, file: String) -> ConfigProblem {
        if let yamlError = error as? YamlError {
            switch yamlError {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                return ConfigProblem(file: file, path: "", line: mark.line, message: "invalid YAML: \(problem)")
            default: break
            }
        }
        return ConfigProblem(file: file, path: "", message: "invalid YAML: \(error)")
    }
}

extension CloudEventOverrides {
    static let keys = ["id", "type", "source", "subject", "data", "datacontenttype", "dataschema"]
    /// The keys of the `cloudevents` block: the attribute overrides, `mode` and `extensions`.
    static let blockKeys = keys + ["mode", "extensions"]

    subscript(key: String) -> String? {
        get { configured.first { $0.attribute == key }?.expression }
        set {
            switch key {
            case "id": id = newValue
            case "type": type = newValue
            case "source": source = newValue
            case "subject": subject = newValue
            case "data": data = newValue
            case "datacontenttype": dataContentType = newValue
            case "dataschema": dataSchema = newValue
            default: break
            }
        }
    }
}

/// Kafka's naming rules, checked where flows name topics.
enum KafkaNames {
    static func isValidTopic(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 249 && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    static func invalidTopicMessage(_ name: String) -> String {
        "\"\(name)\" is not a valid Kafka topic name: use letters, digits, '.', '_' and '-' (at most 249)"
    }
}
