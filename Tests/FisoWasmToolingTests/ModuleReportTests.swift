import FisoWasm
import FisoWasmTestSupport
import FisoWasmTooling
import Foundation
import Testing

/// What `fiso-flow wasm validate` reports.
@Suite struct ModuleReportTests {
    @Test func validCModule() async throws {
        let report = try await Blocking.run {
            WasmModuleReport.inspect(path: ExampleModules.path("enrich-c/enrich.wasm"))
        }
        print(report.rendered())
        #expect(report.isValid)
        #expect(report.problems.isEmpty)
        #expect(report.warnings.isEmpty)
        #expect(report.compiled?.engine == "wasmkit")
        #expect(report.imports.map(\.entry.name).contains("fd_write"))
        #expect(report.imports.allSatisfy { $0.status == .provided })
        let text = report.rendered()
        #expect(text.contains("kind:      WASI command (exports _start)"))
        #expect(text.contains("memory:    "))
        #expect(text.contains("wasi_snapshot_preview1.fd_write (i32, i32, i32, i32) -> i32  provided"))
        #expect(text.contains("configmap: fits"))
        #expect(text.hasSuffix("valid: enrich.wasm can run as a Fiso-Flow wasm interceptor\n"))
    }

    @Test func gzipModule() async throws {
        let report = try await Blocking.run {
            WasmModuleReport.inspect(path: ExampleModules.path("enrich-c/enrich.wasm.gz"))
        }
        #expect(report.isValid)
        #expect(report.isGzipped)
        #expect(report.rendered().contains("stored gzip-compressed in"))
    }

    /// The standard-Go module is over the ConfigMap limit: a warning with the advice, not an error.
    @Test func largeGoModuleGetsConfigMapAdvice() async throws {
        let report = try await Blocking.run {
            WasmModuleReport.inspect(path: ExampleModules.path("enrich-go/enrich.wasm"))
        }
        print(report.rendered())
        #expect(report.isValid)
        #expect((report.fileSize ?? 0) > WasmModuleReport.configMapLimit)
        #expect(report.warnings.count == 1)
        #expect(report.warnings.first?.contains("more than the 1 MiB (1048576 bytes) a ConfigMap can hold") == true)
        #expect(report.warnings.first?.contains("-ldflags=\"-s -w\"") == true)
        #expect(report.warnings.first?.contains("init container") == true)
        #expect(report.rendered().contains("configmap: too large"))
    }

    @Test func unknownImportIsReported() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("bad.wasm", TestModules.unknownImport)
        let report = try await Blocking.run { WasmModuleReport.inspect(path: directory.file("bad.wasm")) }
        #expect(!report.isValid)
        #expect(report.imports.first?.status == .missing("only wasi_snapshot_preview1 functions are provided"))
        let text = report.rendered()
        #expect(text.contains("env.log (i32) -> ()  MISSING: only wasi_snapshot_preview1 functions are provided"))
        #expect(text.hasSuffix("invalid: bad.wasm cannot run here\n"))
    }

    @Test func reactorIsNotACommand() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("reactor.wasm", TestModules.reactor)
        let report = try await Blocking.run { WasmModuleReport.inspect(path: directory.file("reactor.wasm")) }
        #expect(!report.isValid)
        #expect(report.problems.first?.contains("it exports _initialize: a reactor") == true)
    }

    @Test func missingFile() async throws {
        let report = try await Blocking.run { WasmModuleReport.inspect(path: "/nonexistent/enrich.wasm") }
        #expect(!report.isValid)
        #expect(report.problems == ["wasm module not found path=/nonexistent/enrich.wasm"])
    }

    @Test func invalidFunctionBodyFailsCompilation() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("invalid.wasm", TestModules.invalidFunctionBody)
        let report = try await Blocking.run { WasmModuleReport.inspect(path: directory.file("invalid.wasm")) }
        #expect(!report.isValid)
        #expect(report.compiled == nil)
        print(report.problems)
    }
}

/// `fiso-flow wasm validate --mode reactor`: the reactor ABI's exports instead of `_start`.
@Suite struct ReactorInspectionTests {
    @Test func reactorModulesAreCheckedForTheReactorABI() async throws {
        let (reactor, command, missing) = try await Blocking.run {
            (
                WasmModuleReport.inspect(path: ExampleModules.path("enrich-reactor-c/enrich.wasm"), mode: .reactor),
                WasmModuleReport.inspect(path: ExampleModules.path("enrich-c/enrich.wasm"), mode: .reactor),
                WasmModuleReport.inspect(
                    path: ExampleModules.path("faults/reactor-missing-handle.wasm"), mode: .reactor)
            )
        }
        #expect(reactor.isValid, "\(reactor.problems)")
        #expect(reactor.rendered().contains("Fiso reactor (exports fiso_alloc, fiso_handle)"))
        #expect(reactor.compiled != nil)
        #expect(command.problems.first?.hasPrefix("not a reactor: no exported fiso_alloc function") == true)
        #expect(missing.problems.first?.hasPrefix("not a reactor: no exported fiso_handle function") == true)
    }
}
