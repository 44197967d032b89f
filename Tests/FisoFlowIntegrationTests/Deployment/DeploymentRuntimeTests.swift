import FisoFlowTestSupport
import Foundation
import Testing
import Yams

/// The rendered deployment run for real: `fiso-flow wasm configmap` against `kubectl create
/// configmap`, and the binary started on the ConfigMaps' files the way the pod sees them.
@Suite struct DeploymentRuntimeTests {
    static let exampleModules = [
        "enrich.wasm=examples/modules/enrich-c/enrich.wasm",
        "probe.wasm=examples/modules/probes/probe.wasm",
    ]

    @Test(
        arguments: [
            (exampleModules, "production"), (Array(exampleModules.prefix(1)), nil),
            (["examples/modules/enrich-zig/enrich.wasm"], "default"),
        ] as [([String], String?)])
    func wasmConfigMapMatchesKubectlCreateConfigMap(modules: [String], namespace: String?) throws {
        let absolute = modules.map { entry -> String in
            guard let equals = entry.firstIndex(of: "=") else { return Repository.path(entry) }
            return "\(entry[..<equals])=\(Repository.path(String(entry[entry.index(after: equals)...])))"
        }
        let namespaceArguments = namespace.map { ["--namespace", $0] } ?? []
        let ours = try runTool(
            try fisoFlowBinary(), ["wasm", "configmap", "wasm-modules"] + absolute + namespaceArguments)
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try runTool(
            try kubectl(),
            ["create", "configmap", "wasm-modules"] + absolute.map { "--from-file=\($0)" } + namespaceArguments
                + ["--dry-run=client", "-o", "yaml"]
        )
        #expect(theirs.status == 0, "\(theirs.stderr)")

        // Equivalent as objects: same kind, name, namespace and the same bytes under the same keys.
        let mine = KubeObject(node: try #require(try Yams.compose(yaml: ours.text)))
        let reference = KubeObject(node: try #require(try Yams.compose(yaml: theirs.text)))
        #expect(mine.kind == "ConfigMap" && reference.kind == "ConfigMap")
        #expect(mine.node["apiVersion"]?.string == reference.node["apiVersion"]?.string)
        #expect(mine.name == reference.name)
        #expect(mine.namespace == reference.namespace)
        #expect(mine.data == reference.data)
        #expect(mine.binaryData == reference.binaryData)
        #expect(mine.binaryData.count == modules.count)
        for entry in absolute {
            let path = entry.split(separator: "=").last.map(String.init) ?? entry
            let key =
                entry.contains("=") ? String(entry.split(separator: "=")[0]) : (path as NSString).lastPathComponent
            #expect(mine.binaryData[key] == FileManager.default.contents(atPath: path), "\(key)")
        }
        // And the same text, but for the empty `creationTimestamp` kubectl before 1.33 prints.
        #expect(ours.text == theirs.text.replacingOccurrences(of: "  creationTimestamp: null\n", with: ""))
    }

    @Test func wasmConfigMapRefusesWhatAConfigMapCannotHold() throws {
        let result = try runTool(
            try fisoFlowBinary(),
            ["wasm", "configmap", "wasm-modules", Repository.path("examples/modules/enrich-go/enrich.wasm")]
        )
        #expect(result.status != 0)
        #expect(result.stderr.contains("1048576"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// Lays the rendered ConfigMaps out as the kubelet mounts them, starts `fiso-flow run` with the
    /// Deployment's environment, and checks the probes, the metrics and that the module from the
    /// ConfigMap's binaryData loads. Addresses are moved to free loopback ports and the mount
    /// paths to a temporary folder; the HTTP flow runs (the Kafka flow needs a broker and is
    /// covered by `validate`).
    @Test func theBinaryRunsOnTheRenderedConfigMaps() async throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(Kustomizations.base))
        let folder = try TemporaryFolder()
        let root = folder.file("pod")
        func podPath(_ path: String) -> String { root + path }
        let container = try manifest.container
        let flowMount = try manifest.mount(volume: "flow-config", container: container).path
        let moduleMount = try manifest.mount(volume: "wasm-modules", container: container).path
        let kafkaMount = try manifest.mount(volume: "kafka-config", container: container).path

        let httpPort = try unusedPort()
        var httpFlows = 0
        for (file, text) in try manifest.configMap(volume: "flow-config").data {
            let flow = try #require(try Yams.compose(yaml: text))
            guard flow["source"]?["type"]?.string == "http" else { continue }
            httpFlows += 1
            let moved = text.replacingOccurrences(of: "\":8081\"", with: "\"127.0.0.1:\(httpPort)\"")
                .replacingOccurrences(of: moduleMount + "/", with: podPath(moduleMount) + "/")
            #expect(moved != text)
            try folder.write("pod\(flowMount)/\(file)", Data(moved.utf8))
        }
        #expect(httpFlows == 1)
        for (key, bytes) in try manifest.configMap(volume: "wasm-modules").binaryData {
            try folder.write("pod\(moduleMount)/\(key)", bytes)
        }
        for (key, text) in try manifest.configMap(volume: "kafka-config").data {
            try folder.write("pod\(kafkaMount)/\(key)", Data(text.utf8))
        }

        var environment = try manifest.environment
        let metricsPort = try unusedPort()
        environment["FISO_METRICS_ADDR"] = "127.0.0.1:\(metricsPort)"
        for name in ["FISO_CONFIG_DIR", "FISO_KAFKA_CONFIG"] {
            let inPod = try #require(environment[name], "the Deployment sets \(name)")
            environment[name] = podPath(inPod)
        }
        let arguments = nodes(container["args"]).compactMap(\.string)
        #expect(arguments == ["run"])
        let fiso = try RunningFisoFlow(arguments: arguments, environment: environment, logDirectory: folder)
        defer { fiso.stop() }

        for probe in ["livenessProbe", "readinessProbe"] {
            let path = try #require(container[probe]?["httpGet"]?["path"]?.string)
            _ = try await fiso.waitFor(port: metricsPort, path: path)
        }
        let annotations = stringMap(try manifest.deployment.node["spec"]?["template"]?["metadata"]?["annotations"])
        let metrics = try await fiso.waitFor(port: metricsPort, path: try #require(annotations["prometheus.io/path"]))
        #expect(metrics.contains("fiso_flow_"), "\(metrics.prefix(400))")
        #expect(fiso.log.contains("wasm module loaded"), "\(fiso.log)")
        // LOG_FORMAT=json from the Deployment: every log line is a JSON object.
        if environment["LOG_FORMAT"] == "json" {
            for line in fiso.log.split(separator: "\n") where !line.isEmpty {
                #expect(line.hasPrefix("{") && line.hasSuffix("}"), "\(line)")
            }
        }
    }

    /// Writes a ConfigMap volume the way the kubelet does: the files in a `..<timestamp>` folder,
    /// `..data` a symlink to it, each key a symlink into `..data`; an update writes a new folder
    /// and swaps `..data` atomically (rename over the old link).
    struct ConfigMapVolume {
        let path: String
        private var generation = 0

        init(path: String) throws {
            self.path = path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        mutating func publish(_ files: [String: Data]) throws {
            generation += 1
            let folder = "..2026_01_01_00_00_0\(generation).\(UUID().uuidString.prefix(8))"
            let manager = FileManager.default
            try manager.createDirectory(atPath: "\(path)/\(folder)", withIntermediateDirectories: true)
            for (key, data) in files { try data.write(to: URL(fileURLWithPath: "\(path)/\(folder)/\(key)")) }
            try? manager.removeItem(atPath: "\(path)/..data_tmp")
            try manager.createSymbolicLink(atPath: "\(path)/..data_tmp", withDestinationPath: folder)
            guard rename("\(path)/..data_tmp", "\(path)/..data") == 0 else {
                throw ToolFailure(description: "rename ..data failed: \(errno)")
            }
            for key in files.keys where !manager.fileExists(atPath: "\(path)/\(key)") {
                try manager.createSymbolicLink(atPath: "\(path)/\(key)", withDestinationPath: "..data/\(key)")
            }
        }
    }

    /// The hot-reload overlay's promise: a ConfigMap updated in place (kubelet-style `..data` swap)
    /// is picked up by the running process — the module is swapped in, the flow file re-applied —
    /// within the overlay's FISO_RELOAD_INTERVAL, without a restart.
    @Test func hotReloadOverlayPicksUpConfigMapUpdatesInPlace() async throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(Kustomizations.hotReload))
        let folder = try TemporaryFolder()
        let container = try manifest.container
        let moduleMount = try manifest.mount(volume: "wasm-modules", container: container).path
        let podModules = folder.file("pod" + moduleMount)
        let podFlows = folder.file("pod" + (try manifest.mount(volume: "flow-config", container: container).path))

        var modules = try ConfigMapVolume(path: podModules)
        let original = try manifest.configMap(volume: "wasm-modules").binaryData
        try modules.publish(original)

        let httpPort = try unusedPort()
        let flowText = try #require(try manifest.configMap(volume: "flow-config").data["wasm-transform-flow.yaml"])
        func flow(path: String) -> Data {
            Data(
                flowText.replacingOccurrences(of: "\":8081\"", with: "\"127.0.0.1:\(httpPort)\"")
                    .replacingOccurrences(of: moduleMount + "/", with: podModules + "/")
                    .replacingOccurrences(of: "path: /ingest", with: "path: \(path)").utf8
            )
        }
        var flows = try ConfigMapVolume(path: podFlows)
        try flows.publish(["wasm-transform-flow.yaml": flow(path: "/ingest")])

        var environment = try manifest.environment
        let metricsPort = try unusedPort()
        environment["FISO_METRICS_ADDR"] = "127.0.0.1:\(metricsPort)"
        environment["FISO_CONFIG_DIR"] = podFlows
        environment["FISO_KAFKA_CONFIG"] = folder.file("no-kafka.yaml")
        #expect(environment["FISO_RELOAD_INTERVAL"] != nil)
        let fiso = try RunningFisoFlow(arguments: ["run"], environment: environment, logDirectory: folder)
        defer { fiso.stop() }
        _ = try await fiso.waitFor(port: metricsPort, path: "/readyz")

        // 1. A different module under the same key: swapped inside the running flow.
        let replacement = try Data(
            contentsOf: URL(fileURLWithPath: Repository.path("examples/modules/enrich-zig/enrich.wasm"))
        )
        #expect(original["enrich.wasm"] != replacement)
        try modules.publish(["enrich.wasm": replacement])
        try await Self.waitForCounter(
            "fiso_flow_module_reloads_total", with: "result=\"success\"", port: metricsPort, process: fiso
        )
        #expect(fiso.log.contains("wasm module reloaded"), "\(fiso.log)")

        // 2. The flow file changed (moved to another path): re-validated and applied.
        try flows.publish(["wasm-transform-flow.yaml": flow(path: "/ingest-v2")])
        try await Self.waitForCounter(
            "fiso_flow_config_reloads_total", with: "result=\"success\"", port: metricsPort, process: fiso
        )
        #expect(fiso.isRunning, "no restart: \(fiso.log)")
        _ = try await fiso.waitFor(port: metricsPort, path: "/readyz")
    }

    /// Waits until a counter series with `label` in its labels has a value above zero.
    static func waitForCounter(_ name: String, with label: String, port: Int, process: RunningFisoFlow) async throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let metrics = httpGet(port: port, path: "/metrics")?.body ?? ""
            for line in metrics.split(separator: "\n") where line.hasPrefix(name + "{") && line.contains(label) {
                if let value = line.split(separator: " ").last.flatMap({ Double($0) }), value > 0 { return }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw ToolFailure(description: "\(name){\(label)} never counted; log:\n\(process.log)")
    }
}
