@_spi(Fuzzing) import WasmKit

/// Measures how much fuel WasmKit burns per second on this machine, so that a wall-clock timeout
/// can be turned into a fuel budget.
///
/// WasmKit can only stop a running instance by fuel (a store's fuel may not be touched from another
/// thread, and a call that runs out of fuel cannot be resumed), so each call gets
/// `timeout × fuelPerSecond × safety factor` units. The calibration runs three small loops
/// (a counter, a count-down and a loop with loads and stores), each three times, and keeps the
/// highest rate: real code burns fuel no faster than its tightest loop, so a module is not stopped
/// by fuel before its timeout unless it is far faster than anything measured here. Slower code
/// (many calls, bulk memory) runs past its timeout before its fuel is gone; the executor answers
/// the caller at the timeout regardless (see docs/wasm.md, "Timeouts").
enum FuelCalibration {
    /// The fastest rate measured, in fuel units per second.
    static func measureFuelPerSecond(configuration: EngineConfiguration) -> Double {
        var configuration = configuration
        configuration.fuelMetering = true
        let engine = Engine(configuration: configuration)
        guard let module = try? parseWasm(bytes: calibrationModule) else { return fallbackFuelPerSecond }
        var best = 0.0
        for export in ["count", "countdown", "memory"] {
            let store = Store(engine: engine)
            guard let instance = try? module.instantiate(store: store),
                let function = instance.exports[function: export]
            else { continue }
            var iterations: UInt32 = 50_000
            for _ in 0..<12 {
                let (fuel, elapsed) = burn(function, store: store, iterations: iterations)
                if elapsed >= .milliseconds(5) || iterations >= 1 << 30 {
                    best = max(best, rate(fuel: fuel, elapsed: elapsed))
                    break
                }
                iterations *= 4
            }
            for _ in 0..<2 {
                let (fuel, elapsed) = burn(function, store: store, iterations: iterations)
                best = max(best, rate(fuel: fuel, elapsed: elapsed))
            }
        }
        return best > 0 ? best : fallbackFuelPerSecond
    }

    /// Used if the calibration module cannot run (it always can; this keeps the engine usable).
    static let fallbackFuelPerSecond = 500_000_000.0

    private static func burn(_ function: Function, store: Store, iterations: UInt32) -> (UInt64, Duration) {
        let budget = UInt64.max / 2
        store.fuel = Fuel(remaining: budget)
        let clock = ContinuousClock()
        let started = clock.now
        _ = try? function([.i32(iterations)])
        let elapsed = clock.now - started
        return (budget - (store.fuel?.remaining ?? budget), elapsed)
    }

    private static func rate(fuel: UInt64, elapsed: Duration) -> Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return seconds > 0 ? Double(fuel) / seconds : 0
    }

    /// Three exported functions `(param i32 n) (result i32)` that loop n times:
    ///
    ///     (module
    ///       (memory 1)
    ///       (func (export "count") (param $n i32) (result i32) (local $i i32)
    ///         (loop $again
    ///           (local.set $i (i32.add (local.get $i) (i32.const 1)))
    ///           (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    ///         (local.get $i))
    ///       (func (export "countdown") (param $n i32) (result i32)
    ///         (loop $again
    ///           (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    ///         (local.get $n))
    ///       (func (export "memory") (param $n i32) (result i32) (local $i i32) (local $sum i32)
    ///         (loop $again
    ///           (i32.store (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 4092)) (local.get $sum))
    ///           (local.set $sum (i32.add (local.get $sum) (i32.load (i32.and (local.get $i) (i32.const 4092)))))
    ///           (local.set $i (i32.add (local.get $i) (i32.const 1)))
    ///           (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    ///         (local.get $sum)))
    static let calibrationModule: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x04,
        0x03, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x1e, 0x03, 0x05, 0x63, 0x6f, 0x75, 0x6e, 0x74,
        0x00, 0x00, 0x09, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x64, 0x6f, 0x77, 0x6e, 0x00, 0x01, 0x06, 0x6d, 0x65, 0x6d,
        0x6f, 0x72, 0x79, 0x00, 0x02, 0x0a, 0x5e, 0x03, 0x17, 0x01, 0x01, 0x7f, 0x03, 0x40, 0x20, 0x01, 0x41, 0x01,
        0x6a, 0x21, 0x01, 0x20, 0x01, 0x20, 0x00, 0x49, 0x0d, 0x00, 0x0b, 0x20, 0x01, 0x0b, 0x10, 0x00, 0x03, 0x40,
        0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b, 0x33, 0x01, 0x02, 0x7f, 0x03,
        0x40, 0x20, 0x01, 0x41, 0x02, 0x74, 0x41, 0xfc, 0x1f, 0x71, 0x20, 0x02, 0x36, 0x02, 0x00, 0x20, 0x02, 0x20,
        0x01, 0x41, 0xfc, 0x1f, 0x71, 0x28, 0x02, 0x00, 0x6a, 0x21, 0x02, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01,
        0x20, 0x01, 0x20, 0x00, 0x49, 0x0d, 0x00, 0x0b, 0x20, 0x02, 0x0b,
    ]
}
