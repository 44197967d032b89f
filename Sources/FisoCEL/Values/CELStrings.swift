#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// String operations with CEL semantics: strings are sequences of code points, compared and
/// hashed by their UTF-8 bytes (Swift's own `==` applies Unicode canonical equivalence, CEL's does not).
enum CELStrings {
    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        var left = lhs
        var right = rhs
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in
                leftBytes.count == rightBytes.count
                    && (leftBytes.count == 0
                        || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, leftBytes.count) == 0)
            }
        }
    }

    /// Three-way comparison by UTF-8 bytes, which is code point order.
    static func compare(_ lhs: String, _ rhs: String) -> Int {
        var left = lhs
        var right = rhs
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in
                compareBytes(leftBytes, rightBytes)
            }
        }
    }

    static func compareBytes(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(left.count, right.count)
        if common > 0 {
            let order = memcmp(left.baseAddress!, right.baseAddress!, common)
            if order != 0 { return order < 0 ? -1 : 1 }
        }
        return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
    }

    static func compareBytes(_ left: [UInt8], _ right: [UInt8]) -> Int {
        left.withUnsafeBufferPointer { leftBuffer in
            right.withUnsafeBufferPointer { rightBuffer in compareBytes(leftBuffer, rightBuffer) }
        }
    }

    static func hashBytes(_ value: String, into hasher: inout Hasher) {
        var copy = value
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(value.utf8.count)
    }

    /// The number of code points.
    static func length(_ value: String) -> Int {
        var copy = value
        return copy.withUTF8 { bytes in
            // Count bytes that are not UTF-8 continuation bytes.
            var count = 0
            for byte in bytes where byte & 0xC0 != 0x80 { count += 1 }
            return count
        }
    }

    /// The code points as an array, for index-based operations.
    static func scalars(_ value: String) -> [Unicode.Scalar] { Array(value.unicodeScalars) }

    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// The UTF-8 offset of the first occurrence of `needle` in `haystack`, or nil.
    static func byteOffset(of needle: String, in haystack: String) -> Int? {
        var haystackCopy = haystack
        var needleCopy = needle
        return haystackCopy.withUTF8 { text in
            needleCopy.withUTF8 { pattern in
                guard pattern.count > 0 else { return 0 }
                guard pattern.count <= text.count else { return nil }
                let first = pattern[0]
                let lastStart = text.count - pattern.count
                var position = 0
                while position <= lastStart {
                    guard
                        let found = memchr(text.baseAddress! + position, Int32(first), lastStart - position + 1)
                    else { return nil }
                    let candidate = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - text.baseAddress!
                    if memcmp(text.baseAddress! + candidate, pattern.baseAddress!, pattern.count) == 0 {
                        return candidate
                    }
                    position = candidate + 1
                }
                return nil
            }
        }
    }
}
