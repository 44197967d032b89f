import FisoConcurrency
import GRPCCore
import NIOConcurrencyHelpers
import Synchronization

/// Turns one received event into its Ack. Never throws: a failing event gets an Ack with a
/// non-OK status. ``EventIngestService`` fills in `event_id` (when the handler leaves it empty) and
/// `sequence`.
public typealias EventHandler = @Sendable (IncomingEvent) async -> Fiso_Flow_V1_Ack

/// `fiso.flow.v1.EventService`, handing every event to an ``EventHandler``.
///
/// `Send` calls the handler and answers with its Ack. `Stream` reads events and answers one Ack per
/// event, in the order of the events; a failing event gets its error Ack and the stream goes on.
/// A stream holds at most ``Options/maxPendingAcks`` events that are read but not yet acknowledged:
/// while that many are pending it stops reading, and HTTP/2 flow control slows the client down.
/// At most ``Options/maxConcurrentEventsPerStream`` of them are in the handler at once; with 1 (the
/// default) the handler sees a stream's events strictly one after the other, in order.
///
/// ``drain()`` (on shutdown or reload) stops every stream from reading: each acknowledges the
/// events it has read and then ends with status `UNAVAILABLE`, so the client resends the rest
/// elsewhere. Calls that start after ``drain()`` fail with `UNAVAILABLE` without reaching the
/// handler.
public final class EventIngestService: Fiso_Flow_V1_EventService.ServiceProtocol, Sendable {
    /// How streams are processed.
    public struct Options: Sendable, Equatable {
        /// Events of one stream read but not yet acknowledged, at most.
        public var maxPendingAcks: Int
        /// Events of one stream in the handler at once, at most (1 keeps strict order).
        public var maxConcurrentEventsPerStream: Int
        /// Events with a larger payload get a `REJECTED` Ack with code `PAYLOAD_TOO_LARGE` without
        /// reaching the handler, and the stream goes on. nil leaves only the transport's message
        /// limit (``GRPCServerConfiguration/maxRequestMessageBytes``), whose violation ends the call;
        /// keep that limit well above this one.
        public var maxPayloadBytes: Int?

        /// - Parameters:
        ///   - maxPendingAcks: At least 1.
        ///   - maxConcurrentEventsPerStream: At least 1; values above `maxPendingAcks` act as
        ///     `maxPendingAcks`.
        ///   - maxPayloadBytes: The largest payload the handler sees; nil for no limit of its own.
        public init(maxPendingAcks: Int = 256, maxConcurrentEventsPerStream: Int = 1, maxPayloadBytes: Int? = nil) {
            self.maxPendingAcks = max(1, maxPendingAcks)
            self.maxConcurrentEventsPerStream = max(1, min(maxConcurrentEventsPerStream, self.maxPendingAcks))
            self.maxPayloadBytes = maxPayloadBytes
        }
    }

    public let options: Options
    private let handler: EventHandler
    private let counters = Counters()
    private let streams = NIOLockedValueBox(StreamRegistry())

    private struct StreamRegistry {
        var draining = false
        var nextID = 0
        var stopSignals: [Int: AsyncSignal<Void>] = [:]
    }

    /// - Parameters:
    ///   - options: Stream limits.
    ///   - handler: Called once per event, concurrently for different calls.
    public init(options: Options = Options(), handler: @escaping EventHandler) {
        self.options = options
        self.handler = handler
    }

    /// Live figures of the service.
    public var statistics: EventServiceStatistics { counters.snapshot() }

    /// True once ``drain()`` was called.
    public var isDraining: Bool { streams.withLockedValue { $0.draining } }

    /// Stops taking events: streams acknowledge what they have read and end with `UNAVAILABLE`;
    /// new calls fail with `UNAVAILABLE`. Returns at once; the calls end on their own.
    public func drain() {
        let signals: [AsyncSignal<Void>] = streams.withLockedValue { registry in
            registry.draining = true
            return Array(registry.stopSignals.values)
        }
        for signal in signals { signal.fire() }
    }

    static let drainingError = RPCError(
        code: .unavailable, message: "the server is shutting down; send unacknowledged events again on a new call"
    )

    // MARK: Send

    public func send(
        request: ServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> ServerResponse<Fiso_Flow_V1_Ack> {
        if isDraining { throw Self.drainingError }
        counters.eventsReceived.add(1, ordering: .relaxed)
        let event = IncomingEvent(
            message: request.message, metadataHeaders: HeaderMetadata.headers(from: request.metadata), sequence: 1,
            call: .unary, peer: context.remotePeer, deadline: HeaderMetadata.deadline(of: request.metadata)
        )
        let ack = await handle(event)
        counters.acksSent.add(1, ordering: .relaxed)
        return ServerResponse(message: ack)
    }

    // MARK: Stream

    public func stream(
        request: StreamingServerRequest<Fiso_Flow_V1_Event>, context: ServerContext
    ) async throws -> StreamingServerResponse<Fiso_Flow_V1_Ack> {
        if isDraining { throw Self.drainingError }
        let metadataHeaders = HeaderMetadata.headers(from: request.metadata)
        let deadline = HeaderMetadata.deadline(of: request.metadata)
        let peer = context.remotePeer
        return StreamingServerResponse { writer in
            let stop = AsyncSignal<Void>()
            let registration: Int? = self.streams.withLockedValue { registry in
                guard !registry.draining else { return nil }
                defer { registry.nextID += 1 }
                registry.stopSignals[registry.nextID] = stop
                return registry.nextID
            }
            guard let registration else { throw Self.drainingError }
            self.counters.activeStreams.add(1, ordering: .relaxed)
            defer {
                self.counters.activeStreams.subtract(1, ordering: .relaxed)
                _ = self.streams.withLockedValue { $0.stopSignals.removeValue(forKey: registration) }
            }
            let ending = await self.process(
                messages: request.messages, writer: writer, stop: stop, metadataHeaders: metadataHeaders, peer: peer,
                deadline: deadline
            )
            switch ending {
            case .clientFinished: return [:]
            case .stopped: throw self.isDraining ? Self.drainingError : RPCError(code: .cancelled, message: "stopped")
            case .readFailed(let error):
                if let error = error as? RPCError { throw error }
                throw RPCError(code: .internalError, message: "reading the event stream failed: \(error)")
            }
        }
    }

    /// How a stream's reading ended.
    enum StreamEnding: Sendable {
        case clientFinished
        case stopped
        case readFailed(any Error)
    }

    /// Reads events, runs them through the handler and writes their Acks in order, keeping at most
    /// `maxPendingAcks` events between reading and acknowledging.
    func process(
        messages: RPCAsyncSequence<Fiso_Flow_V1_Event, any Error>, writer: RPCWriter<Fiso_Flow_V1_Ack>,
        stop: AsyncSignal<Void>, metadataHeaders: [(name: String, value: String)], peer: String,
        deadline: ContinuousClock.Instant? = nil
    ) async -> StreamEnding {
        let window = AsyncSemaphore(permits: options.maxPendingAcks)
        let (received, receivedInput) = AsyncStream.makeStream(of: (UInt64, Fiso_Flow_V1_Event).self)
        let ending = NIOLockedValueBox(StreamEnding.clientFinished)
        let counters = counters
        let acks = AckWriter(writer: writer, window: window, counters: counters, stop: stop)
        let makeEvent: @Sendable (UInt64, Fiso_Flow_V1_Event) -> IncomingEvent = { sequence, message in
            IncomingEvent(
                message: message, metadataHeaders: metadataHeaders, sequence: sequence, call: .stream, peer: peer,
                deadline: deadline
            )
        }

        await withTaskGroup(of: Void.self) { group in
            // Reads while a window permit is free, until the client finishes or `stop` fires. Only
            // this task is cancelled on `stop`: events already read still go through the handler.
            group.addTask {
                defer { receivedInput.finish() }
                await stop.cancelling {
                    var iterator = messages.makeAsyncIterator()
                    var sequence: UInt64 = 0
                    while (try? await window.acquire()) != nil {
                        counters.pendingAcks.add(1, ordering: .relaxed)
                        counters.notePending(window.counts.inUse)
                        let message: Fiso_Flow_V1_Event?
                        do {
                            message = try await iterator.next()
                        } catch {
                            if !Task.isCancelled { ending.withLockedValue { $0 = .readFailed(error) } }
                            message = nil
                        }
                        guard let message else {
                            counters.pendingAcks.subtract(1, ordering: .relaxed)
                            window.release()
                            return
                        }
                        sequence += 1
                        counters.eventsReceived.add(1, ordering: .relaxed)
                        receivedInput.yield((sequence, message))
                    }
                }
                if stop.isFired { ending.withLockedValue { if case .clientFinished = $0 { $0 = .stopped } } }
            }

            if options.maxConcurrentEventsPerStream == 1 {
                // One event at a time: handle and acknowledge in this task, in order.
                for await (sequence, message) in received {
                    await acks.write(await handle(makeEvent(sequence, message)))
                }
            } else {
                await handleConcurrently(received: received, makeEvent: makeEvent, acks: acks)
            }
        }
        // Acks that could not be written (the call was cancelled) no longer count as pending.
        counters.pendingAcks.subtract(window.counts.inUse, ordering: .relaxed)
        return ending.withLockedValue { $0 }
    }

    /// Runs up to `maxConcurrentEventsPerStream` handlers at once and writes their Acks in event order.
    private func handleConcurrently(
        received: AsyncStream<(UInt64, Fiso_Flow_V1_Event)>,
        makeEvent: @escaping @Sendable (UInt64, Fiso_Flow_V1_Event) -> IncomingEvent, acks: AckWriter
    ) async {
        let concurrency: AsyncSemaphore? =
            options.maxConcurrentEventsPerStream < options.maxPendingAcks
            ? AsyncSemaphore(permits: options.maxConcurrentEventsPerStream) : nil
        let (results, resultInput) = AsyncStream.makeStream(of: (UInt64, Fiso_Flow_V1_Ack).self)
        await withTaskGroup(of: Void.self) { group in
            // Writes Acks in event order, parking those that finish early.
            group.addTask {
                var expected: UInt64 = 1
                var parked: [UInt64: Fiso_Flow_V1_Ack] = [:]
                for await (sequence, ack) in results {
                    parked[sequence] = ack
                    while let ready = parked.removeValue(forKey: expected) {
                        expected += 1
                        await acks.write(ready)
                    }
                }
            }
            // Hands events to handlers; finishes `results` once every handled event has its Ack queued.
            await withTaskGroup(of: Void.self) { handlers in
                for await (sequence, message) in received {
                    let event = makeEvent(sequence, message)
                    if let concurrency, (try? await concurrency.acquire()) == nil {
                        // Only when the whole call is cancelled: the Ack cannot reach the client anyway.
                        resultInput.yield((sequence, Self.cancelledAck(for: event)))
                        continue
                    }
                    handlers.addTask {
                        let ack = await self.handle(event)
                        concurrency?.release()
                        resultInput.yield((sequence, ack))
                    }
                }
            }
            resultInput.finish()
        }
    }

    private func handle(_ event: IncomingEvent) async -> Fiso_Flow_V1_Ack {
        var ack: Fiso_Flow_V1_Ack
        if let limit = options.maxPayloadBytes, event.payload.count > limit {
            ack = .failed(
                code: "PAYLOAD_TOO_LARGE",
                message: "the payload has \(event.payload.count) bytes; the limit is \(limit)"
            )
        } else {
            ack = await handler(event)
        }
        if ack.eventID.isEmpty, let id = event.id { ack.eventID = id }
        ack.sequence = event.sequence
        return ack
    }

    private static func cancelledAck(for event: IncomingEvent) -> Fiso_Flow_V1_Ack {
        var ack = Fiso_Flow_V1_Ack.failed(code: "UNAVAILABLE", message: "the call was cancelled")
        ack.eventID = event.id ?? ""
        ack.sequence = event.sequence
        return ack
    }
}

/// Writes a stream's Acks; each written (or dropped) Ack frees a window permit. Once a write fails
/// (the client is gone) it fires `stop` and drops the remaining Acks.
final class AckWriter: Sendable {
    private let writer: RPCWriter<Fiso_Flow_V1_Ack>
    private let window: AsyncSemaphore
    private let counters: Counters
    private let stop: AsyncSignal<Void>
    private let writable = Atomic(true)

    init(writer: RPCWriter<Fiso_Flow_V1_Ack>, window: AsyncSemaphore, counters: Counters, stop: AsyncSignal<Void>) {
        self.writer = writer
        self.window = window
        self.counters = counters
        self.stop = stop
    }

    /// Called by one task at a time, in event order.
    func write(_ ack: Fiso_Flow_V1_Ack) async {
        if writable.load(ordering: .relaxed) {
            do {
                try await writer.write(ack)
                counters.acksSent.add(1, ordering: .relaxed)
            } catch {
                writable.store(false, ordering: .relaxed)
                stop.fire()
            }
        }
        counters.pendingAcks.subtract(1, ordering: .relaxed)
        window.release()
    }
}

/// Figures of an ``EventIngestService`` since it was created.
public struct EventServiceStatistics: Sendable, Equatable {
    /// Events read, from both methods.
    public var eventsReceived: Int
    /// Acks written, from both methods.
    public var acksSent: Int
    /// Events read by streams and not yet acknowledged, now, over all streams.
    public var pendingAcks: Int
    /// The most unacknowledged events one stream ever held.
    public var peakPendingAcksPerStream: Int
    /// Streams open now.
    public var activeStreams: Int
}

/// The counters behind ``EventServiceStatistics``.
final class Counters: Sendable {
    let eventsReceived = Atomic<Int>(0)
    let acksSent = Atomic<Int>(0)
    let pendingAcks = Atomic<Int>(0)
    let peakPendingAcksPerStream = Atomic<Int>(0)
    let activeStreams = Atomic<Int>(0)

    func notePending(_ pendingInStream: Int) {
        var current = peakPendingAcksPerStream.load(ordering: .relaxed)
        while pendingInStream > current {
            let (exchanged, original) = peakPendingAcksPerStream.compareExchange(
                expected: current, desired: pendingInStream, ordering: .relaxed
            )
            if exchanged { return }
            current = original
        }
    }

    func snapshot() -> EventServiceStatistics {
        EventServiceStatistics(
            eventsReceived: eventsReceived.load(ordering: .relaxed), acksSent: acksSent.load(ordering: .relaxed),
            pendingAcks: pendingAcks.load(ordering: .relaxed),
            peakPendingAcksPerStream: peakPendingAcksPerStream.load(ordering: .relaxed),
            activeStreams: activeStreams.load(ordering: .relaxed)
        )
    }
}
