/// What a WebAssembly binary declares — imports, exports, memories, start function, sizes — read
/// straight from its sections, without compiling it. Used to check a module against the WASI
/// functions this runtime provides and to describe it (`fiso-flow wasm validate`).
public struct WasmModuleInfo: Sendable, Hashable {
    /// A value type, as printed in signatures.
    public enum ValueType: String, Sendable, Hashable {
        case i32, i64, f32, f64, v128, funcref, externref
        case otherReference = "ref"
    }

    /// A function type.
    public struct Signature: Sendable, Hashable, CustomStringConvertible {
        public var parameters: [ValueType]
        public var results: [ValueType]

        public init(parameters: [ValueType], results: [ValueType]) {
            self.parameters = parameters
            self.results = results
        }

        /// `(i32, i64) -> i32`
        public var description: String {
            let parameters = "(" + self.parameters.map(\.rawValue).joined(separator: ", ") + ")"
            switch results.count {
            case 0: return parameters + " -> ()"
            case 1: return parameters + " -> " + results[0].rawValue
            default: return parameters + " -> (" + results.map(\.rawValue).joined(separator: ", ") + ")"
            }
        }
    }

    /// Limits of a memory or table.
    public struct Limits: Sendable, Hashable {
        public var minimum: UInt64
        public var maximum: UInt64?
        public var isShared: Bool
        public var is64Bit: Bool
    }

    /// What an import or export is.
    public enum ExternalKind: Sendable, Hashable {
        case function(Signature?)
        case table(Limits)
        case memory(Limits)
        case global
        case tag
    }

    public struct Import: Sendable, Hashable {
        public var module: String
        public var name: String
        public var kind: ExternalKind
    }

    public struct Export: Sendable, Hashable {
        public var name: String
        public var kind: ExternalKind
    }

    public var imports: [Import] = []
    public var exports: [Export] = []
    /// Memories the module defines itself (imported memories are among ``imports``).
    public var memories: [Limits] = []
    /// Functions the module defines itself.
    public var definedFunctionCount = 0
    /// Whether the module has a start section (code run at instantiation).
    public var hasStartSection = false
    /// Names of custom sections, e.g. `name`, `producers`.
    public var customSectionNames: [String] = []

    /// Size of one WebAssembly memory page.
    public static let pageSize = 65536

    /// The export named `name`, if any.
    public func export(named name: String) -> Export? {
        exports.first { $0.name == name }
    }
}

/// A binary that is not a WebAssembly module, or is truncated or malformed.
public struct WasmBinaryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "\(reason) (at byte \(offset))" }
}

extension WasmModuleInfo {
    /// The WebAssembly magic number and version 1.
    static let header: [UInt8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]

    /// Reads the sections of `bytes`. Checks the structure of the sections this reader needs, not
    /// the validity of code; compiling the module does that.
    public init(reading bytes: [UInt8]) throws(WasmBinaryError) {
        var reader = BinaryReader(bytes: bytes)
        guard bytes.count >= 8, Array(bytes[0..<4]) == Array(Self.header[0..<4]) else {
            throw WasmBinaryError(offset: 0, reason: "not a WebAssembly binary (no \\0asm magic number)")
        }
        guard Array(bytes[4..<8]) == Array(Self.header[4..<8]) else {
            throw WasmBinaryError(
                offset: 4,
                reason: "unsupported WebAssembly binary version (a component, or a format newer than version 1)"
            )
        }
        reader.offset = 8
        var types: [Signature?] = []
        var functionTypeIndices: [UInt32] = []
        while !reader.isAtEnd {
            let id = try reader.byte()
            let size = Int(try reader.u32())
            let end = reader.offset + size
            guard end <= bytes.count else { throw reader.error("section \(id) runs past the end of the file") }
            var section = BinaryReader(bytes: bytes, offset: reader.offset, end: end)
            switch id {
            case 0:
                customSectionNames.append(try section.name())
            case 1:
                types = try Self.readTypes(&section)
            case 2:
                for _ in 0..<(try section.u32()) {
                    let module = try section.name()
                    let name = try section.name()
                    let kind: ExternalKind
                    switch try section.byte() {
                    case 0x00:
                        let index = Int(try section.u32())
                        kind = .function(index < types.count ? types[index] : nil)
                    case 0x01:
                        _ = try section.referenceType()
                        kind = .table(try section.limits())
                    case 0x02: kind = .memory(try section.limits())
                    case 0x03:
                        _ = try section.valueType()
                        _ = try section.byte()
                        kind = .global
                    case 0x04:
                        _ = try section.byte()
                        _ = try section.u32()
                        kind = .tag
                    default: throw section.error("unknown import kind")
                    }
                    imports.append(Import(module: module, name: name, kind: kind))
                }
            case 3:
                for _ in 0..<(try section.u32()) { functionTypeIndices.append(try section.u32()) }
                definedFunctionCount = functionTypeIndices.count
            case 5:
                for _ in 0..<(try section.u32()) { memories.append(try section.limits()) }
            case 7:
                let importedFunctionTypes: [Signature?] = imports.compactMap {
                    if case .function(let signature) = $0.kind { return .some(signature) }
                    return nil
                }
                let importedMemories = imports.compactMap {
                    if case .memory(let limits) = $0.kind { limits } else { nil }
                }
                for _ in 0..<(try section.u32()) {
                    let name = try section.name()
                    let kindByte = try section.byte()
                    let index = Int(try section.u32())
                    let kind: ExternalKind
                    switch kindByte {
                    case 0x00:
                        if index < importedFunctionTypes.count {
                            kind = .function(importedFunctionTypes[index])
                        } else {
                            let defined = index - importedFunctionTypes.count
                            let typeIndex = defined < functionTypeIndices.count ? Int(functionTypeIndices[defined]) : -1
                            kind = .function(typeIndex >= 0 && typeIndex < types.count ? types[typeIndex] : nil)
                        }
                    case 0x01: kind = .table(Limits(minimum: 0, maximum: nil, isShared: false, is64Bit: false))
                    case 0x02:
                        let all = importedMemories + memories
                        kind = .memory(
                            index < all.count
                                ? all[index] : Limits(minimum: 0, maximum: nil, isShared: false, is64Bit: false)
                        )
                    case 0x03: kind = .global
                    case 0x04: kind = .tag
                    default: throw section.error("unknown export kind")
                    }
                    exports.append(Export(name: name, kind: kind))
                }
            case 8:
                hasStartSection = true
            default:
                break
            }
            reader.offset = end
        }
    }

    private static func readTypes(_ section: inout BinaryReader) throws(WasmBinaryError) -> [Signature?] {
        var types: [Signature?] = []
        for _ in 0..<(try section.u32()) {
            switch try section.byte() {
            case 0x60:
                types.append(try section.functionType())
            case 0x4e, 0x50, 0x4f:
                // Garbage-collection proposal type definitions: not needed here, and WasmKit's
                // default feature set rejects them when compiling.
                throw section.error("garbage-collection type definitions are not supported")
            default:
                throw section.error("unknown type form")
            }
        }
        return types
    }
}

/// A cursor over WebAssembly binary encodings (LEB128 integers, names, types, limits).
private struct BinaryReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int

    init(bytes: [UInt8], offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.offset = offset
        self.end = end ?? bytes.count
    }

    var isAtEnd: Bool { offset >= end }

    func error(_ reason: String) -> WasmBinaryError {
        WasmBinaryError(offset: offset, reason: reason)
    }

    mutating func byte() throws(WasmBinaryError) -> UInt8 {
        guard offset < end else { throw error("unexpected end of section") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u64() throws(WasmBinaryError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try byte()
            guard shift < 64 else { throw error("integer too long") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func u32() throws(WasmBinaryError) -> UInt32 {
        let value = try u64()
        guard value <= UInt64(UInt32.max) else { throw error("integer too large") }
        return UInt32(value)
    }

    mutating func name() throws(WasmBinaryError) -> String {
        let length = Int(try u32())
        guard offset + length <= end else { throw error("name runs past the end of its section") }
        defer { offset += length }
        return String(decoding: bytes[offset..<offset + length], as: UTF8.self)
    }

    mutating func valueType() throws(WasmBinaryError) -> WasmModuleInfo.ValueType {
        switch try byte() {
        case 0x7f: return .i32
        case 0x7e: return .i64
        case 0x7d: return .f32
        case 0x7c: return .f64
        case 0x7b: return .v128
        case 0x70: return .funcref
        case 0x6f: return .externref
        case 0x63, 0x64:
            _ = try heapType()
            return .otherReference
        case let other where (0x69...0x74).contains(other):
            return .otherReference
        default:
            throw error("unknown value type")
        }
    }

    mutating func referenceType() throws(WasmBinaryError) -> WasmModuleInfo.ValueType {
        try valueType()
    }

    /// A heap type is a signed LEB128 (a type index, or a negative abstract type code).
    mutating func heapType() throws(WasmBinaryError) -> Int64 {
        var result: Int64 = 0
        var shift: Int64 = 0
        var byte: UInt8
        repeat {
            byte = try self.byte()
            guard shift < 64 else { throw error("integer too long") }
            result |= Int64(byte & 0x7f) << shift
            shift += 7
        } while byte & 0x80 != 0
        if shift < 64, byte & 0x40 != 0 { result |= -(Int64(1) << shift) }
        return result
    }

    mutating func functionType() throws(WasmBinaryError) -> WasmModuleInfo.Signature {
        var parameters: [WasmModuleInfo.ValueType] = []
        for _ in 0..<(try u32()) { parameters.append(try valueType()) }
        var results: [WasmModuleInfo.ValueType] = []
        for _ in 0..<(try u32()) { results.append(try valueType()) }
        return WasmModuleInfo.Signature(parameters: parameters, results: results)
    }

    mutating func limits() throws(WasmBinaryError) -> WasmModuleInfo.Limits {
        let flags = try byte()
        guard flags & ~0x0f == 0 else { throw error("unknown limits flags") }
        let is64Bit = flags & 0x04 != 0
        let minimum = is64Bit ? try u64() : UInt64(try u32())
        let maximum: UInt64? = flags & 0x01 != 0 ? (is64Bit ? try u64() : UInt64(try u32())) : nil
        if flags & 0x08 != 0 { _ = try u32() }  // custom page size (log2)
        return WasmModuleInfo.Limits(minimum: minimum, maximum: maximum, isShared: flags & 0x02 != 0, is64Bit: is64Bit)
    }
}
