import FisoQuantities
import Testing

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("5s", Duration.seconds(5)), ("250ms", .milliseconds(250)), ("1m30s", .seconds(90)), ("1.5h", .seconds(5400)),
        ("100us", .microseconds(100)), ("250µs", .microseconds(250)), ("0", .zero), ("2h45m", .seconds(9900)),
        ("1.5s", .milliseconds(1500)), ("-1s", .seconds(-1)), (" 5s ", .seconds(5)),
    ])
    func parsesGoDurations(text: String, expected: Duration) throws {
        #expect(try GoDuration.parse(text) == expected)
    }

    @Test(arguments: ["", "5", "s", "5 s", "1x", "1d", "1.2.3s", "--1s", "five seconds"])
    func rejectsMalformedDurations(text: String) {
        #expect(throws: GoDuration.ParseError.self) { try GoDuration.parse(text) }
    }

    @Test(arguments: [
        (Duration.milliseconds(200), "200ms"), (.seconds(5), "5s"), (.milliseconds(1500), "1.5s"),
        (.seconds(90), "1m30s"), (.seconds(120), "2m0s"), (.seconds(3600), "1h0m0s"), (.microseconds(1500), "1.5ms"),
        (.nanoseconds(1500), "1.5µs"), (.nanoseconds(7), "7ns"), (.zero, "0s"), (.seconds(-2), "-2s"),
    ])
    func formatsDurationsAsGoDoes(duration: Duration, expected: String) {
        #expect(GoDuration.format(duration) == expected)
    }

    @Test(arguments: [
        Duration.milliseconds(200), .seconds(90), .milliseconds(1500), .seconds(3600), .nanoseconds(1500),
    ])
    func formattedDurationsParseBack(duration: Duration) throws {
        #expect(try GoDuration.parse(GoDuration.format(duration)) == duration)
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [
        ("1048576", 1 << 20), ("128Mi", 128 << 20), ("512Ki", 512 << 10), ("1Gi", 1 << 30), ("10M", 10_000_000),
        ("1.5Mi", 1_572_864), ("64KiB", 64 << 10), ("300B", 300),
    ])
    func parsesByteSizes(text: String, expected: Int) throws {
        #expect(try ByteSize.parse(text) == expected)
    }

    @Test(arguments: ["", "Mi", "12Q", "12XB", "-1", "-1Mi", "1 Mi"])
    func rejectsMalformedSizes(text: String) {
        #expect(throws: ByteSize.ParseError.self) { try ByteSize.parse(text) }
    }

    @Test func formatsSizes() {
        #expect(ByteSize.format(1 << 20) == "1 MiB")
        #expect(ByteSize.format(1536 << 10) == "1.5 MiB")
        #expect(ByteSize.format(300) == "300 B")
        #expect(ByteSize.formatQuantity(128 << 20) == "128Mi")
        #expect(ByteSize.formatQuantity(1536 << 10) == "1536Ki")
        #expect(ByteSize.formatQuantity(1000) == "1000")
    }
}
