import NIOConcurrencyHelpers
import WASI
@_spi(Fuzzing) import WasmKit

/// The WebAssembly engine built on WasmKit, a Swift interpreter: always available, no native
/// dependencies.
///
/// Each call runs in a fresh `Store` and instance of the shared parsed module. WasmKit translates
/// a function the first time an instance calls it, so every call pays translation for the
/// functions it runs: about 1 ms for a small C module, about 100 ms for a standard-Go module.
public final class WasmKitEngine: WasmEngine {
    /// Engine settings.
    public struct Configuration: Sendable {
        /// Translate and validate every function of a module when it is compiled, so that a broken
        /// module is refused at load (and at hot reload) rather than failing calls later. Costs a
        /// few milliseconds for small modules and a few hundred for a standard-Go one, once per
        /// load. Default: `true`.
        public var validatesAllFunctions: Bool

        /// Multiplies the calibrated fuel budget of a call (see docs/wasm.md, "Timeouts").
        /// Default: 1.25.
        public var fuelSafetyFactor: Double

        /// Interpreter stack size, in bytes. Default: 1 MiB.
        public var interpreterStackBytes: Int

        public init(
            validatesAllFunctions: Bool = true, fuelSafetyFactor: Double = 1.25, interpreterStackBytes: Int = 1 << 20
        ) {
            self.validatesAllFunctions = validatesAllFunctions
            self.fuelSafetyFactor = fuelSafetyFactor
            self.interpreterStackBytes = interpreterStackBytes
        }
    }

    public let name = "wasmkit"
    public let configuration: Configuration
    private let calibratedFuelPerSecond = NIOLockedValueBox<Double?>(nil)
    /// Idle WasmKit engines. Each run borrows one, so an engine (with its type interner) is used
    /// by one thread at a time and handed over through this lock: no contention between runs,
    /// and an ordering ThreadSanitizer can see (WasmKit's own lock is invisible to it).
    private let idleEngines = NIOLockedValueBox<[Engine]>([])

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Runs `body` with a WasmKit engine no other run is using.
    func withRuntimeEngine<Result>(_ body: (Engine) throws -> Result) rethrows -> Result {
        let engine =
            idleEngines.withLockedValue { $0.popLast() }
            ?? Engine(configuration: Self.engineConfiguration(configuration, metered: true))
        defer { idleEngines.withLockedValue { $0.append(engine) } }
        return try body(engine)
    }

    /// Takes a WasmKit engine for as long as a reactor instance lives; give it back with
    /// ``returnRuntimeEngine(_:)`` when the instance is discarded.
    func borrowRuntimeEngine() -> Engine {
        idleEngines.withLockedValue { $0.popLast() }
            ?? Engine(configuration: Self.engineConfiguration(configuration, metered: true))
    }

    func returnRuntimeEngine(_ engine: Engine) {
        idleEngines.withLockedValue { $0.append(engine) }
    }

    /// One engine for the whole process.
    public static let shared = WasmKitEngine()

    static func engineConfiguration(_ configuration: Configuration, metered: Bool) -> EngineConfiguration {
        EngineConfiguration(
            compilationMode: .lazy,
            stackSize: configuration.interpreterStackBytes,
            fuelMetering: metered
        )
    }

    /// Fuel units this machine burns per second in the fastest calibration loop; measured on first
    /// use (a few tens of milliseconds), then cached.
    public var fuelPerSecond: Double {
        if let rate = calibratedFuelPerSecond.withLockedValue({ $0 }) { return rate }
        let measured = FuelCalibration.measureFuelPerSecond(
            configuration: Self.engineConfiguration(configuration, metered: true)
        )
        return calibratedFuelPerSecond.withLockedValue { rate in
            if rate == nil { rate = measured }
            return rate ?? measured
        }
    }

    /// The fuel budget a call with `timeout` gets.
    func fuelBudget(for timeout: Duration) -> UInt64 {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
        let budget = seconds * fuelPerSecond * configuration.fuelSafetyFactor
        guard budget.isFinite, budget > 0 else { return 10_000 }
        return budget >= Double(UInt64.max / 2) ? UInt64.max / 2 : max(10_000, UInt64(budget))
    }

    public func compile(_ bytes: [UInt8], name: String, options: WasmCompileOptions) throws(WasmError)
        -> any CompiledWasmModule
    {
        try compile(bytes, info: WasmCommandChecks.read(bytes, name: name), name: name, options: options)
    }

    public func compile(_ bytes: [UInt8], info: WasmModuleInfo, name: String, options: WasmCompileOptions)
        throws(WasmError) -> any CompiledWasmModule
    {
        guard options.mode == .command || options.mode == .reactor else {
            throw .invalidModule("mode \"\(options.mode)\" is not supported by the \(self.name) engine", module: name)
        }
        try WasmCommandChecks.check(info: info, mode: options.mode, name: name)
        let module: Module
        do {
            module = try parseWasm(bytes: bytes)
        } catch {
            throw .invalidModule("\(error)", module: name)
        }
        if configuration.validatesAllFunctions {
            try validateAllFunctions(module, info: info, name: name)
        }
        _ = fuelPerSecond  // calibrate now, off the request path
        let compiled = WasmKitCompiledModule(
            name: name,
            engine: self,
            module: module,
            wasiImports: info.imports.map(\.name)
        )
        if options.mode == .reactor {
            return WasmKitReactorModule(linking: compiled, settings: options.reactorPool)
        }
        return compiled
    }

    /// Instantiates the module once on an eagerly translating engine, with its start function
    /// dropped and every import a stub, so that every function body is validated now.
    func validateAllFunctions(_ module: Module, info: WasmModuleInfo, name: String) throws(WasmError) {
        var module = module
        module.dropStartFunction()
        var engineConfiguration = Self.engineConfiguration(configuration, metered: false)
        engineConfiguration.compilationMode = .eager
        let store = Store(engine: Engine(configuration: engineConfiguration))
        var imports = Imports()
        for entry in info.imports {
            guard let signature = WASIFunctions.provided[entry.name] else { continue }
            let type = FunctionType(
                parameters: signature.parameters.map(\.wasmKitType),
                results: signature.results.map(\.wasmKitType)
            )
            imports.define(
                module: entry.module,
                name: entry.name,
                Function(store: store, type: type) { _, _ in throw WASIError(description: "validation stub") }
            )
        }
        do {
            _ = try module.instantiate(store: store, imports: imports)
        } catch {
            throw .invalidModule("\(error)", module: name)
        }
    }
}

extension WasmModuleInfo.ValueType {
    fileprivate var wasmKitType: ValueType {
        switch self {
        case .i32: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        case .v128: .v128
        case .funcref: .ref(.funcRef)
        case .externref, .otherReference: .ref(.externRef)
        }
    }
}
