import FisoWasm
import Testing

@Suite struct ModuleConfigurationTests {
    @Test func configurationProblems() {
        #expect(WasmModuleConfiguration().problems.isEmpty)
        #expect(WasmModuleConfiguration(timeout: .zero, memoryLimitBytes: 10, maxConcurrency: 0).problems.count == 3)
    }
}
