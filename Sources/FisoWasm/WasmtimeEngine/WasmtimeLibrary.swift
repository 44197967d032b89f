import Foundation
import Glibc

/// The Wasmtime shared library, found and loaded once per process.
///
/// Where: the file named by `FISO_WASMTIME_LIB` (and only it, when set), else the container
/// image's `/usr/local/lib/libwasmtime.so`. With `FISO_WASMTIME_SEARCH_PYTHON=1` (development
/// only) the library inside the Python `wasmtime` package
/// (`site-packages/wasmtime/linux-<arch>/_libwasmtime.so`) of every Python installation found
/// next to a `PATH` entry, under `~/.pyenv/versions`, `~/.local` and `/usr/local`, `/usr` is
/// tried as well. A library whose version is outside ``supportedMajorVersions`` is refused: the
/// C API is declared by hand (``WasmtimeCAPI``) with that version's structure layouts.
final class WasmtimeLibrary: Sendable {
    /// The environment variable naming the library file.
    static let environmentVariable = "FISO_WASMTIME_LIB"
    /// The environment variable that, set to `1`, also searches Python installations for the
    /// `wasmtime` package's library: a development convenience, never used in production images.
    static let searchPythonVariable = "FISO_WASMTIME_SEARCH_PYTHON"
    /// Where the container image installs the library (see the Dockerfile).
    static let imagePath = "/usr/local/lib/libwasmtime.so"
    /// The Wasmtime major versions this engine was tested with: ``WasmtimeCAPI``'s fixed
    /// structure sizes and offsets are those of these versions.
    static let supportedMajorVersions: ClosedRange<Int> = 50...50

    /// The path the library was loaded from.
    let path: String
    /// Its functions.
    let api: WasmtimeCAPI
    /// Its version as Wasmtime records it in compiled code (the major version, e.g. `50`).
    let version: String

    private init(path: String, api: WasmtimeCAPI, version: String) {
        self.path = path
        self.api = api
        self.version = version
    }

    /// The library, loaded on first use; the same result (library or reason) afterwards.
    static func load() -> Result<WasmtimeLibrary, WasmtimeUnavailable> { loaded }

    private static let loaded: Result<WasmtimeLibrary, WasmtimeUnavailable> = {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment[environmentVariable], !explicit.isEmpty {
            return Result { () throws(WasmtimeUnavailable) in try open(explicit) }
        }
        var failures: [String] = []
        for candidate in candidatePaths(environment: environment) {
            do throws(WasmtimeUnavailable) {
                return .success(try open(candidate))
            } catch {
                if candidate.hasPrefix("/") { failures.append(error.reason) }
            }
        }
        let tried = failures.isEmpty ? "" : " (\(failures.joined(separator: "; ")))"
        let searched =
            environment[searchPythonVariable] == "1"
            ? "neither \(imagePath) nor a Python wasmtime package's _libwasmtime.so exists"
            : "\(imagePath) does not exist (\(searchPythonVariable)=1 also searches Python installations, for development)"
        return .failure(
            WasmtimeUnavailable("no Wasmtime library found: \(environmentVariable) is not set and \(searched)\(tried)")
        )
    }()

    /// Opens `path` and resolves the API.
    private static func open(_ path: String) throws(WasmtimeUnavailable) -> WasmtimeLibrary {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw WasmtimeUnavailable("cannot load \(path): \(reason)")
        }
        // The handle is never closed: compiled code and callbacks may live until the process ends
        // (a refused version included: it may have run initialisers, and it is loaded only once).
        let api = try WasmtimeCAPI(library: handle, path: path)
        let version = try checkVersion(of: api, path: path)
        return WasmtimeLibrary(path: path, api: api, version: version)
    }

    /// Where to look, in order.
    static func candidatePaths(environment: [String: String]) -> [String] {
        let candidates = [imagePath]
        guard environment[searchPythonVariable] == "1" else { return candidates }
        return candidates + pythonPackagePaths(environment: environment)
    }

    /// The `_libwasmtime.so` of the Python `wasmtime` package in every Python installation found.
    static func pythonPackagePaths(environment: [String: String]) -> [String] {
        var candidates: [String] = []
        var machine = utsname()
        uname(&machine)
        let architecture = withUnsafeBytes(of: &machine.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let packageLibrary = "wasmtime/linux-\(architecture == "arm64" ? "aarch64" : architecture)/_libwasmtime.so"
        var prefixes: [String] = []
        if let virtualEnvironment = environment["VIRTUAL_ENV"] { prefixes.append(virtualEnvironment) }
        for entry in (environment["PATH"] ?? "").split(separator: ":") where entry.hasSuffix("/bin") {
            prefixes.append(String(entry.dropLast(4)))
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let pyenvRoot = environment["PYENV_ROOT"] ?? home + "/.pyenv"
        prefixes += expand(pyenvRoot + "/versions/*")
        prefixes += [home + "/.local", "/usr/local", "/usr"]
        var seen = Set<String>()
        for prefix in prefixes where seen.insert(prefix).inserted {
            for packages in ["site-packages", "dist-packages"] {
                candidates += expand("\(prefix)/lib/python3*/\(packages)/\(packageLibrary)")
            }
            candidates += expand("\(prefix)/lib/python3/dist-packages/\(packageLibrary)")
        }
        return candidates
    }

    /// The existing paths matching a glob `pattern`, sorted (newest Python last).
    private static func expand(_ pattern: String) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, 0, nil, &matches) == 0 else { return [] }
        return (0..<Int(matches.gl_pathc)).compactMap { index in
            matches.gl_pathv[index].map { String(cString: $0) }
        }
    }

    // MARK: Version

    /// The library's version, checked against ``supportedMajorVersions``.
    ///
    /// The C API has no version function, so this asks Wasmtime the way it checks compiled code
    /// itself: an empty module is compiled and serialized, and the version is read from the
    /// `.wasmtime.engine` section of the result (an ELF object).
    ///
    /// - Throws: ``WasmtimeUnavailable`` naming the found and the supported versions.
    static func checkVersion(of api: WasmtimeCAPI, path: String) throws(WasmtimeUnavailable) -> String {
        guard let version = engineVersion(of: api) else {
            throw WasmtimeUnavailable(
                "cannot tell which Wasmtime version \(path) is (this engine supports \(supportedVersionsText))")
        }
        try check(version: version, path: path)
        return version
    }

    /// Refuses `version` unless its major version is supported.
    static func check(version: String, path: String) throws(WasmtimeUnavailable) {
        let major = Int(version.prefix { $0.isNumber })
        guard let major, supportedMajorVersions.contains(major) else {
            throw WasmtimeUnavailable(
                "\(path) is Wasmtime \(version), but this engine supports \(supportedVersionsText) only: its C API "
                    + "is declared for that version's structure layouts; install a supported version or point "
                    + "\(environmentVariable) at one"
            )
        }
    }

    /// `Wasmtime 50 (50.x)`, or a range.
    static var supportedVersionsText: String {
        let range = supportedMajorVersions
        return range.count == 1
            ? "Wasmtime \(range.lowerBound) (\(range.lowerBound).x)"
            : "Wasmtime \(range.lowerBound) to \(range.upperBound)"
    }

    /// The version recorded in a serialized empty module; nil when it cannot be found.
    private static func engineVersion(of api: WasmtimeCAPI) -> String? {
        guard let config = api.configNew(), let engine = api.engineNewWithConfig(config) else { return nil }
        defer { api.engineDelete(engine) }
        let emptyModule = WasmModuleInfo.header
        var module: WasmtimeCAPI.Handle?
        let error = emptyModule.withUnsafeBufferPointer { api.moduleNew(engine, $0.baseAddress, $0.count, &module) }
        if let error {
            _ = api.consume(error: error)
            return nil
        }
        guard let module else { return nil }
        defer { api.moduleDelete(module) }
        var serialized = WasmtimeCAPI.ByteVector()
        if let error = api.moduleSerialize(module, &serialized) {
            _ = api.consume(error: error)
            return nil
        }
        defer { api.byteVectorDelete(&serialized) }
        guard let data = serialized.data, serialized.size > 0 else { return nil }
        return engineVersion(inSerializedModule: UnsafeBufferPointer(start: data, count: serialized.size))
    }

    /// The version in the `.wasmtime.engine` section of a serialized module (a 64-bit
    /// little-endian ELF object): a format byte, a length byte, then the version text.
    static func engineVersion(inSerializedModule bytes: UnsafeBufferPointer<UInt8>) -> String? {
        func integer(at offset: Int, size: Int) -> Int? {
            guard offset >= 0, size <= 8, offset + size <= bytes.count else { return nil }
            var value: UInt64 = 0
            for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
            return value <= UInt64(Int.max) ? Int(value) : nil
        }
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
            bytes[4] == 2, bytes[5] == 1,  // 64-bit, little-endian
            let sectionTable = integer(at: 0x28, size: 8), let entrySize = integer(at: 0x3a, size: 2),
            let count = integer(at: 0x3c, size: 2), let namesIndex = integer(at: 0x3e, size: 2),
            entrySize >= 0x28, namesIndex < count
        else { return nil }
        func section(_ index: Int) -> (name: Int, offset: Int, size: Int)? {
            let entry = sectionTable + index * entrySize
            guard let name = integer(at: entry, size: 4), let offset = integer(at: entry + 0x18, size: 8),
                let size = integer(at: entry + 0x20, size: 8), offset <= bytes.count, size <= bytes.count - offset
            else { return nil }
            return (name, offset, size)
        }
        guard let names = section(namesIndex) else { return nil }
        let wanted = Array(".wasmtime.engine\0".utf8)
        for index in 0..<count {
            guard let candidate = section(index) else { return nil }
            let nameStart = names.offset + candidate.name
            guard candidate.name + wanted.count <= names.size,
                bytes[nameStart..<nameStart + wanted.count].elementsEqual(wanted)
            else { continue }
            guard candidate.size >= 2 else { return nil }
            let length = Int(bytes[candidate.offset + 1])
            guard length > 0, 2 + length <= candidate.size else { return nil }
            let start = candidate.offset + 2
            return String(decoding: bytes[start..<start + length], as: UTF8.self)
        }
        return nil
    }
}
