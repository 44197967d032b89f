import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Random (version 4) UUIDs as lowercase text, for CloudEvent and correlation ids.
///
/// Every event needs one or two, and `UUID().uuidString.lowercased()` costs a system call for
/// the random bytes plus two string conversions; this takes the bytes from a block refilled by one
/// read of the kernel's random source per 256 ids and writes the text directly.
enum RandomUUID {
    private static let pool = NIOLockedValueBox(RandomBytePool())

    /// A new random UUID, e.g. `"9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"`.
    static func make() -> String {
        var bytes = pool.withLockedValue { $0.take16() }
        bytes.6 = (bytes.6 & 0x0F) | 0x40  // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // RFC 4122 variant
        return withUnsafeBytes(of: &bytes) { raw in
            String(unsafeUninitializedCapacity: 36) { text in
                let digits: StaticString = "0123456789abcdef"
                var position = 0
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    text[position] = digits.utf8Start[Int(byte >> 4)]
                    text[position + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }
}

/// Random bytes fetched from the system a block at a time.
private struct RandomBytePool {
    typealias Sixteen = (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
    )

    private var block = [UInt64](repeating: 0, count: 512)
    private var next = 512

    mutating func take16() -> Sixteen {
        if next + 2 > block.count { refill() }
        defer { next += 2 }
        let words = (block[next], block[next + 1])
        return unsafeBitCast(words, to: Sixteen.self)
    }

    private mutating func refill() {
        block.withUnsafeMutableBytes { buffer in
            if Self.readSystemRandom(into: buffer) { return }
            var generator = SystemRandomNumberGenerator()
            for index in 0..<buffer.count / 8 {
                buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: index * 8, as: UInt64.self)
            }
        }
        next = 0
    }

    /// Fills `buffer` from the kernel's random source in one read; false when that failed.
    private static func readSystemRandom(into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return read(descriptor, buffer.baseAddress, buffer.count) == buffer.count
    }
}
