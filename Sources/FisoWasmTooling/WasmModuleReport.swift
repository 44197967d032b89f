import FisoQuantities
import FisoWasm

/// What `fiso-flow wasm validate MODULE` reports: whether the file is a module this runtime can
/// run (a WASI command whose imports are all provided, and that compiles), its sizes, imports and
/// memory, and whether it fits in a ConfigMap.
public struct WasmModuleReport: Sendable {
    /// How an import is satisfied.
    public enum ImportStatus: Sendable, Equatable {
        /// A WASI function this runtime implements.
        case provided
        /// A WASI function this runtime links as a stub that returns `ENOSYS` (e.g. `sock_accept`).
        case stub
        /// Not provided: instantiation would fail. The reason says why.
        case missing(String)
    }

    /// The path as given.
    public var path: String
    /// The file name (the module's `argv[0]`).
    public var name: String
    /// Size on disk, when the file could be read.
    public var fileSize: Int?
    /// Size of the WebAssembly binary (after decompression).
    public var moduleSize: Int?
    /// Whether the file is gzip-compressed.
    public var isGzipped = false
    /// Size of the binary compressed with gzip at level 9, as `--gzip` would store it.
    public var gzipSize: Int?
    /// SHA-256 of the binary.
    public var contentHash: String?
    /// The module's declarations, when the binary could be read.
    public var info: WasmModuleInfo?
    /// Every import with its status.
    public var imports: [(entry: WasmModuleInfo.Import, status: ImportStatus)] = []
    /// The engine that compiled it, and how long that took (when it did).
    public var compiled: (engine: String, duration: Duration)?
    /// Why the module cannot run here; empty when it can.
    public var problems: [String] = []
    /// What may still cause trouble (size over the ConfigMap limit, functions that are stubs).
    public var warnings: [String] = []

    /// Whether the module can be used as an interceptor.
    public var isValid: Bool { problems.isEmpty }

    /// The most a ConfigMap can hold: 1 MiB of data (Kubernetes rejects larger ones with
    /// "Too long: must have at most 1048576 bytes").
    public static let configMapLimit = 1_048_576

    /// The mode the module was checked for.
    public var mode: WasmExecutionMode = .command

    /// Reads, checks and compiles the module at `path` for `mode`. Never throws: every failure is
    /// a problem.
    public static func inspect(
        path: String,
        engine: any WasmEngine = WasmKitEngine.shared,
        mode: WasmExecutionMode = .command
    ) -> WasmModuleReport {
        var report = WasmModuleReport(path: path, name: WasmModuleFile.fileName(of: path))
        report.mode = mode
        let file: WasmModuleFile
        do {
            file = try WasmModuleFile.read(path: path)
        } catch {
            report.problems.append(error.description)
            return report
        }
        report.fileSize = file.fileSize
        report.moduleSize = file.bytes.count
        report.isGzipped = file.isGzipped
        report.contentHash = file.contentHash
        report.gzipSize = try? WasmConfigMap.gzip(file.bytes).count

        let info: WasmModuleInfo
        do {
            info = try WasmModuleInfo(reading: file.bytes)
            report.info = info
            report.examine(info)
        } catch {
            report.problems.append("not a WebAssembly module: \(error)")
            return report
        }

        if report.problems.isEmpty {
            let clock = ContinuousClock()
            let started = clock.now
            do {
                // The info read above is handed on, so the engine does not read the module again.
                let compiled = try engine.compile(
                    file.bytes, info: info, name: file.name, options: WasmCompileOptions(mode: mode))
                report.compiled = (compiled.engineName, clock.now - started)
            } catch {
                report.problems.append(error.message)
            }
        }
        report.checkConfigMapSize()
        return report
    }

    private mutating func examine(_ info: WasmModuleInfo) {
        if mode == .reactor {
            examineReactorExports(info)
        } else {
            examineCommandExports(info)
        }
        examineImports(info)
    }

    /// The reactor ABI's exports, with the engines' own messages.
    private mutating func examineReactorExports(_ info: WasmModuleInfo) {
        // Imports are examined one by one below.
        do {
            try info.checkReactorExports(module: name)
        } catch {
            problems.append(String(error.message.trimmingPrefix("wasm: invalid module: ")))
        }
    }

    private mutating func examineCommandExports(_ info: WasmModuleInfo) {
        switch info.export(named: "_start")?.kind {
        case .function(let signature)?:
            if let signature, !signature.parameters.isEmpty || !signature.results.isEmpty {
                problems.append("_start must take and return nothing, but its type is \(signature)")
            }
        case nil:
            let reactor = info.export(named: "_initialize") != nil
            problems.append(
                "not a WASI command: no exported _start function"
                    + (reactor ? " (it exports _initialize: a reactor, which the command ABI cannot run)" : "")
                    + "; build an executable (GOOS=wasip1 GOARCH=wasm go build, tinygo -target=wasi, "
                    + "cargo --target wasm32-wasip1, clang --target=wasm32-wasi)"
            )
        case _?:
            problems.append("_start is exported but is not a function")
        }
        if case .memory? = info.export(named: "memory")?.kind {
        } else if info.imports.contains(where: { $0.module == WASIFunctions.moduleName }) {
            problems.append("exports no memory named \"memory\", which WASI functions need")
        }
    }

    private mutating func examineImports(_ info: WasmModuleInfo) {
        let unsatisfied = Dictionary(
            WASIFunctions.unsatisfiedImports(of: info).map { ("\($0.0.module).\($0.0.name)", $0.1) },
            uniquingKeysWith: { first, _ in first }
        )
        for entry in info.imports {
            let status: ImportStatus
            if let reason = unsatisfied["\(entry.module).\(entry.name)"] {
                status = .missing(reason)
                problems.append("imports \(entry.module).\(entry.name), which is not provided: \(reason)")
            } else if WASIFunctions.stubs.contains(entry.name) {
                status = .stub
            } else {
                status = .provided
            }
            imports.append((entry, status))
        }
        let stubs = imports.filter { $0.status == .stub }.map(\.entry.name)
        if !stubs.isEmpty {
            warnings.append(
                "imports \(stubs.joined(separator: ", ")), which this runtime provides only as stubs that fail with ENOSYS"
            )
        }
    }

    private mutating func checkConfigMapSize() {
        guard let fileSize, fileSize > Self.configMapLimit else { return }
        var advice =
            "\(name) is \(Self.formatSize(fileSize)), more than the 1 MiB (1048576 bytes) a ConfigMap can hold. "
        if !isGzipped, let gzipSize {
            if gzipSize <= Self.configMapLimit {
                advice +=
                    "Compressed with gzip -9 it is \(Self.formatSize(gzipSize)) and fits: Fiso-Flow loads gzip modules "
                    + "directly (`fiso-flow wasm configmap NAME \(name) --gzip`). "
            } else {
                advice += "Even gzip -9 leaves \(Self.formatSize(gzipSize)). "
            }
        }
        advice +=
            "To shrink it: build standard Go with -ldflags=\"-s -w\", or use TinyGo; otherwise mount it from a "
            + "volume filled by an init container (see the deployment guide, \"Size Considerations and Limits\")."
        warnings.append(advice)
    }

    /// `4495013 bytes (4.3 MiB)`
    static func formatSize(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        let (value, unit) = bytes < 1 << 20 ? (Double(bytes) / 1024, "KiB") : (Double(bytes) / 1_048_576, "MiB")
        let rounded = (value * 10).rounded() / 10
        return "\(bytes) bytes (\(rounded) \(unit))"
    }

    /// The report as `fiso-flow wasm validate` prints it.
    public func rendered() -> String {
        var lines: [String] = []
        func line(_ label: String, _ value: String) {
            lines.append(label + String(repeating: " ", count: max(1, 11 - label.count)) + value)
        }
        line("module:", path)
        if let fileSize, let moduleSize {
            var size = Self.formatSize(moduleSize)
            if isGzipped { size += ", stored gzip-compressed in \(Self.formatSize(fileSize))" }
            line("size:", size)
            if let gzipSize, !isGzipped { line("gzip -9:", Self.formatSize(gzipSize)) }
        }
        if let contentHash { line("sha256:", contentHash) }
        if let info {
            let isCommand: Bool
            if case .function? = info.export(named: "_start")?.kind { isCommand = true } else { isCommand = false }
            let isReactor = info.exportsReactorHandler
            if mode == .reactor {
                line("kind:", isReactor ? "Fiso reactor (exports fiso_alloc, fiso_handle)" : "not a Fiso reactor")
            } else {
                line("kind:", isCommand ? "WASI command (exports _start)" : "not a WASI command (no _start export)")
            }
            line("memory:", Self.describeMemory(info))
            let provided = imports.filter { $0.status != .provided }.isEmpty
            line(
                "imports:",
                "\(imports.count)" + (imports.isEmpty ? "" : provided ? ", all provided" : ", not all provided")
            )
            for (entry, status) in imports {
                var text = "  \(entry.module).\(entry.name)"
                if case .function(let signature?) = entry.kind { text += " \(signature)" }
                switch status {
                case .provided: text += "  provided"
                case .stub: text += "  stub (ENOSYS)"
                case .missing(let reason): text += "  MISSING: \(reason)"
                }
                lines.append(text)
            }
            line("exports:", info.exports.map(\.name).joined(separator: ", "))
        }
        if let compiled {
            let milliseconds =
                Double(compiled.duration.components.seconds) * 1000 + Double(compiled.duration.components.attoseconds)
                * 1e-15
            line(
                "compiled:", "ok with \(compiled.engine) in \(WasmBenchmarkReport.format(milliseconds, decimals: 1)) ms"
            )
        }
        if let fileSize {
            line(
                "configmap:",
                fileSize <= Self.configMapLimit
                    ? "fits (\(Self.formatSize(fileSize)) of 1048576 bytes)"
                    : "too large (\(Self.formatSize(fileSize)) of 1048576 bytes)"
            )
        }
        for warning in warnings { lines.append("warning: \(warning)") }
        for problem in problems { lines.append("error: \(problem)") }
        lines.append(
            isValid ? "valid: \(name) can run as a Fiso-Flow wasm interceptor" : "invalid: \(name) cannot run here")
        return lines.joined(separator: "\n") + "\n"
    }

    static func describeMemory(_ info: WasmModuleInfo) -> String {
        let imported = info.imports.compactMap { entry -> WasmModuleInfo.Limits? in
            if case .memory(let limits) = entry.kind { return limits }
            return nil
        }
        guard let memory = imported.first ?? info.memories.first else { return "none" }
        let page = UInt64(WasmModuleInfo.pageSize)
        var text = "\(memory.minimum) pages initial (\(ByteSize.formatQuantity(Int(memory.minimum * page))))"
        if let maximum = memory.maximum {
            text += ", at most \(maximum) pages (\(ByteSize.formatQuantity(Int(maximum * page))))"
        } else {
            text += ", no maximum"
        }
        if !imported.isEmpty { text += ", imported" }
        if memory.isShared { text += ", shared" }
        if memory.is64Bit { text += ", 64-bit" }
        return text
    }
}
