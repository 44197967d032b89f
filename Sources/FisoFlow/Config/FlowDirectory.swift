import Foundation

/// The flow files of a configuration directory as they are on disk at one moment.
///
/// Every `*.yaml` / `*.yml` entry is one flow. Names starting with a dot are skipped: a Kubernetes
/// ConfigMap volume keeps its real files in `..2024_01_01…` directories behind a `..data` symlink,
/// and the visible names are symlinks into `..data`, which this follows.
public struct ConfigSnapshot: Sendable, Equatable {
    /// File path → file content.
    public var flowFiles: [String: String]
    /// Content of the shared Kafka cluster file, nil when it does not exist.
    public var kafkaFile: String?
    /// Files that exist but could not be read.
    public var unreadable: [String: String]

    public static func read(directory: String, kafkaConfigPath: String) -> Result<ConfigSnapshot, ConfigError> {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return .failure(ConfigError("the flow directory \(directory) does not exist or is not a directory"))
        }
        let names: [String]
        do {
            names = try manager.contentsOfDirectory(atPath: directory)
        } catch {
            return .failure(ConfigError("cannot list the flow directory \(directory): \(error.localizedDescription)"))
        }
        var snapshot = ConfigSnapshot(flowFiles: [:], kafkaFile: nil, unreadable: [:])
        for name in names.sorted() where !name.hasPrefix(".") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) {
            let path = (directory as NSString).appendingPathComponent(name)
            var entryIsDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &entryIsDirectory), !entryIsDirectory.boolValue else {
                continue  // a dangling symlink mid-swap, or a directory
            }
            do {
                snapshot.flowFiles[path] = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                snapshot.unreadable[path] = error.localizedDescription
            }
        }
        if manager.fileExists(atPath: kafkaConfigPath) {
            snapshot.kafkaFile = try? String(contentsOfFile: kafkaConfigPath, encoding: .utf8)
        }
        return .success(snapshot)
    }
}

/// The outcome of validating a whole directory: the usable flows and every problem.
public struct LoadedConfiguration: Sendable {
    /// Valid flows by file path.
    public var flows: [String: FlowDefinition]
    /// Problems by file path ("" for problems of the whole set, such as the Kafka cluster file).
    public var problems: [String: [ConfigProblem]]

    public var allProblems: [ConfigProblem] {
        problems.keys.sorted().flatMap { problems[$0]! }
    }
}

/// Validates every flow of a snapshot, then the rules between flows (unique names, one flow per
/// HTTP path, no port claimed twice).
public struct FlowLoader: Sendable {
    public var registry: ComponentRegistry
    public var kafkaConfigPath: String
    /// Addresses other parts of the process listen on (the metrics port), which flows must avoid.
    public var reservedAddresses: [ListenAddress]

    public init(
        registry: ComponentRegistry = .standard, kafkaConfigPath: String = KafkaClusterFile.defaultPath,
        reservedAddresses: [ListenAddress] = []
    ) {
        self.registry = registry
        self.kafkaConfigPath = kafkaConfigPath
        self.reservedAddresses = reservedAddresses
    }

    public func load(_ snapshot: ConfigSnapshot) -> LoadedConfiguration {
        var result = LoadedConfiguration(flows: [:], problems: [:])
        var sharedClusters: [String: KafkaClusterDefinition] = [:]
        if let kafkaText = snapshot.kafkaFile {
            switch KafkaClusterFile.parse(kafkaText, file: kafkaConfigPath) {
            case .success(let clusters): sharedClusters = clusters
            case .failure(let error): result.problems[kafkaConfigPath] = error.problems
            }
        }
        for (path, reason) in snapshot.unreadable {
            result.problems[path] = [ConfigProblem(file: path, path: "", message: "cannot read the file: \(reason)")]
        }
        let parser = FlowFileParser(
            registry: registry, sharedKafkaClusters: sharedClusters, kafkaConfigPath: kafkaConfigPath
        )
        for path in snapshot.flowFiles.keys.sorted() {
            switch parser.parse(snapshot.flowFiles[path]!, file: path) {
            case .success(let flow): result.flows[path] = flow
            case .failure(let error): result.problems[path] = error.problems
            }
        }
        rejectConflicts(&result)
        return result
    }

    /// Of two flows that clash, the one in the later file (by name) is refused.
    private func rejectConflicts(_ result: inout LoadedConfiguration) {
        var accepted: [String: FlowDefinition] = [:]
        for path in result.flows.keys.sorted() {
            let flow = result.flows[path]!
            if let clash = conflict(of: flow, with: Array(accepted.values)) {
                result.problems[path, default: []].append(clash)
                result.flows[path] = nil
            } else {
                accepted[path] = flow
            }
        }
    }

    /// Why `flow` cannot run beside `others`, or nil when it can.
    public func conflict(of flow: FlowDefinition, with others: [FlowDefinition]) -> ConfigProblem? {
        for other in others where other.file != flow.file {
            if other.name == flow.name {
                return ConfigProblem(
                    file: flow.file, path: "name", message: "flow name \"\(flow.name)\" is also used by \(other.file)"
                )
            }
            guard let mine = flow.source.settings.listener, let theirs = other.source.settings.listener else {
                continue
            }
            let sharing = flow.source.type == other.source.type && mine.sharing != .exclusive
            if sharing, mine.address == theirs.address {
                if case .routed(let key, let route) = mine.sharing, mine.sharing == theirs.sharing {
                    return ConfigProblem(
                        file: flow.file, path: "source.config.\(key)",
                        message:
                            "\(key) \(route) on \(mine.address) is already used by flow \(other.name) (\(other.file))"
                    )
                }
                continue
            }
            if mine.address.port != 0, mine.address == theirs.address || mine.address.conflicts(with: theirs.address) {
                let sharingTypes = registry.sources.filter { $0.sharesListeners }.map { $0.typeName }
                return ConfigProblem(
                    file: flow.file, path: "source.config.listenAddr",
                    message: sharing
                        ? "\(mine.address) overlaps \(theirs.address) of flow \(other.name); flows sharing a port must use the same listenAddr"
                        : "\(mine.address) is also used by flow \(other.name) (\(other.file)); only "
                            + "\(sharingTypes.joined(separator: " and ")) sources share a port"
                )
            }
        }
        if let address = flow.source.settings.listener?.address {
            for reserved in reservedAddresses where reserved.port == address.port && address.port != 0 {
                return ConfigProblem(
                    file: flow.file, path: "source.config.listenAddr",
                    message: "port \(address.port) is the metrics port (FISO_METRICS_ADDR)"
                )
            }
        }
        return nil
    }
}
