import ArgumentParser
import FisoFlow
import FisoQuantities
import FisoWasm
import FisoWasmTooling
import Foundation

struct WasmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm",
        abstract: "Run, check, package and measure WASM modules the way flows run them.",
        subcommands: [WasmRunCommand.self, WasmValidateCommand.self, WasmConfigMapCommand.self, WasmBenchCommand.self]
    )
}

/// The limits a module runs with, as flags (the interceptor's `config` keys).
struct WasmLimitOptions: ParsableArguments {
    @Option(help: "Wall-clock limit of a call, e.g. 200ms, 5s (default 5s).") var timeout: String?
    @Option(help: "Memory limit, e.g. 64Mi (default 128Mi).") var memoryLimit: String?
    @Option(name: .customLong("env"), help: "An environment variable for the module, K=V (repeatable).")
    var environment: [String] = []
    @Option(help: "auto (Wasmtime when its library loads, else WasmKit), wasmkit or wasmtime.")
    var engine: String = "auto"
    @Option(
        help: """
            command (a fresh instance per call, `_start` reads stdin) or reactor (warm, reused instances of \
            a module exporting fiso_alloc and fiso_handle; see docs/module-authors-guide.md).
            """
    )
    var mode: String = "command"

    /// The engine `--engine` names; `wasmtime` without its library is a usage error that says how to
    /// get it.
    func selectedEngine() throws -> any WasmEngine {
        guard let choice = WasmEngineChoice(rawValue: engine) else {
            throw ValidationError("--engine: use auto, wasmkit or wasmtime, not \"\(engine)\"")
        }
        do {
            return try choice.engine()
        } catch {
            throw ValidationError("--engine wasmtime: \(error)")
        }
    }

    func configuration() throws -> WasmModuleConfiguration {
        var configuration = WasmModuleConfiguration()
        guard let executionMode = WasmExecutionMode(named: mode) else {
            throw ValidationError("--mode: use command or reactor, not \"\(mode)\"")
        }
        configuration.mode = executionMode
        if let timeout {
            do {
                configuration.timeout = try GoDuration.parse(timeout)
            } catch {
                throw ValidationError("--timeout: \(error)")
            }
        }
        if let memoryLimit {
            do {
                configuration.memoryLimitBytes = try ByteSize.parse(memoryLimit)
            } catch {
                throw ValidationError("--memory-limit: \(error)")
            }
        }
        for pair in environment {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--env takes K=V, got \"\(pair)\"")
            }
            configuration.environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        if let problem = configuration.problems.first { throw ValidationError(problem) }
        return configuration
    }
}

/// Loads a module for the command line, turning a load failure into a readable exit.
private func loadModule(
    _ path: String, configuration: WasmModuleConfiguration, engine: any WasmEngine
) async throws -> WasmTransformer {
    do {
        return try await WasmTransformer.load(path: path, configuration: configuration, engine: engine)
    } catch {
        FileHandle.standardError.write(Data("fiso-flow: \(error.description)\n".utf8))
        throw ExitCode(1)
    }
}

private func readInput(_ path: String?) throws -> [UInt8] {
    guard let path else { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the input file \(path)")
    }
    return Array(data)
}

struct WasmRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a module once: stdin (or --input) to the module, its stdout to stdout, its stderr to stderr.",
        discussion: """
            A drop-in for `wasmtime MODULE` as the deployment guide uses it, in the same sandbox flows use (no \
            files, no environment unless --env). The exit status is the module's; 124 for a timeout, 134 for a \
            trap or out of memory, 1 for other failures.

              echo '{"payload":{"order_id":"123"},"headers":{},"direction":"inbound"}' | fiso-flow wasm run enrich.wasm
            """
    )

    @Argument(help: "The module (.wasm, or gzip-compressed).") var module: String
    @Option(help: "Read the input from this file instead of stdin.") var input: String?
    @OptionGroup var limits: WasmLimitOptions

    func run() async throws {
        let transformer = try await loadModule(
            module, configuration: try limits.configuration(), engine: try limits.selectedEngine()
        )
        let stdin = try readInput(input)
        let result = try await transformer.execute(stdin: stdin)
        let execution = result.execution
        FileHandle.standardOutput.write(Data(execution.stdout))
        FileHandle.standardError.write(Data(execution.stderr))
        if case .failed(let error) = execution.termination {
            FileHandle.standardError.write(Data("fiso-flow: \(error.message)\n".utf8))
        }
        let status = execution.commandLineExitStatus
        if status != 0 { throw ExitCode(status) }
    }
}

struct WasmValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check that a module can run as a flow interceptor.",
        discussion: """
            Checks the binary, that it is a WASI command with _start (with --mode reactor: that it exports \
            memory, fiso_alloc and fiso_handle with the right types), that every import is one fiso-flow \
            provides; prints size, gzip size, imports and memory, and warns over the 1 MiB ConfigMap limit. \
            Exits 1 when the module cannot run.
            """
    )

    @Argument(help: "The module (.wasm, or gzip-compressed).") var module: String
    @Option(help: "command (the default) or reactor: the mode the flow will run the module in.")
    var mode: String = "command"

    func run() async throws {
        guard let executionMode = WasmExecutionMode(named: mode) else {
            throw ValidationError("--mode: use command or reactor, not \"\(mode)\"")
        }
        let report = WasmModuleReport.inspect(path: module, mode: executionMode)
        print(report.rendered(), terminator: report.rendered().hasSuffix("\n") ? "" : "\n")
        if !report.isValid { throw ExitCode(1) }
    }
}

struct WasmConfigMapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configmap",
        abstract: "Print a Kubernetes ConfigMap holding the modules as binaryData.",
        discussion: """
            The same YAML as `kubectl create configmap NAME --from-file=… --dry-run=client -o yaml`, without \
            manual base64. MODULE is PATH or KEY=PATH. Refuses (with advice) when the ConfigMap would exceed 1 MiB.

              fiso-flow wasm configmap wasm-modules enrich.wasm --namespace production | kubectl apply -f -
            """
    )

    @Argument(help: "The ConfigMap's name.") var name: String
    @Argument(help: "Modules: PATH or KEY=PATH.") var modules: [String]
    @Option(help: "The ConfigMap's namespace.") var namespace: String?
    @Flag(help: "gzip each module (keys get .gz; fiso-flow loads gzip-compressed modules directly).") var gzip = false

    func run() throws {
        guard !modules.isEmpty else { throw ValidationError("name at least one module") }
        do {
            let entries = try WasmConfigMap.entries(from: modules, gzip: gzip)
            print(try WasmConfigMap.render(name: name, namespace: namespace, entries: entries), terminator: "")
        } catch {
            FileHandle.standardError.write(Data("fiso-flow: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct WasmBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a module's cost per call the way flows call it.",
        discussion: """
            Runs the module through the interceptor's call path (fresh sandbox per call, limits, concurrency \
            limit, JSON envelope in and out) and prints per-call median and p99 and calls per second. The last \
            line is `median_ms=<x> p99_ms=<y> calls_per_s=<z>`.
            """
    )

    @Argument(help: "The module (.wasm, or gzip-compressed).") var module: String
    @Option(help: "The input envelope ({\"payload\":…,\"headers\":{…}}); default: the guide's sample order.")
    var input: String?
    @Option(help: "Timed calls.") var calls: Int = 200
    @Option(help: "Calls in flight at once.") var concurrency: Int = 1
    @OptionGroup var limits: WasmLimitOptions

    func run() async throws {
        guard calls > 0, concurrency > 0 else { throw ValidationError("--calls and --concurrency must be positive") }
        var configuration = try limits.configuration()
        configuration.maxConcurrency = max(configuration.maxConcurrency, concurrency)
        let transformer = try await loadModule(
            module, configuration: configuration, engine: try limits.selectedEngine()
        )
        let envelope =
            try input.map { try readInput($0) }
            ?? Array(#"{"payload":{"order_id":"123","amount":99.99},"headers":{},"direction":"inbound"}"#.utf8)
        let transformInput: WasmTransformInput
        do {
            transformInput = try WasmTransformInput(parsingEnvelope: envelope)
        } catch {
            throw ValidationError("the input is not a module envelope: \(error.message)")
        }
        do {
            let report = try await WasmCallBenchmark.run(
                transformer, input: transformInput, calls: calls, concurrency: concurrency
            )
            print(
                "module: \(transformer.name) (engine \(transformer.engineName)), \(calls) calls, concurrency \(concurrency)"
            )
            print(report.summaryLine)
        } catch let error as WasmError {
            FileHandle.standardError.write(Data("fiso-flow: the module fails on this input: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}
