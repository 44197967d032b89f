import AsyncHTTPClient
import FisoConcurrency
import FisoQuantities
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Runs every flow of the configuration directory: builds them, starts their sources, reloads
/// them when their files change, restarts a flow whose source crashed, and drains them all on
/// graceful shutdown (readiness off → listeners stop accepting → events in flight finish → sinks
/// close).
public final class FlowRuntime: Service {
    public let configuration: RuntimeConfiguration
    public let status: RuntimeStatus
    public let metricsRegistry: PrometheusCollectorRegistry
    let logger: Logger
    private let ingress = NIOLockedValueBox<HTTPIngress?>(nil)
    private let standardOutput: StandardOutput

    /// The runtime found nothing it could run.
    public struct StartupError: Error, CustomStringConvertible {
        public var problems: [ConfigProblem]
        public var description: String {
            "no flow could be started:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    public init(
        configuration: RuntimeConfiguration,
        metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        status: RuntimeStatus = RuntimeStatus(), logger: Logger = Logger(label: "fiso-flow"),
        standardOutput: StandardOutput = StandardOutput()
    ) {
        self.configuration = configuration
        self.metricsRegistry = metricsRegistry
        self.status = status
        self.logger = logger
        self.standardOutput = standardOutput
    }

    /// The port an HTTP source address is bound to (the real one when configured with port 0).
    public func boundHTTPPort(for address: ListenAddress) -> Int? {
        ingress.withLockedValue { $0 }?.boundPort(for: address)
    }

    public func run() async throws {
        var clientConfiguration = HTTPClient.Configuration()
        // Sinks deliver many events to few hosts: allow enough connections per host for the
        // flows' in-flight limits instead of AsyncHTTPClient's default of 8.
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        // A refused connection is a failed attempt for the pipeline's retry and backoff, not
        // something the client should silently retry until the attempt's deadline.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.decompression = .disabled
        // No client spans: with the default no-op tracer AsyncHTTPClient still builds a span and its
        // attributes for every request (≈3% of the pool's CPU in a profile of the HTTP path).
        clientConfiguration.tracing.tracer = nil
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let kafka = KafkaClients(logger: logger)
        do {
            try await TaskSpawner.run { spawner in
                let ingress = HTTPIngress(spawner: spawner, logger: self.logger)
                self.ingress.withLockedValue { $0 = ingress }
                let shared = SharedResources(
                    registry: self.configuration.registry, httpClient: httpClient, ingress: ingress,
                    standardOutput: self.standardOutput, shutdownTimeout: self.configuration.shutdownTimeout,
                    kafka: kafka
                )
                let supervisor = FlowSupervisor(runtime: self, shared: shared, spawner: spawner)
                try await supervisor.startInitialFlows()
                self.status.setPhase(.running)
                self.logger.info("fiso-flow is ready", metadata: ["flows": .stringConvertible(supervisor.runningCount)])
                await supervisor.watchUntilShutdown()

                self.status.setPhase(.draining)
                self.logger.info("draining: no new events are accepted; finishing the ones in flight")
                await withTaskCancellationHandler {
                    await ingress.shutdown()
                    await supervisor.stopAll()
                    await kafka.shutdown()
                } onCancel: {
                    // The service group cancels the runtime once FISO_SHUTDOWN_TIMEOUT has passed: every
                    // wait ends now, and what it gives up is logged where it is known.
                    let inFlight = supervisor.eventsInFlightWhileStopping()
                        .map { "\($0.flow): \($0.events)" }.joined(separator: ", ")
                    self.logger.warning(
                        "the drain did not finish within the shutdown timeout; giving up what is still running",
                        metadata: [
                            "shutdown_timeout": .string(GoDuration.format(self.configuration.shutdownTimeout)),
                            "events_in_flight": .string(inFlight.isEmpty ? "none" : inFlight),
                        ]
                    )
                }
                self.status.setPhase(.stopped)
                self.logger.info("all flows stopped")
            }
        } catch {
            await kafka.shutdown()
            try? await httpClient.shutdown()
            throw error
        }
        try await httpClient.shutdown()
    }
}

/// The running flows of one runtime and the loop that keeps them in line with the files.
final class FlowSupervisor: Sendable {
    private struct RunningFlow: Sendable {
        var text: String
        var kafkaText: String?
        var built: BuiltFlow
        var lifecycle: SourceLifecycle
        /// Fired when the source's `run` returned; the runtime always waits for it.
        var finished: AsyncSignal<Void>
    }

    private struct UnstartedFlow: Sendable {
        var definition: FlowDefinition
        var text: String
        var kafkaText: String?
        var attempts: Int
        var notBefore: ContinuousClock.Instant
    }

    private struct State {
        var flows: [String: RunningFlow] = [:]
        /// The last text of each file that was tried, so a broken file is reported once per change.
        var attempted: [String: String] = [:]
        /// Restart attempts of crashed flows, for backoff.
        var restarts: [String: (count: Int, notBefore: ContinuousClock.Instant)] = [:]
        /// Valid flows that could not start (a module not mounted yet, a port in use), retried with
        /// backoff until they start or their file changes.
        var unstarted: [String: UnstartedFlow] = [:]
        var snapshot: ConfigSnapshot?
        /// The flows ``stopAll()`` is draining, for the report when the drain runs out of time.
        var stopping: [RunningFlow] = []
    }

    private let runtime: FlowRuntime
    private let factory: FlowFactory
    private let spawner: TaskSpawner
    private let state = NIOLockedValueBox(State())
    private let reloadsOK: Counter
    private let reloadsFailed: Counter
    private let flowsRunning: Gauge

    init(runtime: FlowRuntime, shared: SharedResources, spawner: TaskSpawner) {
        self.runtime = runtime
        self.spawner = spawner
        self.factory = FlowFactory(
            registry: runtime.configuration.registry, metricsRegistry: runtime.metricsRegistry, shared: shared,
            logger: runtime.logger
        )
        reloadsOK = runtime.metricsRegistry.makeCounter(
            descriptor: MetricNames.configReloads, labels: [("result", "success")])
        reloadsFailed = runtime.metricsRegistry.makeCounter(
            descriptor: MetricNames.configReloads, labels: [("result", "error")])
        flowsRunning = runtime.metricsRegistry.makeGauge(descriptor: MetricNames.flowsRunning, labels: [])
    }

    private var logger: Logger { runtime.logger }
    private var configuration: RuntimeConfiguration { runtime.configuration }
    var runningCount: Int { state.withLockedValue { $0.flows.count } }

    // MARK: Start-up

    func startInitialFlows() async throws {
        let snapshot: ConfigSnapshot
        switch ConfigSnapshot.read(
            directory: configuration.configDirectory, kafkaConfigPath: configuration.kafkaConfigPath)
        {
        case .success(let read): snapshot = read
        case .failure(let error): throw FlowRuntime.StartupError(problems: error.problems)
        }
        let loaded = configuration.loader.load(snapshot)
        var problems = loaded.allProblems
        for problem in problems {
            logger.error("invalid flow configuration", metadata: ["problem": .string(problem.description)])
        }
        if snapshot.flowFiles.isEmpty {
            problems.append(
                ConfigProblem(path: "", message: "no *.yaml or *.yml flow files in \(configuration.configDirectory)")
            )
        }
        state.withLockedValue { state in
            state.snapshot = snapshot
            state.attempted = snapshot.flowFiles
        }
        for path in loaded.flows.keys.sorted() {
            let definition = loaded.flows[path]!
            do {
                try await start(definition, text: snapshot.flowFiles[path]!, kafkaText: snapshot.kafkaFile, path: path)
            } catch {
                problems.append(ConfigProblem(file: path, path: "", message: "\(error)"))
                recordUnstarted(definition, text: snapshot.flowFiles[path]!, kafkaText: snapshot.kafkaFile, path: path)
            }
        }
        if runningCount == 0 {
            throw FlowRuntime.StartupError(problems: problems)
        }
    }

    // MARK: Running flows

    /// Builds and starts a flow; on success it is recorded as the flow of `path`.
    /// `isRetry`: a flow already reported as failed keeps that state while it is tried again, so
    /// the retries of one broken flow do not make `/readyz` flap.
    private func start(
        _ definition: FlowDefinition, text: String, kafkaText: String?, path: String, isRetry: Bool = false
    ) async throws {
        if !isRetry { runtime.status.setFlow(definition.name, .starting) }
        let built: BuiltFlow
        do {
            built = try await factory.build(definition)
        } catch {
            runtime.status.setFlow(definition.name, .failed, detail: "\(error)")
            logger.error(
                "flow could not be built", metadata: ["flow": .string(definition.name), "error": .string("\(error)")])
            throw error
        }
        let lifecycle = SourceLifecycle()
        let finished = AsyncSignal<Void>()
        let failure = NIOLockedValueBox<(any Error)?>(nil)
        let logger = logger
        let accepted = spawner.spawn {
            do {
                try await built.source.run(pipeline: built.pipeline, lifecycle: lifecycle)
            } catch {
                failure.withLockedValue { $0 = error }
                logger.error(
                    "flow source stopped with an error",
                    metadata: [
                        "flow": .string(definition.name), "source": .string(built.source.description),
                        "error": .string("\(error)"),
                    ]
                )
            }
            lifecycle.markFailedToStart()
            finished.fire()
        }
        if !accepted {
            failure.withLockedValue { $0 = FlowFactory.BuildError(description: "the runtime is shutting down") }
            lifecycle.markFailedToStart()
            finished.fire()
        }
        guard await lifecycle.waitUntilStarted() else {
            await finished.waitIgnoringCancellation()
            try? await built.pipeline.drain()
            await built.pipeline.shutdown()
            let error: any Error =
                failure.withLockedValue { $0 } ?? FlowFactory.BuildError(description: "source stopped during start-up")
            runtime.status.setFlow(definition.name, .failed, detail: "\(error)")
            throw error
        }
        runtime.status.setFlow(definition.name, .running)
        logger.info(
            "flow started",
            metadata: [
                "flow": .string(definition.name), "source": .string(built.source.description),
                "sink": .string(definition.sink.type),
            ]
        )
        state.withLockedValue { state in
            state.flows[path] = RunningFlow(
                text: text, kafkaText: kafkaText, built: built, lifecycle: lifecycle, finished: finished)
        }
        flowsRunning.set(to: Double(runningCount))
    }

    /// Stops a flow: its source stops taking events, the events in flight finish, the sink closes.
    private func stop(_ flow: RunningFlow, removingStatus: Bool) async {
        flow.lifecycle.requestStop()
        // The source always returns: its waits end on cancellation, so this wait may ignore it.
        await flow.finished.waitIgnoringCancellation()
        do {
            try await flow.built.pipeline.drain()
        } catch {
            // The drain ran out of time (FISO_SHUTDOWN_TIMEOUT): say what is given up.
            logger.error(
                "drain cut short by the shutdown timeout: events still in flight are abandoned",
                metadata: [
                    "flow": .string(flow.built.definition.name),
                    "abandoned_events": .stringConvertible(flow.built.pipeline.eventsInFlight),
                    "source": .string(flow.built.definition.source.type),
                ]
            )
        }
        await flow.built.pipeline.shutdown()
        if removingStatus { runtime.status.removeFlow(flow.built.definition.name) }
    }

    func stopAll() async {
        let flows = state.withLockedValue { state in
            state.stopping = Array(state.flows.values)
            state.flows = [:]
            return state.stopping
        }
        for flow in flows { runtime.status.setFlow(flow.built.definition.name, .stopping) }
        await withDiscardingTaskGroup { group in
            for flow in flows { group.addTask { await self.stop(flow, removingStatus: true) } }
        }
        flowsRunning.set(to: 0)
    }

    /// Events still running in each flow, running or being drained by ``stopAll()``, by flow name.
    func eventsInFlightWhileStopping() -> [(flow: String, events: Int)] {
        state.withLockedValue { Array($0.flows.values) + $0.stopping }
            .map { ($0.built.definition.name, $0.built.pipeline.eventsInFlight) }
            .filter { $0.events > 0 }
            .sorted { $0.flow < $1.flow }
    }

    // MARK: Watching

    func watchUntilShutdown() async {
        while true {
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: self.configuration.reloadInterval)
                }
            } catch {
                return  // graceful shutdown (or cancellation)
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            await reconcile()
        }
    }

    /// Brings the running flows in line with the directory, and restarts crashed ones.
    func reconcile() async {
        guard
            case .success(let snapshot) = ConfigSnapshot.read(
                directory: configuration.configDirectory, kafkaConfigPath: configuration.kafkaConfigPath
            )
        else { return }
        let changed = state.withLockedValue { state in
            defer { state.snapshot = snapshot }
            return state.snapshot != snapshot
        }
        if changed { await apply(snapshot) }
        await restartCrashedFlows()
        await retryUnstartedFlows()
        let pipelines = state.withLockedValue { $0.flows.values.map(\.built.pipeline) }
        for pipeline in pipelines { await pipeline.checkForUpdates() }
    }

    private func recordUnstarted(_ definition: FlowDefinition, text: String, kafkaText: String?, path: String) {
        state.withLockedValue { state in
            let attempts = (state.unstarted[path]?.attempts ?? 0) + 1
            let pause = Duration.seconds(min(30, 1 << min(attempts - 1, 5)))
            state.unstarted[path] = UnstartedFlow(
                definition: definition, text: text, kafkaText: kafkaText, attempts: attempts,
                notBefore: .now + pause
            )
        }
    }

    /// Tries again to start valid flows that could not start, with a growing pause (1 s … 30 s).
    private func retryUnstartedFlows() async {
        let now = ContinuousClock.now
        let due = state.withLockedValue { state in
            state.unstarted.filter { $0.value.notBefore <= now && state.flows[$0.key] == nil }
        }
        for (path, flow) in due.sorted(by: { $0.key < $1.key }) {
            do {
                try await start(flow.definition, text: flow.text, kafkaText: flow.kafkaText, path: path, isRetry: true)
                state.withLockedValue { $0.unstarted[path] = nil }
                logger.info("flow started after an earlier failure", metadata: ["flow": .string(flow.definition.name)])
            } catch {
                recordUnstarted(flow.definition, text: flow.text, kafkaText: flow.kafkaText, path: path)
            }
        }
    }

    private func apply(_ snapshot: ConfigSnapshot) async {
        let loaded = configuration.loader.load(snapshot)
        let running = state.withLockedValue { $0.flows }

        for (path, flow) in running where snapshot.flowFiles[path] == nil {
            logger.info(
                "flow file removed; stopping its flow",
                metadata: ["flow": .string(flow.built.definition.name), "file": .string(path)])
            state.withLockedValue { state in
                state.flows[path] = nil
                state.attempted[path] = nil
            }
            await stop(flow, removingStatus: true)
            reloadsOK.increment()
        }

        state.withLockedValue { state in
            for (path, unstarted) in state.unstarted
            where snapshot.flowFiles[path] != unstarted.text || snapshot.kafkaFile != unstarted.kafkaText {
                state.unstarted[path] = nil
                if snapshot.flowFiles[path] == nil { state.attempted[path] = nil }
            }
        }
        for path in snapshot.flowFiles.keys.sorted() {
            let text = snapshot.flowFiles[path]!
            let current = state.withLockedValue { $0.flows[path] }
            let alreadyTried = state.withLockedValue { $0.attempted[path] == text }
            let kafkaChanged = current != nil && current?.kafkaText != snapshot.kafkaFile
            if let current, current.text == text, !kafkaChanged { continue }
            if current == nil, alreadyTried, !kafkaChanged { continue }
            state.withLockedValue { $0.attempted[path] = text }

            if let problems = loaded.problems[path], !problems.isEmpty {
                reloadsFailed.increment()
                logger.error(
                    current == nil
                        ? "flow file is invalid; not started" : "flow file is invalid; keeping the running version",
                    metadata: ["file": .string(path), "problems": .array(problems.map { .string($0.description) })]
                )
                continue
            }
            guard let definition = loaded.flows[path] else { continue }
            let others = state.withLockedValue { $0.flows.filter { $0.key != path }.map(\.value.built.definition) }
            if let clash = configuration.loader.conflict(of: definition, with: others) {
                reloadsFailed.increment()
                logger.error(
                    "flow file conflicts with a running flow; not applied",
                    metadata: ["problem": .string(clash.description)])
                continue
            }
            await replace(current, with: definition, text: text, kafkaText: snapshot.kafkaFile, path: path)
        }
    }

    /// Starts the new version beside the old one (its route replaces the old route atomically),
    /// then drains the old one. When both cannot run at once (a renamed flow, a changed address on
    /// the same port), the old one stops first; if the new one then fails, the old one comes back.
    private func replace(
        _ current: RunningFlow?, with definition: FlowDefinition, text: String, kafkaText: String?, path: String
    ) async {
        let verb = current == nil ? "flow added" : "flow reloaded"
        if let current, current.built.definition.name == definition.name {
            do {
                try await start(definition, text: text, kafkaText: kafkaText, path: path)
                await stop(current, removingStatus: false)
                reloadsOK.increment()
                logger.info("\(verb)", metadata: ["flow": .string(definition.name), "file": .string(path)])
                return
            } catch {
                logger.warning(
                    "new flow version could not start beside the old one; retrying after stopping the old one",
                    metadata: ["flow": .string(definition.name), "error": .string("\(error)")])
            }
        }
        if let current {
            state.withLockedValue { $0.flows[path] = nil }
            await stop(current, removingStatus: current.built.definition.name != definition.name)
        }
        do {
            try await start(definition, text: text, kafkaText: kafkaText, path: path)
            reloadsOK.increment()
            logger.info("\(verb)", metadata: ["flow": .string(definition.name), "file": .string(path)])
        } catch {
            reloadsFailed.increment()
            logger.error(
                "flow could not start", metadata: ["flow": .string(definition.name), "error": .string("\(error)")])
            guard let current else {
                recordUnstarted(definition, text: text, kafkaText: kafkaText, path: path)
                return
            }
            do {
                try await start(current.built.definition, text: current.text, kafkaText: current.kafkaText, path: path)
                logger.warning(
                    "previous flow version restored", metadata: ["flow": .string(current.built.definition.name)])
            } catch {
                logger.error(
                    "previous flow version could not be restored",
                    metadata: ["flow": .string(current.built.definition.name), "error": .string("\(error)")])
            }
        }
    }

    /// A flow whose source ended without being asked to stop has crashed: rebuild it, with a
    /// growing pause between attempts (1 s, 2 s, 4 s … up to 30 s).
    private func restartCrashedFlows() async {
        let crashed = state.withLockedValue { state in
            state.flows.filter { $0.value.finished.isFired && !$0.value.lifecycle.isStopRequested }
        }
        for (path, flow) in crashed {
            let now = ContinuousClock.now
            let due = state.withLockedValue { state -> Bool in
                guard let restart = state.restarts[path] else { return true }
                return now >= restart.notBefore
            }
            guard due else { continue }
            state.withLockedValue { $0.flows[path] = nil }
            try? await flow.built.pipeline.drain()
            await flow.built.pipeline.shutdown()
            do {
                try await start(flow.built.definition, text: flow.text, kafkaText: flow.kafkaText, path: path)
                state.withLockedValue { $0.restarts[path] = nil }
                logger.info("crashed flow restarted", metadata: ["flow": .string(flow.built.definition.name)])
            } catch {
                state.withLockedValue { state in
                    let count = (state.restarts[path]?.count ?? 0) + 1
                    let pause = Duration.seconds(min(30, 1 << min(count - 1, 5)))
                    state.restarts[path] = (count, now + pause)
                    // Keep the definition so the next round can try again.
                    state.flows[path] = flow
                }
            }
        }
    }
}
