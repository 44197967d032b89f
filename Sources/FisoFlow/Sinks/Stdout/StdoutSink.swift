import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `sink.type: stdout` has no settings.
public struct StdoutSinkSettings: SinkSettings {}

extension StdoutSinkSettings {
    public static let typeName = "stdout"
    public static let configKeys: [String] = []

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        StdoutSinkSettings()
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSink {
        StdoutSink(output: context.standardOutput)
    }
}

/// Writes each CloudEvent as one line of JSON to standard output, for the quick start and for
/// debugging. Logs go to standard error, so the two never mix.
struct StdoutSink: EventSink {
    let output: StandardOutput

    func deliver(_ event: OutboundEvent, context: DeliveryContext) async throws -> SinkReply {
        do {
            try output.writeLine(event.body)
        } catch {
            throw SinkError("cannot write to standard output: \(error)", isRetryable: false)
        }
        return .none
    }

    func shutdown() async {}
}

/// Standard output shared by every stdout sink of the process; one line per write, never interleaved.
public final class StandardOutput: Sendable {
    public struct WriteError: Error, CustomStringConvertible {
        var errno: Int32
        public var description: String { String(cString: strerror(errno)) }
    }

    private let lock = NIOLockedValueBox(())
    private let descriptor: Int32

    public init(descriptor: Int32 = 1) {
        self.descriptor = descriptor
    }

    public func writeLine(_ bytes: [UInt8]) throws {
        var line = bytes
        line.append(UInt8(ascii: "\n"))
        try lock.withLockedValue { _ in
            try line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw WriteError(errno: errno)
                    }
                    offset += written
                }
            }
        }
    }
}
