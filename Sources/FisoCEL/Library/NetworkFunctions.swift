/// An IP address (`net.IP`): IPv4 or IPv6, without zone.
final class CELIPAddress: CELOpaqueValue, Equatable {
    /// 4 bytes for IPv4, 16 for IPv6.
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    static func == (lhs: CELIPAddress, rhs: CELIPAddress) -> Bool { lhs.bytes == rhs.bytes }

    var runtimeType: CELType { .ipAddress }
    var isIPv4: Bool { bytes.count == 4 }

    func isEqual(to other: any CELOpaqueValue) -> Bool { (other as? CELIPAddress)?.bytes == bytes }

    /// RFC 5952 text: dotted decimal for IPv4; lowercase hex, no leading zeros and the longest
    /// run of zero groups shortened to `::` for IPv6.
    var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(bytes[$0 * 2]) << 8 | UInt16(bytes[$0 * 2 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8, groups[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }

    enum ParseError: Error {
        case invalid, zone, mappedIPv4
    }

    /// Parses textual IPv4 (`192.168.0.1`) or IPv6 (`2001:db8::1`). IPv4-mapped IPv6 written with
    /// a dotted quad (`::ffff:1.2.3.4`) and zones (`fe80::1%en0`) are rejected; the hexadecimal
    /// mapped form (`::ffff:c0a8:1`) is read as the IPv4 address it maps.
    static func parse(_ text: String) throws(ParseError) -> CELIPAddress {
        if text.contains("%") { throw .zone }
        if !text.contains(":") {
            guard let bytes = parseIPv4(Substring(text)) else { throw .invalid }
            return CELIPAddress(bytes: bytes)
        }
        guard let (bytes, hadDottedTail) = parseIPv6(text) else { throw .invalid }
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        if mapped {
            if hadDottedTail { throw .mappedIPv4 }
            return CELIPAddress(bytes: Array(bytes[12...]))
        }
        return CELIPAddress(bytes: bytes)
    }

    private static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                !(part.count > 1 && part.first == "0"), let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func parseIPv6(_ text: String) -> (bytes: [UInt8], dottedTail: Bool)? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawDoubleColon = false
        var dottedTail = false
        let pieces = splitOnDoubleColon(text)
        guard pieces.count <= 2 else { return nil }
        sawDoubleColon = pieces.count == 2
        func groups(_ piece: String, allowDotted: Bool) -> [UInt16]? {
            if piece.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = piece.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if field.contains(".") {
                    guard allowDotted, index == fields.count - 1, let ipv4 = parseIPv4(field) else { return nil }
                    result.append(UInt16(ipv4[0]) << 8 | UInt16(ipv4[1]))
                    result.append(UInt16(ipv4[2]) << 8 | UInt16(ipv4[3]))
                    dottedTail = true
                    continue
                }
                guard !field.isEmpty, field.count <= 4, let value = UInt16(field, radix: 16),
                    field.allSatisfy({ $0.isHexDigit })
                else { return nil }
                result.append(value)
            }
            return result
        }
        guard let first = groups(pieces[0], allowDotted: !sawDoubleColon) else { return nil }
        head = first
        if sawDoubleColon {
            guard let second = groups(pieces[1], allowDotted: true) else { return nil }
            tail = second
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard head.count == 8 else { return nil }
        }
        let all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        var bytes: [UInt8] = []
        for group in all {
            bytes.append(UInt8(group >> 8))
            bytes.append(UInt8(group & 0xFF))
        }
        return (bytes, dottedTail)
    }

    private static func splitOnDoubleColon(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var pieces: [String] = []
        var start = 0
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == UInt8(ascii: ":") {
                pieces.append(String(decoding: bytes[start..<index], as: UTF8.self))
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        pieces.append(String(decoding: bytes[start...], as: UTF8.self))
        return pieces
    }

    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    var isLoopback: Bool {
        isIPv4 ? bytes[0] == 127 : bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
    }

    var isLinkLocalUnicast: Bool {
        isIPv4 ? bytes[0] == 169 && bytes[1] == 254 : bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80
    }

    var isLinkLocalMulticast: Bool {
        isIPv4 ? bytes[0] == 224 && bytes[1] == 0 && bytes[2] == 0 : bytes[0] == 0xFF && bytes[1] & 0x0F == 0x02
    }

    var isMulticast: Bool { isIPv4 ? bytes[0] & 0xF0 == 0xE0 : bytes[0] == 0xFF }

    /// Go's `netip.Addr.IsGlobalUnicast`: not unspecified, broadcast, loopback, multicast or link-local.
    var isGlobalUnicast: Bool {
        if isIPv4 && bytes == [255, 255, 255, 255] { return false }
        return !isUnspecified && !isLoopback && !isMulticast && !isLinkLocalUnicast
    }
}

/// A CIDR range (`net.CIDR`): an address and a prefix length.
final class CELCIDR: CELOpaqueValue, Equatable {
    let address: CELIPAddress
    let prefixLength: Int

    init(address: CELIPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    static func == (lhs: CELCIDR, rhs: CELCIDR) -> Bool {
        lhs.address == rhs.address && lhs.prefixLength == rhs.prefixLength
    }

    var runtimeType: CELType { .cidr }
    var description: String { "\(address)/\(prefixLength)" }

    func isEqual(to other: any CELOpaqueValue) -> Bool {
        guard let other = other as? CELCIDR else { return false }
        return other == self
    }

    static func parse(_ text: String) throws(CELIPAddress.ParseError) -> CELCIDR {
        guard let slash = text.lastIndex(of: "/") else { throw .invalid }
        let addressText = String(text[..<slash])
        let lengthText = text[text.index(after: slash)...]
        let address = try CELIPAddress.parse(addressText)
        guard !lengthText.isEmpty, lengthText.allSatisfy({ $0.isASCII && $0.isNumber }),
            !(lengthText.count > 1 && lengthText.first == "0"), let length = Int(lengthText),
            length <= address.bytes.count * 8
        else { throw .invalid }
        return CELCIDR(address: address, prefixLength: length)
    }

    var masked: CELCIDR {
        var bytes = address.bytes
        for index in bytes.indices {
            let bitsKept = max(0, min(8, prefixLength - index * 8))
            bytes[index] &= bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsKept))
        }
        return CELCIDR(address: CELIPAddress(bytes: bytes), prefixLength: prefixLength)
    }

    func contains(_ ip: CELIPAddress) -> Bool {
        guard ip.bytes.count == address.bytes.count else { return false }
        return CELCIDR(address: ip, prefixLength: prefixLength).masked.address == masked.address
    }

    func contains(_ other: CELCIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }
}

/// The network extension: `ip`, `cidr`, `isIP`, `isCIDR`, `ip.isCanonical` and the IP and CIDR
/// methods (`family`, `isLoopback`, `containsIP`, `prefixLength`, ...).
enum NetworkFunctions {
    static func register(into registry: inout FunctionRegistry) {
        registry.global(
            "ip", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("ip", value) }
                return .opaque(try parseIP(text))
            })
        registry.global(
            "cidr", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("cidr", value) }
                return .opaque(try parseCIDR(text))
            })
        registry.global(
            "isIP", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("isIP", value) }
                return .bool((try? CELIPAddress.parse(text)) != nil)
            })
        registry.global(
            "isCIDR", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("isCIDR", value) }
                return .bool((try? CELCIDR.parse(text)) != nil)
            })
        registry.global(
            "ip.isCanonical", arity: 1,
            .unary { value, _ throws(CELEvaluationError) in
                guard case .string(let text) = value else { throw .noOverload("ip.isCanonical", value) }
                return .bool(try parseIP(text).description == text)
            })
        let predicates: [(String, @Sendable (CELIPAddress) -> Bool)] = [
            ("isLoopback", \.isLoopback), ("isGlobalUnicast", \.isGlobalUnicast),
            ("isLinkLocalMulticast", \.isLinkLocalMulticast), ("isLinkLocalUnicast", \.isLinkLocalUnicast),
            ("isUnspecified", \.isUnspecified),
        ]
        for (name, predicate) in predicates {
            registry.member(
                name, arguments: 0,
                .unary { value, _ throws(CELEvaluationError) in
                    .bool(predicate(try ip(value, name)))
                })
        }
        registry.member(
            "family", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                .int(try ip(value, "family").isIPv4 ? 4 : 6)
            })
        registry.member(
            "ip", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                .opaque(try cidr(value, "ip").address)
            })
        registry.member(
            "prefixLength", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                .int(Int64(try cidr(value, "prefixLength").prefixLength))
            })
        registry.member(
            "masked", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                .opaque(try cidr(value, "masked").masked)
            })
        registry.member(
            "isMask", arguments: 0,
            .unary { value, _ throws(CELEvaluationError) in
                let range = try cidr(value, "isMask")
                return .bool(range.masked.address == range.address)
            })
        registry.member(
            "containsIP", arguments: 1,
            .binary { value, other, _ throws(CELEvaluationError) in
                let range = try cidr(value, "containsIP")
                switch other {
                case .string(let text): return .bool(range.contains(try parseIP(text)))
                case .opaque(let opaque as CELIPAddress): return .bool(range.contains(opaque))
                default: throw .noOverload("containsIP", value, other)
                }
            })
        registry.member(
            "containsCIDR", arguments: 1,
            .binary { value, other, _ throws(CELEvaluationError) in
                let range = try cidr(value, "containsCIDR")
                switch other {
                case .string(let text): return .bool(range.contains(try parseCIDR(text)))
                case .opaque(let opaque as CELCIDR): return .bool(range.contains(opaque))
                default: throw .noOverload("containsCIDR", value, other)
                }
            })
    }

    private static func ip(_ value: CELValue, _ name: String) throws(CELEvaluationError) -> CELIPAddress {
        guard case .opaque(let opaque as CELIPAddress) = value else { throw .noOverload(name, value) }
        return opaque
    }

    private static func cidr(_ value: CELValue, _ name: String) throws(CELEvaluationError) -> CELCIDR {
        guard case .opaque(let opaque as CELCIDR) = value else { throw .noOverload(name, value) }
        return opaque
    }

    static func parseIP(_ text: String) throws(CELEvaluationError) -> CELIPAddress {
        do {
            return try CELIPAddress.parse(text)
        } catch .zone {
            throw .invalid("IP Address '\(text)' with zone value is not allowed")
        } catch .mappedIPv4 {
            throw .invalid("IPv4-mapped IPv6 address '\(text)' is not allowed")
        } catch {
            throw .invalid("IP Address '\(text)' parse error during conversion from string")
        }
    }

    static func parseCIDR(_ text: String) throws(CELEvaluationError) -> CELCIDR {
        do {
            return try CELCIDR.parse(text)
        } catch .zone {
            throw .invalid("CIDR '\(text)' with zone value is not allowed")
        } catch .mappedIPv4 {
            throw .invalid("IPv4-mapped IPv6 address '\(text)' is not allowed")
        } catch {
            throw .invalid("network address '\(text)' parse error during conversion from string")
        }
    }
}
