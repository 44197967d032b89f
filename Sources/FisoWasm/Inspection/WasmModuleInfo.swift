import Foundation
import WasmKit  // re-exports WasmTypes (value and function types), which WasmParser's API uses
import WasmParser

/// What a WebAssembly binary declares — imports, exports, memories, start function, sizes — read
/// from its sections with WasmKit's `WasmParser`, without compiling it (function bodies are not
/// decoded). Used to check a module against the WASI
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

        public init(minimum: UInt64, maximum: UInt64?, isShared: Bool, is64Bit: Bool) {
            self.minimum = minimum
            self.maximum = maximum
            self.isShared = isShared
            self.is64Bit = is64Bit
        }
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
    public static let header: [UInt8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]

    /// What the reader accepts: WasmKit's default features, plus the memory flags (64-bit, shared,
    /// several memories) so that such a module is still described; the engines decide whether they
    /// run it. Garbage-collection types are refused, as WasmKit refuses them.
    static let parserFeatures: WasmFeatureSet = WasmFeatureSet.default.union([.memory64, .threads, .multiMemory])

    /// Reads the sections of `bytes`. Checks the structure of the sections, not the validity of
    /// code; compiling the module does that.
    ///
    /// - Throws: ``WasmBinaryError`` for a file that is not a WebAssembly module, is truncated, or
    ///   has a malformed section.
    public init(reading bytes: [UInt8]) throws(WasmBinaryError) {
        // The header is checked here rather than by the parser, for messages that say what the
        // file is instead of which byte was unexpected.
        guard bytes.count >= 8, bytes[0..<4].elementsEqual(Self.header[0..<4]) else {
            throw WasmBinaryError(offset: 0, reason: "not a WebAssembly binary (no \\0asm magic number)")
        }
        guard bytes[4..<8].elementsEqual(Self.header[4..<8]) else {
            throw WasmBinaryError(
                offset: 4,
                reason: "unsupported WebAssembly binary version (a component, or a format newer than version 1)"
            )
        }
        var parser = Parser(bytes: bytes, features: Self.parserFeatures)
        var sections = Sections()
        do {
            while let payload = try parser.parseNext() {
                sections.add(payload)
            }
        } catch {
            throw WasmBinaryError(parsing: error, fallbackOffset: parser.offset)
        }
        self = sections.info()
    }
}

extension WasmBinaryError {
    /// WasmParser's error, its offset taken out of the text: `unexpected end of byte sequence (at
    /// byte 20)` rather than `Unexpected end of byte sequence. at offset 0x14 (at byte 20)`.
    init(parsing error: WasmParserError, fallbackOffset: Int) {
        var text = error.description
        var offset = fallbackOffset
        if let range = text.range(of: #"\s*at offset 0x[0-9a-fA-F]+"#, options: .regularExpression) {
            let hex = text[range].split(separator: "x").last.map(String.init) ?? ""
            offset = Int(hex, radix: 16) ?? fallbackOffset
            text.removeSubrange(range)
        }
        text = text.trimmingCharacters(in: CharacterSet(charactersIn: "\" ."))
        if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase ?? true {
            text = first.lowercased() + text.dropFirst()
        }
        self.init(offset: offset, reason: text.isEmpty ? "malformed module" : text)
    }
}

/// The sections of interest as WasmParser delivers them, turned into a ``WasmModuleInfo`` once
/// all are read (exports refer to functions and memories by index across imports and
/// definitions).
private struct Sections {
    var types: [WasmModuleInfo.Signature?] = []
    var imports: [WasmParser.Import] = []
    var functionTypeIndices: [TypeIndex] = []
    var tables: [TableType] = []
    var memories: [Limits] = []
    var exports: [WasmParser.Export] = []
    var hasStart = false
    var customSectionNames: [String] = []

    mutating func add(_ payload: ParsingPayload) {
        switch payload {
        case .customSection(let section): customSectionNames.append(section.name)
        case .typeSection(let groups):
            types = groups.flatMap(\.types).map { subtype in
                if case .function(let type) = subtype.body { return WasmModuleInfo.Signature(type) }
                return nil
            }
        case .importSection(let section): imports = section
        case .functionSection(let indices): functionTypeIndices = indices
        case .tableSection(let section): tables = section.map(\.type)
        case .memorySection(let section): memories = section.map(\.type)
        case .exportSection(let section): exports = section
        case .startSection: hasStart = true
        case .header, .globalSection, .tagSection, .elementSection, .codeSection, .dataSection, .dataCount: break
        }
    }

    func signature(ofType index: TypeIndex) -> WasmModuleInfo.Signature? {
        Int(index) < types.count ? types[Int(index)] : nil
    }

    func info() -> WasmModuleInfo {
        var info = WasmModuleInfo()
        // Index spaces: imported entities first, then the module's own.
        var functionTypes: [TypeIndex] = []
        var allTables: [Limits] = []
        var allMemories: [Limits] = []
        for entry in imports {
            let kind: WasmModuleInfo.ExternalKind
            switch entry.descriptor {
            case .function(let typeIndex):
                functionTypes.append(typeIndex)
                kind = .function(signature(ofType: typeIndex))
            case .table(let table):
                allTables.append(table.limits)
                kind = .table(WasmModuleInfo.Limits(table.limits))
            case .memory(let memory):
                allMemories.append(memory)
                kind = .memory(WasmModuleInfo.Limits(memory))
            case .global: kind = .global
            case .tag: kind = .tag
            }
            info.imports.append(WasmModuleInfo.Import(module: entry.module, name: entry.name, kind: kind))
        }
        functionTypes += functionTypeIndices
        allTables += tables.map(\.limits)
        allMemories += memories
        info.exports = exports.map { entry in
            let kind: WasmModuleInfo.ExternalKind
            switch entry.descriptor {
            case .function(let index):
                kind = .function(Int(index) < functionTypes.count ? signature(ofType: functionTypes[Int(index)]) : nil)
            case .table(let index):
                kind = .table(WasmModuleInfo.Limits(Int(index) < allTables.count ? allTables[Int(index)] : nil))
            case .memory(let index):
                kind = .memory(WasmModuleInfo.Limits(Int(index) < allMemories.count ? allMemories[Int(index)] : nil))
            case .global: kind = .global
            case .tag: kind = .tag
            }
            return WasmModuleInfo.Export(name: entry.name, kind: kind)
        }
        info.memories = memories.map { WasmModuleInfo.Limits($0) }
        info.definedFunctionCount = functionTypeIndices.count
        info.hasStartSection = hasStart
        info.customSectionNames = customSectionNames
        return info
    }
}

extension WasmModuleInfo.Signature {
    init(_ type: WasmTypes.FunctionType) {
        self.init(
            parameters: type.parameters.map(WasmModuleInfo.ValueType.init),
            results: type.results.map(WasmModuleInfo.ValueType.init))
    }
}

extension WasmModuleInfo.ValueType {
    init(_ type: WasmTypes.ValueType) {
        switch type {
        case .i32: self = .i32
        case .i64: self = .i64
        case .f32: self = .f32
        case .f64: self = .f64
        case .v128: self = .v128
        case .ref(let reference) where reference.isNullable && reference.heapType == .funcRef: self = .funcref
        case .ref(let reference) where reference.isNullable && reference.heapType == .externRef: self = .externref
        case .ref: self = .otherReference
        }
    }
}

extension WasmModuleInfo.Limits {
    init(_ limits: WasmParser.Limits) {
        self.init(minimum: limits.min, maximum: limits.max, isShared: limits.shared, is64Bit: limits.isMemory64)
    }

    /// Limits of an entity the module refers to by an index it does not define (compiling refuses
    /// such a module): unknown, shown as none.
    init(_ limits: WasmParser.Limits?) {
        self = limits.map(Self.init) ?? Self(minimum: 0, maximum: nil, isShared: false, is64Bit: false)
    }
}
