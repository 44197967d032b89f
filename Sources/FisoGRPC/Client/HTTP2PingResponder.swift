import NIOCore

/// Answers the server's HTTP/2 PING frames on a client connection before swift-nio-http2 sees them.
///
/// grpc-go servers (Temporal's frontend, most Go services) estimate the bandwidth-delay product
/// with a PING for nearly every burst of request data they receive, so a busy client gets a PING
/// per call or so. swift-nio-http2 counts inbound PINGs against a denial-of-service limit (200 per
/// 30 s) that grpc-swift-nio-transport 2.9 gives clients no way to raise, and closes the
/// connection once a busy client passes it: every call in flight then fails with `UNAVAILABLE`
/// ("Stream unexpectedly closed"), about every 200 calls. This handler sits between the socket
/// (or TLS) and the HTTP/2 handler, answers each PING with an ACK carrying the same 8 bytes (RFC
/// 9113 §6.7) and passes every other frame — PING ACKs included — through unchanged.
package final class HTTP2PingResponder: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    static let frameHeaderLength = 9
    static let pingType: UInt8 = 0x6
    static let ackFlag: UInt8 = 0x1
    static let pingPayloadLength = 8

    private enum State {
        /// Reading a frame header; holds the bytes of it that earlier reads ended with.
        case header([UInt8])
        /// Passing `remaining` more payload bytes of the current frame through.
        case payload(remaining: Int)
        /// Reading the payload of a PING this handler answers.
        case ping([UInt8])
    }

    private var state = State.header([])

    package init() {}

    /// PINGs answered so far (for tests).
    package private(set) var answered = 0

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let input = unwrapInboundIn(data)
        let end = input.writerIndex
        var index = input.readerIndex
        // Bytes from `passStart` to `index` go to the HTTP/2 handler in one piece.
        var passStart = index

        func pass(upTo position: Int) {
            guard position > passStart, let slice = input.getSlice(at: passStart, length: position - passStart)
            else { return }
            context.fireChannelRead(wrapInboundOut(slice))
        }

        while index < end {
            switch state {
            case .payload(let remaining):
                let count = min(remaining, end - index)
                index += count
                state = count == remaining ? .header([]) : .payload(remaining: remaining - count)

            case .ping(var payload):
                let count = min(Self.pingPayloadLength - payload.count, end - index)
                payload += input.getBytes(at: index, length: count) ?? []
                index += count
                passStart = index
                if payload.count == Self.pingPayloadLength {
                    answer(payload, context: context)
                    state = .header([])
                } else {
                    state = .ping(payload)
                }

            case .header(var header):
                let headerStart = index
                let earlier = header.count
                let count = min(Self.frameHeaderLength - earlier, end - index)
                header += input.getBytes(at: index, length: count) ?? []
                index += count
                guard header.count == Self.frameHeaderLength else {
                    // The read ends inside a header: keep it back until we know what frame it is.
                    pass(upTo: headerStart)
                    passStart = end
                    state = .header(header)
                    continue
                }
                let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                if header[3] == Self.pingType, header[4] & Self.ackFlag == 0, length == Self.pingPayloadLength {
                    pass(upTo: headerStart)
                    passStart = index
                    state = .ping([])
                } else {
                    if earlier > 0 {
                        // The header began in an earlier read (so `headerStart` is where this read
                        // starts): its first bytes go first.
                        context.fireChannelRead(
                            wrapInboundOut(context.channel.allocator.buffer(bytes: header[..<earlier])))
                    }
                    state = length == 0 ? .header([]) : .payload(remaining: length)
                }
            }
        }
        pass(upTo: index)
    }

    private func answer(_ payload: [UInt8], context: ChannelHandlerContext) {
        var ack = context.channel.allocator.buffer(capacity: Self.frameHeaderLength + Self.pingPayloadLength)
        ack.writeBytes([0, 0, UInt8(Self.pingPayloadLength), Self.pingType, Self.ackFlag, 0, 0, 0, 0])
        ack.writeBytes(payload)
        answered += 1
        context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
    }
}
