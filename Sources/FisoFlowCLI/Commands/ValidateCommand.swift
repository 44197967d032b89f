import ArgumentParser
import FisoFlow
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check every flow file of a directory and list every problem (file, field path, message).",
        discussion: "Exits with status 1 when any file has a problem, 0 when all are valid."
    )

    @Argument(help: "Flow directory (default: FISO_CONFIG_DIR, else /etc/fiso/flows).")
    var directory: String?

    @Option(
        name: .long, help: "Shared Kafka cluster file (default: FISO_KAFKA_CONFIG, else /etc/fiso/kafka/kafka.yaml).")
    var kafkaConfig: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration.fromEnvironment(environment)
        } catch {
            throw ValidationError("\(error)")
        }
        if let directory { configuration.configDirectory = directory }
        if let kafkaConfig { configuration.kafkaConfigPath = kafkaConfig }

        let snapshot: ConfigSnapshot
        switch ConfigSnapshot.read(
            directory: configuration.configDirectory, kafkaConfigPath: configuration.kafkaConfigPath)
        {
        case .success(let read): snapshot = read
        case .failure(let error):
            print(error)
            throw ExitCode(1)
        }
        let loaded = configuration.loader.load(snapshot)
        let report = ValidationReport(snapshot: snapshot, loaded: loaded)
        print(report.text, terminator: "")
        if !report.isValid { throw ExitCode(1) }
    }
}

/// What `fiso-flow validate` prints.
struct ValidationReport {
    var text = ""
    var isValid = true

    init(snapshot: ConfigSnapshot, loaded: LoadedConfiguration) {
        let files = Set(snapshot.flowFiles.keys).union(snapshot.unreadable.keys).sorted()
        if files.isEmpty {
            text += "no *.yaml or *.yml flow files found\n"
            isValid = false
        }
        for file in files {
            if let flow = loaded.flows[file] {
                text += "\(file): ok (flow \"\(flow.name)\": \(flow.source.type) → \(flow.sink.type))\n"
            }
        }
        let problems = loaded.allProblems
        for problem in problems {
            text += "\(problem)\n"
        }
        let invalid = files.count - loaded.flows.count
        isValid = isValid && problems.isEmpty
        text +=
            "\(files.count) flow file\(files.count == 1 ? "" : "s") checked: \(loaded.flows.count) valid, "
            + "\(invalid) invalid"
            + (problems.isEmpty ? "" : " (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")
            + "\n"
    }
}
