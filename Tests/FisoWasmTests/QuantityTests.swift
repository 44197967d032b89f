import FisoWasm
import Testing

@Suite struct QuantityTests {
    @Test func goDurations() {
        #expect(WasmQuantity.parseDuration("5s") == .seconds(5))
        #expect(WasmQuantity.parseDuration("200ms") == .milliseconds(200))
        #expect(WasmQuantity.parseDuration("1m30s") == .seconds(90))
        #expect(WasmQuantity.parseDuration("1.5s") == .milliseconds(1500))
        #expect(WasmQuantity.parseDuration("250us") == .microseconds(250))
        #expect(WasmQuantity.parseDuration("250µs") == .microseconds(250))
        #expect(WasmQuantity.parseDuration("1h") == .seconds(3600))
        #expect(WasmQuantity.parseDuration("0") == .zero)
        for bad in ["", "5", "five seconds", "-1s", "5 s", "1d", "s"] {
            #expect(WasmQuantity.parseDuration(bad) == nil, "\(bad)")
        }
    }

    @Test func formattedLikeGo() {
        #expect(WasmQuantity.format(.milliseconds(200)) == "200ms")
        #expect(WasmQuantity.format(.seconds(5)) == "5s")
        #expect(WasmQuantity.format(.milliseconds(1500)) == "1.5s")
        #expect(WasmQuantity.format(.seconds(90)) == "1m30s")
        #expect(WasmQuantity.format(.seconds(3600)) == "1h0m0s")
        #expect(WasmQuantity.format(.microseconds(1500)) == "1.5ms")
        #expect(WasmQuantity.format(.zero) == "0s")
    }

    @Test func kubernetesByteSizes() {
        #expect(WasmQuantity.parseByteSize("128Mi") == 128 << 20)
        #expect(WasmQuantity.parseByteSize("64Ki") == 64 << 10)
        #expect(WasmQuantity.parseByteSize("1Gi") == 1 << 30)
        #expect(WasmQuantity.parseByteSize("100M") == 100_000_000)
        #expect(WasmQuantity.parseByteSize("4194304") == 4_194_304)
        #expect(WasmQuantity.parseByteSize("1.5Mi") == 1_572_864)
        for bad in ["", "Mi", "12XB", "-1Mi", "1 Mi"] {
            #expect(WasmQuantity.parseByteSize(bad) == nil, "\(bad)")
        }
        #expect(WasmQuantity.formatBytes(128 << 20) == "128Mi")
        #expect(WasmQuantity.formatBytes(1536 << 10) == "1536Ki")
        #expect(WasmQuantity.formatBytes(1000) == "1000")
    }

    @Test func configurationProblems() {
        #expect(WasmModuleConfiguration().problems.isEmpty)
        #expect(WasmModuleConfiguration(timeout: .zero, memoryLimitBytes: 10, maxConcurrency: 0).problems.count == 3)
    }
}
