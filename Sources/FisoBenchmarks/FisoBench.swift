import ArgumentParser

/// `fiso-bench`: every performance goal of the project, each measured against a baseline taken
/// in the same run so the reported ratios stay meaningful on a noisy machine.
@main
struct FisoBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fiso-bench",
        abstract: "Benchmarks for Fiso-Flow; each reports a ratio against a baseline measured in the same run.",
        subcommands: [
            HTTPBenchmark.self, CELBenchmark.self, WasmBenchmark.self, GRPCBenchmark.self, KafkaBenchmark.self,
            TemporalBenchmark.self,
        ]
    )
}
