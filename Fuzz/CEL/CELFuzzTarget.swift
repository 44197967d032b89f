import FisoCEL
import FisoJSON

/// libFuzzer entry point: treats the input as an expression (and, after a NUL byte, as a JSON
/// payload bound to `data`), then parses, plans and evaluates it. Any crash, sanitizer report or
/// hang is a bug; compile and evaluation errors are expected outcomes.
@_cdecl("LLVMFuzzerTestOneInput")
public func celFuzzTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = UnsafeBufferPointer(start: start, count: count)
    let split = bytes.firstIndex(of: 0) ?? bytes.count
    let expression = String(decoding: bytes[..<split], as: UTF8.self)
    var payload = CELValue.null
    if split < bytes.count, let json = try? JSONValue(parsing: bytes[(split + 1)...]) {
        payload = CELValue(json: json)
    }
    CELFuzzHarness.run(expression, payload: payload)
    return 0
}

/// libFuzzer's driver, for builds whose `main` is the module's entry point (SwiftPM executables).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links executables with `main` aliased to `<module>_main`; hand control to libFuzzer.
@_cdecl("CELFuzz_main")
public func celFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return llvmFuzzerRunDriver(&count, &arguments) { start, size in celFuzzTestOneInput(start, size) }
}

enum CELFuzzHarness {
    static let environment: CELEnvironment = {
        var options = CELEnvironment.Options()
        options.costLimit = 20_000
        return CELEnvironment(variables: ["data", "x", "s", "l", "m"], options: options)
    }()

    static let lenientEnvironment: CELEnvironment = {
        var options = CELEnvironment.Options()
        options.costLimit = 20_000
        options.allowsUndeclaredReferences = true
        return CELEnvironment(options: options)
    }()

    static func run(_ expression: String, payload: CELValue) {
        let variables: CELActivation = [
            "data": payload, "x": .int(7), "s": .string("héllo wörld"), "l": [1, "two", 3.0, [true]],
            "m": .map(["k": .int(1), "nested": .map(["a": .list([])])]),
        ]
        for environment in [environment, lenientEnvironment] {
            guard let parsed = try? environment.parse(expression) else { continue }
            _ = parsed.freeIdentifiers.count
            guard let program = try? environment.compile(parsed) else { continue }
            if let value = try? program.evaluate(variables) {
                _ = value.description
                _ = try? value.jsonValue().serialized()
            }
        }
    }
}
