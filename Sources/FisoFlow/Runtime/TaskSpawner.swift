/// Hands work to a task group from code that does not hold the group, so long-lived tasks started
/// on demand (listeners, flows after a reload) stay children of the runtime's structured task tree.
public final class TaskSpawner: Sendable {
    public typealias Work = @Sendable () async -> Void
    private let continuation: AsyncStream<Work>.Continuation

    private init(continuation: AsyncStream<Work>.Continuation) {
        self.continuation = continuation
    }

    /// Schedules `work` as a child task of the group running ``run(_:)``.
    public func spawn(_ work: @escaping Work) {
        continuation.yield(work)
    }

    /// Runs `body` with a spawner whose work runs in a discarding task group; returns when `body`
    /// returned and every spawned task finished.
    public static func run<Value: Sendable>(
        _ body: @escaping @Sendable (TaskSpawner) async throws -> Value
    ) async throws -> Value {
        let (stream, continuation) = AsyncStream.makeStream(of: Work.self)
        let spawner = TaskSpawner(continuation: continuation)
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                defer { continuation.finish() }
                return try await body(spawner)
            }
            group.addTask {
                await withDiscardingTaskGroup { children in
                    for await work in stream {
                        children.addTask { await work() }
                    }
                }
                return nil
            }
            var result: Value?
            do {
                while let next = try await group.next() {
                    if let next { result = next }
                }
            } catch {
                continuation.finish()
                group.cancelAll()
                throw error
            }
            guard let result else { throw CancellationError() }
            return result
        }
    }
}
