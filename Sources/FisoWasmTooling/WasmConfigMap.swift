import CompressNIO
import FisoWasm
import NIOCore

/// Renders a Kubernetes ConfigMap that carries module files in `binaryData`, as
/// `kubectl create configmap NAME --from-file=KEY=PATH... [-n NS] --dry-run=client -o yaml` does,
/// for `fiso-flow wasm configmap NAME MODULE... [--namespace NS] [--gzip]`.
public enum WasmConfigMap {
    /// One file to put in the ConfigMap.
    public struct Entry: Sendable, Equatable {
        /// The key, which becomes the file name in the mounted volume.
        public var key: String
        /// The bytes stored.
        public var bytes: [UInt8]

        public init(key: String, bytes: [UInt8]) {
            self.key = key
            self.bytes = bytes
        }
    }

    /// The most data a ConfigMap can hold.
    public static let sizeLimit = WasmModuleReport.configMapLimit

    /// Reads the modules named by `sources`, each `PATH` (key: the file name) or `KEY=PATH` as with
    /// kubectl's `--from-file`, gzip-compressing each at level 9 when `gzip` is set (a file that is
    /// already gzip is kept as it is; Fiso-Flow recognises gzip by its magic bytes, so the key and
    /// the flow's `module:` path stay the same).
    ///
    /// - Throws: ``WasmConfigMapError``.
    public static func entries(from sources: [String], gzip: Bool) throws(WasmConfigMapError) -> [Entry] {
        var entries: [Entry] = []
        for source in sources {
            let (key, path): (String, String)
            if let equals = source.firstIndex(of: "="), !source[..<equals].contains("/") {
                (key, path) = (String(source[..<equals]), String(source[source.index(after: equals)...]))
            } else {
                (key, path) = (WasmModuleFile.fileName(of: source), source)
            }
            guard isValidKey(key) else {
                throw .invalidKey(key)
            }
            guard !entries.contains(where: { $0.key == key }) else {
                throw .duplicateKey(key)
            }
            var bytes: [UInt8]
            do {
                bytes = try readFile(path)
            } catch {
                throw .unreadable(path: path, reason: error.description)
            }
            if gzip, !bytes.starts(with: WasmModuleFile.gzipMagic) {
                do {
                    bytes = try WasmConfigMap.gzip(bytes)
                } catch {
                    throw .unreadable(path: path, reason: "gzip failed: \(error)")
                }
            }
            entries.append(Entry(key: key, bytes: bytes))
        }
        return entries
    }

    /// The ConfigMap as YAML, in the layout of `kubectl create configmap --dry-run=client -o yaml`
    /// (keys sorted; like kubectl 1.33 and later, without the empty `creationTimestamp`).
    ///
    /// - Throws: ``WasmConfigMapError/tooLarge(total:advice:)`` over 1 MiB, with advice;
    ///   ``WasmConfigMapError/invalidName(_:)`` for a name Kubernetes would refuse.
    public static func render(name: String, namespace: String?, entries: [Entry]) throws(WasmConfigMapError) -> String {
        guard isValidName(name) else { throw .invalidName(name) }
        if let namespace, !isValidLabel(namespace) { throw .invalidName(namespace) }
        let total = entries.reduce(0) { $0 + $1.bytes.count }
        if total > sizeLimit {
            throw .tooLarge(total: total, advice: advice(for: entries))
        }
        var yaml = "apiVersion: v1\n"
        if !entries.isEmpty {
            yaml += "binaryData:\n"
            for entry in entries.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
                yaml += "  \(entry.key): \(base64(entry.bytes))\n"
            }
        }
        yaml += "kind: ConfigMap\n"
        yaml += "metadata:\n"
        yaml += "  name: \(name)\n"
        if let namespace { yaml += "  namespace: \(namespace)\n" }
        return yaml
    }

    /// gzip at compression level 9.
    public static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        var output = try input.compress(with: .gzip(configuration: ZlibConfiguration(compressionLevel: 9)))
        return output.readBytes(length: output.readableBytes) ?? []
    }

    /// Standard base64 with padding, on one line (as kubectl writes it).
    public static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(alphabet[Int(value >> 6 & 63)])
            output.append(alphabet[Int(value & 63)])
            index += 3
        }
        let remaining = bytes.count - index
        if remaining > 0 {
            let value = UInt32(bytes[index]) << 16 | (remaining == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(remaining == 2 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// ConfigMap keys: letters, digits, `-`, `_` and `.`, at most 253 characters, not `.` or `..`.
    static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 253 && key != "." && key != ".."
            && key.utf8.allSatisfy {
                isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
    }

    /// Object names: a DNS subdomain (lowercase letters, digits, `-` and `.`, at most 253).
    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        guard let first = bytes.first, let last = bytes.last, isLowerAlphanumeric(first), isLowerAlphanumeric(last)
        else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// Namespaces: a DNS label (lowercase letters, digits and `-`, at most 63).
    static func isValidLabel(_ name: String) -> Bool {
        isValidName(name) && name.utf8.count <= 63 && !name.contains(".")
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func advice(for entries: [Entry]) -> String {
        let uncompressed = entries.filter { !$0.bytes.starts(with: WasmModuleFile.gzipMagic) }
        var advice = ""
        if !uncompressed.isEmpty {
            let compressedTotal = entries.reduce(0) { total, entry in
                total + ((try? gzip(entry.bytes).count) ?? entry.bytes.count)
            }
            advice +=
                compressedTotal <= sizeLimit
                ? "With --gzip it is \(compressedTotal) bytes and fits; Fiso-Flow loads gzip modules directly. "
                : "Even with --gzip it is \(compressedTotal) bytes. "
        }
        advice +=
            "Put the modules in separate ConfigMaps, shrink them (standard Go: -ldflags=\"-s -w\"; or TinyGo), "
            + "or fetch large ones into a volume with an init container (see the deployment guide, "
            + "\"Size Considerations and Limits\")."
        return advice
    }

    /// The file as stored, after checking that it is a WebAssembly module (possibly gzip).
    private static func readFile(_ path: String) throws(WasmError) -> [UInt8] {
        let bytes = try WasmModuleFile.readStoredBytes(path: path, maximumBytes: 1 << 30)
        let name = WasmModuleFile.fileName(of: path)
        let module =
            bytes.starts(with: WasmModuleFile.gzipMagic)
            ? try WasmModuleFile.gunzip(bytes, maximumBytes: WasmModuleFile.defaultMaximumBytes, name: name, path: path)
            : bytes
        guard module.starts(with: WasmModuleInfo.header[0..<4]) else {
            throw .invalidModule("not a WebAssembly module (no \\0asm magic number)", module: name, path: path)
        }
        return bytes
    }
}

/// Why a ConfigMap cannot be rendered.
public enum WasmConfigMapError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The modules together are over 1 MiB.
    case tooLarge(total: Int, advice: String)
    /// A key Kubernetes would refuse.
    case invalidKey(String)
    /// Two modules with the same key.
    case duplicateKey(String)
    /// A name or namespace Kubernetes would refuse.
    case invalidName(String)
    /// A module file that cannot be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .tooLarge(let total, let advice):
            "the modules add up to \(total) bytes, more than the 1048576 bytes a ConfigMap can hold. \(advice)"
        case .invalidKey(let key):
            "\"\(key)\" is not a valid ConfigMap key (letters, digits, '-', '_' and '.'; use KEY=PATH to choose one)"
        case .duplicateKey(let key):
            "two modules have the key \"\(key)\" (use KEY=PATH to choose distinct keys)"
        case .invalidName(let name):
            "\"\(name)\" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')"
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        }
    }
}
