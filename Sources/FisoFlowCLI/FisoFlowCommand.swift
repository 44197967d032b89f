import ArgumentParser

@main
struct FisoFlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fiso-flow",
        abstract: "Event mediation runtime: sources → CEL transform → WASM interceptors → CloudEvents → sinks.",
        discussion: """
            Flows are YAML files in a directory (FISO_CONFIG_DIR, default /etc/fiso/flows); each file is one \
            flow. `fiso-flow` with no subcommand runs them.
            """,
        subcommands: [RunCommand.self, ValidateCommand.self, TransformCommand.self, WasmCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
