import Foundation
import Glibc

/// Wasmtime's compiled code for modules, kept on disk so that a restart or a reload of an
/// unchanged module skips compilation (seconds for a 4 MiB Go module in a debug build).
///
/// Directory: `FISO_WASM_CACHE_DIR`, default `<temporary directory>/fiso-wasm-cache-<uid>`;
/// `FISO_WASM_CACHE_DIR=off` disables it. Key: the module's SHA-256 plus a fingerprint of the
/// library file (path, size, modification time), so a different Wasmtime never sees another's
/// code; Wasmtime checks compatibility again when it loads an entry, and an entry it refuses is
/// deleted and recompiled.
///
/// Loading compiled code runs it as native code, so the cache is used only from a directory
/// owned by this user and closed to everyone else (mode 0700): otherwise another local user
/// could plant code. Everything here is best effort; a cache failure only costs a compilation.
struct CompiledCodeCache: Sendable {
    static let environmentVariable = "FISO_WASM_CACHE_DIR"

    /// The directory, or nil when disabled or unsafe.
    let directory: String?
    /// Distinguishes libraries: a hash of the library file's path, size and modification time.
    let libraryFingerprint: String

    init(libraryPath: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        var status = stat()
        let libraryIdentity =
            stat(libraryPath, &status) == 0
            ? "\(libraryPath)|\(status.st_size)|\(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)" : libraryPath
        libraryFingerprint = String(SHA256.hexDigest(Array(libraryIdentity.utf8)).prefix(16))
        let configured = environment[Self.environmentVariable]
        if configured == "off" {
            directory = nil
            return
        }
        let path =
            configured.flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSTemporaryDirectory() + "/fiso-wasm-cache-\(getuid())")
        directory = Self.privateDirectory(path)
    }

    /// `path`, created if needed, when it is a directory of this user that nobody else can write
    /// or read; nil otherwise.
    private static func privateDirectory(_ path: String) -> String? {
        _ = mkdir(path, 0o700)
        var status = stat()
        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == getuid(),
            status.st_mode & 0o077 == 0
        else { return nil }
        return path
    }

    /// The entry's file for `moduleBytes`.
    func entryPath(for moduleBytes: [UInt8]) -> String? {
        directory.map { "\($0)/\(SHA256.hexDigest(moduleBytes))-\(libraryFingerprint).cwasm" }
    }

    /// The cached compiled code, if any.
    func load(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    /// Stores `bytes` under `path` atomically (a partial file is never visible).
    func store(_ bytes: [UInt8], at path: String) {
        let temporary = path + ".\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
        else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    func remove(_ path: String) {
        unlink(path)
    }
}
