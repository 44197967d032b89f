import FisoGRPC
import NIOCore
import NIOEmbedded
import Testing

/// The client-side PING responder on raw HTTP/2 frames, as the server's bytes arrive in reads of
/// any size.
@Suite("HTTP/2 PING responder")
struct HTTP2PingResponderTests {
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [
            UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
            UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff),
        ] + payload
    }

    static let settings = frame(type: 0x4, payload: [0, 3, 0, 0, 0, 100])
    static let ping = frame(type: 0x6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
    static let pingAck = frame(type: 0x6, flags: 0x1, payload: [9, 9, 9, 9, 9, 9, 9, 9])
    static let data = frame(type: 0x0, flags: 0x1, stream: 1, payload: Array(repeating: 0x6, count: 40))
    static let emptyHeaders = frame(type: 0x1, flags: 0x4, stream: 3, payload: [])
    static let answer = frame(type: 0x6, flags: 0x1, payload: [1, 2, 3, 4, 5, 6, 7, 8])

    /// Feeds `bytes` in reads of `chunk` bytes; returns what went on to the HTTP/2 handler and what
    /// was written back to the server.
    static func run(_ bytes: [UInt8], chunk: Int) throws -> (passed: [UInt8], written: [UInt8], answered: Int) {
        let responder = HTTP2PingResponder()
        let channel = EmbeddedChannel(handler: responder)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes[offset..<end]))
            offset = end
        }
        var passed: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { passed += Array(buffer.readableBytesView) }
        var written: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += Array(buffer.readableBytesView) }
        _ = try channel.finish()
        return (passed, written, responder.answered)
    }

    @Test(
        "PINGs are answered with their payload and removed; every other frame passes byte for byte",
        arguments: [1, 2, 5, 9, 10, 17, 1000])
    func answersAndPasses(chunk: Int) throws {
        let stream = Self.settings + Self.ping + Self.data + Self.pingAck + Self.ping + Self.emptyHeaders + Self.data
        let result = try Self.run(stream, chunk: chunk)
        #expect(result.passed == Self.settings + Self.data + Self.pingAck + Self.emptyHeaders + Self.data)
        #expect(result.written == Self.answer + Self.answer)
        #expect(result.answered == 2)
    }

    @Test("a PING-typed frame of the wrong length is left to the HTTP/2 handler (which rejects it)")
    func malformedPingPasses() throws {
        let odd = Self.frame(type: 0x6, payload: [1, 2, 3])
        let result = try Self.run(odd + Self.data, chunk: 4)
        #expect(result.passed == odd + Self.data)
        #expect(result.written.isEmpty)
    }
}
