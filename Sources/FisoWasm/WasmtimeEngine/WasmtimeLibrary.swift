import Foundation
import Glibc

/// The Wasmtime shared library, found and loaded once per process.
///
/// Search order: the file named by `FISO_WASMTIME_LIB` (and only it, when set); `libwasmtime.so`
/// on the dynamic loader's path (`LD_LIBRARY_PATH`, `/etc/ld.so.conf`); `/usr/local/lib` and
/// `/usr/lib`; then the library inside the Python `wasmtime` package
/// (`site-packages/wasmtime/linux-<arch>/_libwasmtime.so`) of every Python installation found
/// next to a `PATH` entry, under `~/.pyenv/versions`, `~/.local` and `/usr/local`, `/usr`.
final class WasmtimeLibrary: Sendable {
    /// The environment variable naming the library file.
    static let environmentVariable = "FISO_WASMTIME_LIB"

    /// The path the library was loaded from.
    let path: String
    /// Its functions.
    let api: WasmtimeCAPI

    private init(path: String, api: WasmtimeCAPI) {
        self.path = path
        self.api = api
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
        return .failure(
            WasmtimeUnavailable(
                "no Wasmtime library found: \(environmentVariable) is not set and neither libwasmtime.so nor the "
                    + "Python wasmtime package's _libwasmtime.so is on the search path\(tried)"
            )
        )
    }()

    /// Opens `path` and resolves the API.
    private static func open(_ path: String) throws(WasmtimeUnavailable) -> WasmtimeLibrary {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw WasmtimeUnavailable("cannot load \(path): \(reason)")
        }
        // The handle is never closed: compiled code and callbacks may live until the process ends.
        return WasmtimeLibrary(path: path, api: try WasmtimeCAPI(library: handle, path: path))
    }

    /// Where to look, in order; bare names go through the dynamic loader's own search.
    static func candidatePaths(environment: [String: String]) -> [String] {
        var candidates = ["libwasmtime.so", "/usr/local/lib/libwasmtime.so", "/usr/lib/libwasmtime.so"]
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
}
