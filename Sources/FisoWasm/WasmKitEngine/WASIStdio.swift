import NIOConcurrencyHelpers
@_spi(WASIPlatform) import WASI

/// Thrown from a module's `fd_write` to stdout once it passes the output limit, to stop the module
/// there rather than let it run on and buffer more.
struct OutputLimitExceeded: Error {}

/// A stream a module can only read: its stdin, served from memory.
final class InMemoryStdin: WASIFile {
    private let bytes: [UInt8]
    private let position = NIOLockedValueBox(0)

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    // The embedder owns the stream; a guest's fd_close only removes it from the guest's table.
    var isBorrowed: Bool { true }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size {
        try position.withLockedValue { position in
            var total = 0
            for index in 0..<buffers.count where position < bytes.count {
                let copied = try buffers.withHostBuffer(at: index) { destination in
                    let count = min(destination.count, bytes.count - position)
                    bytes.withUnsafeBytes { source in
                        destination.copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: source[position..<position + count]))
                    }
                    return count
                }
                position += copied
                total += copied
            }
            return WASIAbi.Size(total)
        }
    }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size { throw WASIAbi.Errno.EBADF }
    func fdStat() throws -> WASIAbi.FdStat { streamFdStat(rights: .FD_READ) }
}

/// A stream a module can only write: its stdout or stderr, captured in memory up to a limit.
final class CapturedOutput: WASIFile {
    /// What happens to bytes beyond the limit.
    enum Overflow {
        /// Stop the module: the call fails with `output_too_large` (stdout).
        case fail
        /// Keep the first `limit` bytes, count the rest and let the module go on (stderr).
        case truncate
    }

    private struct State {
        var limit: Int
        var bytes: [UInt8] = []
        var droppedBytes = 0
        var overflowed = false
    }

    private let overflow: Overflow
    private let state: NIOLockedValueBox<State>

    init(limit: Int, overflow: Overflow) {
        self.overflow = overflow
        self.state = NIOLockedValueBox(State(limit: limit))
    }

    var isBorrowed: Bool { true }

    /// The captured bytes, how many were dropped, and whether the limit was passed.
    var captured: (bytes: [UInt8], droppedBytes: Int, overflowed: Bool) {
        state.withLockedValue { ($0.bytes, $0.droppedBytes, $0.overflowed) }
    }

    /// Empties the capture for the next call of a reused instance, with that call's limit.
    func reset(limit: Int) {
        state.withLockedValue { $0 = State(limit: limit) }
    }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size {
        let overflow = self.overflow
        return try state.withLockedValue { state in
            let limit = state.limit
            var total = 0
            for index in 0..<buffers.count {
                let written = try buffers.withHostBuffer(at: index) { source -> Int in
                    let room = max(0, limit - state.bytes.count)
                    if source.count > room {
                        state.overflowed = true
                        if overflow == .fail { throw OutputLimitExceeded() }
                        state.droppedBytes += source.count - room
                    }
                    state.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: source[..<min(room, source.count)]))
                    return source.count
                }
                total += written
            }
            return WASIAbi.Size(total)
        }
    }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size { throw WASIAbi.Errno.EBADF }
    func fdStat() throws -> WASIAbi.FdStat { streamFdStat(rights: .FD_WRITE) }
}

/// What stdio streams answer for everything but reading and writing: a character device that
/// cannot seek, sync or change.
protocol InMemoryStream: WASIFile {}

extension InMemoryStdin: InMemoryStream {}
extension CapturedOutput: InMemoryStream {}

extension InMemoryStream {
    func streamFdStat(rights: WASIAbi.Rights) -> WASIAbi.FdStat {
        WASIAbi.FdStat(fsFileType: .CHARACTER_DEVICE, fsFlags: [], fsRightsBase: rights, fsRightsInheriting: [])
    }

    func attributes() throws -> WASIAbi.Filestat {
        WASIAbi.Filestat(dev: 0, ino: 0, filetype: .CHARACTER_DEVICE, nlink: 0, size: 0, atim: 0, mtim: 0, ctim: 0)
    }
    func fileType() throws -> WASIAbi.FileType { .CHARACTER_DEVICE }
    func status() throws -> WASIAbi.Fdflags { [] }
    func setTimes(atim: WASIAbi.Timestamp, mtim: WASIAbi.Timestamp, fstFlags: WASIAbi.FstFlags) throws {
        throw WASIAbi.Errno.ENOTSUP
    }
    func advise(offset: WASIAbi.FileSize, length: WASIAbi.FileSize, advice: WASIAbi.Advice) throws {}
    func close() throws {}
    func setFdStatFlags(_ flags: WASIAbi.Fdflags) throws {}
    func setFilestatSize(_ size: WASIAbi.FileSize) throws { throw WASIAbi.Errno.EINVAL }
    func sync() throws {}
    func datasync() throws {}
    func tell() throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }
    func seek(offset: WASIAbi.FileDelta, whence: WASIAbi.Whence) throws -> WASIAbi.FileSize {
        throw WASIAbi.Errno.ESPIPE
    }
    func pwrite(vectored buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.ESPIPE
    }
    func pread(into buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.ESPIPE
    }
}
