import FisoFlowTestSupport
import Foundation
import Testing
import Yams

/// deploy/ rendered with `kubectl kustomize` and checked against what the `fiso-flow` binary
/// really uses: its ports, probe paths, environment variables, mount paths and flow validation.
@Suite struct DeploymentManifestTests {
    static let flowMountPath = "/etc/fiso/flows"
    static let moduleMountPath = "/etc/fiso/modules"
    static let kafkaMountPath = "/etc/fiso/kafka"

    @Test(arguments: Kustomizations.all)
    func rendersTheGuidesCompleteDeployment(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        for kind in ["Deployment", "Service", "ServiceMonitor"] {
            #expect(manifest.objects(kind: kind).count == 1, "\(kustomization): one \(kind)")
        }
        #expect(manifest.objects.allSatisfy { $0.namespace == "production" }, "\(kustomization): namespace production")
        let flows = try manifest.configMap(volume: "flow-config")
        #expect(!flows.data.isEmpty)
        let kafka = try manifest.configMap(volume: "kafka-config")
        #expect(kafka.data["kafka.yaml"] != nil)
        if Kustomizations.withModuleConfigMap.contains(kustomization) {
            let modules = try manifest.configMap(volume: "wasm-modules")
            #expect(modules.data.isEmpty, "modules travel as binaryData, not data")
            #expect(!modules.binaryData.isEmpty)
            for (key, bytes) in modules.binaryData {
                #expect(Array(bytes.prefix(4)) == [0x00, 0x61, 0x73, 0x6D], "\(key) is a WebAssembly binary")
            }
            // A ConfigMap holds at most 1 MiB in total.
            let total = modules.binaryData.values.reduce(0) { $0 + $1.count }
            #expect(total < 1 << 20)
        }
    }

    @Test(arguments: Kustomizations.all)
    func portsAndProbesAreTheOnesTheBinaryServes(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        let container = try manifest.container
        var containerPorts: [String: Int] = [:]
        for entry in nodes(container["ports"]) {
            if let name = entry["name"]?.string, let number = entry["containerPort"]?.int {
                containerPorts[name] = number
            }
        }
        #expect(containerPorts == ["http": 8081, "metrics": 9090])

        // The metrics port is the one FISO_METRICS_ADDR makes the binary listen on.
        let metricsAddress = try #require(try manifest.environment["FISO_METRICS_ADDR"])
        #expect(port(ofAddress: metricsAddress) == containerPorts["metrics"])
        let podAnnotations = stringMap(try manifest.deployment.node["spec"]?["template"]?["metadata"]?["annotations"])
        #expect(podAnnotations["prometheus.io/scrape"] == "true")
        #expect(podAnnotations["prometheus.io/port"] == "\(containerPorts["metrics"] ?? -1)")
        #expect(podAnnotations["prometheus.io/path"] == "/metrics")

        // Every listening flow listens on a declared container port.
        let flows = try manifest.configMap(volume: "flow-config")
        for (file, text) in flows.data {
            let flow = try #require(try Yams.compose(yaml: text), "\(file)")
            guard let listen = flow["source"]?["config"]?["listenAddr"]?.string else { continue }
            let listenPort = try #require(port(ofAddress: listen))
            #expect(containerPorts.values.contains(listenPort), "\(file) listens on \(listen), not a container port")
            #expect(listenPort != containerPorts["metrics"], "\(file) may not take the metrics port")
        }

        // Probes on the metrics port, at the paths the observability server answers.
        let liveness = try #require(container["livenessProbe"]?["httpGet"])
        let readiness = try #require(container["readinessProbe"]?["httpGet"])
        #expect(liveness["path"]?.string == "/healthz")
        #expect(readiness["path"]?.string == "/readyz")
        #expect(liveness["port"]?.string == "metrics")
        #expect(readiness["port"]?.string == "metrics")

        // The Service forwards both ports; the ServiceMonitor scrapes the metrics one.
        let service = try manifest.object(kind: "Service", name: "fiso-flow")
        let podLabels = stringMap(try manifest.deployment.node["spec"]?["template"]?["metadata"]?["labels"])
        for (key, value) in stringMap(service.node["spec"]?["selector"]) { #expect(podLabels[key] == value) }
        var servicePorts: [String: (port: Int, target: String)] = [:]
        for entry in nodes(service.node["spec"]?["ports"]) {
            if let name = entry["name"]?.string, let number = entry["port"]?.int {
                servicePorts[name] = (number, entry["targetPort"]?.string ?? "")
            }
        }
        #expect(servicePorts["http"]?.port == 8081)
        #expect(servicePorts["metrics"]?.port == 9090)
        for (name, entry) in servicePorts {
            let target = entry.target
            #expect(
                containerPorts[target] != nil || containerPorts.values.contains(Int(target) ?? -1),
                "\(name) → \(target)")
        }
        let monitor = try manifest.object(kind: "ServiceMonitor", name: "fiso-flow")
        let endpoints = nodes(monitor.node["spec"]?["endpoints"])
        #expect(endpoints.count == 1)
        #expect(endpoints.first?["port"]?.string == "metrics")
        #expect(endpoints.first?["path"]?.string == "/metrics")
        for (key, value) in stringMap(monitor.node["spec"]?["selector"]?["matchLabels"]) {
            #expect(service.labels[key] == value, "the ServiceMonitor selects the Service by \(key)")
        }
    }

    @Test(arguments: Kustomizations.all)
    func environmentVariablesAreOnesTheBinaryReads(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        // `fiso-flow run --help` lists the variables the runtime reads.
        let help = try runTool(try fisoFlowBinary(), ["run", "--help"])
        #expect(help.status == 0)
        let known = Set(
            help.text.split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" })
                .map(String.init).filter { $0.hasPrefix("FISO_") || $0 == "LOG_FORMAT" }
        )
        #expect(known.isSuperset(of: ["FISO_CONFIG_DIR", "FISO_METRICS_ADDR", "FISO_KAFKA_CONFIG", "LOG_FORMAT"]))
        let environment = try manifest.environment
        for name in environment.keys {
            #expect(known.contains(name), "\(name) is not read by fiso-flow (\(known.sorted()))")
        }
        #expect(environment["FISO_CONFIG_DIR"] == Self.flowMountPath)
        #expect(environment["FISO_KAFKA_CONFIG"] == "\(Self.kafkaMountPath)/kafka.yaml")
        if let format = environment["LOG_FORMAT"] { #expect(["text", "json"].contains(format)) }
    }

    @Test(arguments: Kustomizations.all)
    func mountsAreWhereTheRuntimeLooks(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        let container = try manifest.container
        let environment = try manifest.environment
        let flowMount = try manifest.mount(volume: "flow-config", container: container)
        let moduleMount = try manifest.mount(volume: "wasm-modules", container: container)
        let kafkaMount = try manifest.mount(volume: "kafka-config", container: container)
        #expect(flowMount.path == Self.flowMountPath && flowMount.readOnly)
        #expect(moduleMount.path == Self.moduleMountPath && moduleMount.readOnly)
        #expect(kafkaMount.path == Self.kafkaMountPath && kafkaMount.readOnly)
        #expect(environment["FISO_CONFIG_DIR"] == flowMount.path)
        let kafkaFile = try #require(environment["FISO_KAFKA_CONFIG"])
        #expect((kafkaFile as NSString).deletingLastPathComponent == kafkaMount.path)
        #expect(try manifest.configMap(volume: "kafka-config").data[(kafkaFile as NSString).lastPathComponent] != nil)

        // Every module a flow names is a file in the module volume.
        var available: Set<String>
        if Kustomizations.withModuleConfigMap.contains(kustomization) {
            available = Set(try manifest.configMap(volume: "wasm-modules").binaryData.keys)
        } else {
            available = try Self.filesWrittenByInitContainers(manifest, volume: "wasm-modules")
            #expect(!available.isEmpty, "an init container fills the module volume")
        }
        for (file, text) in try manifest.configMap(volume: "flow-config").data {
            let flow = try #require(try Yams.compose(yaml: text))
            for interceptor in nodes(flow["interceptors"]) where interceptor["type"]?.string == "wasm" {
                let module = try #require(interceptor["config"]?["module"]?.string)
                #expect((module as NSString).deletingLastPathComponent == moduleMount.path, "\(file): \(module)")
                #expect(
                    available.contains((module as NSString).lastPathComponent), "\(file): \(module) not in \(available)"
                )
            }
        }
    }

    /// The file names init containers write into a volume: `/mount/NAME` in their command, with
    /// the volume mounted at `/mount`.
    static func filesWrittenByInitContainers(_ manifest: RenderedManifest, volume: String) throws -> Set<String> {
        var names: Set<String> = []
        for initContainer in nodes(try manifest.podSpec["initContainers"]) {
            guard let mount = try? manifest.mount(volume: volume, container: initContainer) else { continue }
            let script = nodes(initContainer["command"]).compactMap(\.string).joined(separator: " ")
            for word in script.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\"" })
            where word.hasPrefix(mount.path + "/") && !word.contains(".part") {
                names.insert(String(word.dropFirst(mount.path.count + 1)))
            }
        }
        return names
    }

    @Test(arguments: Kustomizations.all)
    func podRunsUnprivilegedWithAReadOnlyRoot(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        let pod = try manifest.podSpec
        #expect(pod["securityContext"]?["runAsNonRoot"]?.bool == true)
        #expect((pod["securityContext"]?["runAsUser"]?.int ?? 0) > 0)
        let containers = nodes(pod["containers"]) + nodes(pod["initContainers"])
        let volumes = nodes(pod["volumes"])
        for container in containers {
            let name = container["name"]?.string ?? "?"
            let context = container["securityContext"]
            #expect(context?["readOnlyRootFilesystem"]?.bool == true, "\(name)")
            #expect(context?["allowPrivilegeEscalation"]?.bool == false, "\(name)")
            #expect(nodes(context?["capabilities"]?["drop"]).compactMap(\.string) == ["ALL"], "\(name)")
            #expect(container["resources"]?["limits"] != nil, "\(name) has limits")
            // Anything writable is an emptyDir.
            for mount in nodes(container["volumeMounts"]) where mount["readOnly"]?.bool != true {
                let volume = volumes.first { $0["name"]?.string == mount["name"]?.string }
                #expect(
                    volume?["emptyDir"] != nil,
                    "\(name): writable mount \(mount["mountPath"]?.string ?? "?") is not an emptyDir")
                #expect(volume?["configMap"] == nil)
            }
        }
        let main = try manifest.container
        let requests = main["resources"]?["requests"]
        #expect(requests?["cpu"]?.string == "100m")
        #expect(requests?["memory"]?.string == "128Mi")
    }

    @Test(arguments: Kustomizations.all)
    func everyFlowInTheConfigMapsPassesValidate(kustomization: String) throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(kustomization))
        let folder = try TemporaryFolder()
        let flows = try manifest.configMap(volume: "flow-config").data
        #expect(!flows.isEmpty)
        for (file, text) in flows { try folder.write("flows/\(file)", Data(text.utf8)) }
        let kafka = try #require(try manifest.configMap(volume: "kafka-config").data["kafka.yaml"])
        try folder.write("kafka/kafka.yaml", Data(kafka.utf8))
        let result = try runTool(
            try fisoFlowBinary(), ["validate", folder.file("flows"), "--kafka-config", folder.file("kafka/kafka.yaml")]
        )
        #expect(result.status == 0, "\(kustomization): \(result.text)\(result.stderr)")
        #expect(
            result.text.contains("\(flows.count) flow files checked: \(flows.count) valid, 0 invalid"), "\(result.text)"
        )
    }

    @Test func baseRollsTheDeploymentWhenAModuleChanges() throws {
        // Copy deploy/base, change one byte of the module, and render both.
        let folder = try TemporaryFolder()
        let copy = folder.file("base")
        try FileManager.default.copyItem(atPath: Repository.path(Kustomizations.base), toPath: copy)
        let before = try RenderedManifest(kustomization: copy)
        let modulePath = (copy as NSString).appendingPathComponent("modules/enrich.wasm")
        var module = try Data(contentsOf: URL(fileURLWithPath: modulePath))
        module.append(0)
        try module.write(to: URL(fileURLWithPath: modulePath))
        let after = try RenderedManifest(kustomization: copy)
        let oldName = try before.configMap(volume: "wasm-modules").name
        let newName = try after.configMap(volume: "wasm-modules").name
        #expect(oldName.hasPrefix("wasm-modules-") && newName.hasPrefix("wasm-modules-"))
        #expect(oldName != newName, "a module change renames the ConfigMap, so the pod template changes")
        #expect(try before.configMap(volume: "flow-config").name == after.configMap(volume: "flow-config").name)
    }

    @Test func hotReloadOverlayKeepsConfigMapNamesFixed() throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(Kustomizations.hotReload))
        #expect(try manifest.configMap(volume: "flow-config").name == "fiso-flow-config")
        #expect(try manifest.configMap(volume: "wasm-modules").name == "wasm-modules")
        #expect(try manifest.configMap(volume: "kafka-config").name == "kafka-config")
        // The kubelet updates ConfigMap volumes in place only without subPath.
        for mount in nodes(try manifest.container["volumeMounts"]) { #expect(mount["subPath"] == nil) }
        let interval = try #require(try manifest.environment["FISO_RELOAD_INTERVAL"])
        #expect(!interval.isEmpty)
    }

    @Test func largeModuleOverlayFetchesIntoAnEmptyDir() throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(Kustomizations.largeModule))
        let pod = try manifest.podSpec
        let volume = try #require(nodes(pod["volumes"]).first { $0["name"]?.string == "wasm-modules" })
        #expect(volume["emptyDir"] != nil)
        #expect(volume["configMap"] == nil)
        #expect(manifest.objects(kind: "ConfigMap").allSatisfy { !$0.name.hasPrefix("wasm-modules") })
        let initContainer = try #require(nodes(pod["initContainers"]).first)
        let script = nodes(initContainer["command"]).compactMap(\.string).joined(separator: " ")
        #expect(script.contains("sha256sum -c"), "the download is verified")
        var environment: [String: String] = [:]
        for variable in nodes(initContainer["env"]) {
            if let name = variable["name"]?.string { environment[name] = variable["value"]?.string }
        }
        let checksum = try #require(environment["MODULE_SHA256"])
        #expect(checksum.count == 64 && checksum.allSatisfy(\.isHexDigit))
        // The module it stands for is too large for a ConfigMap, which is why the overlay exists.
        let goModule = try Data(
            contentsOf: URL(fileURLWithPath: Repository.path("examples/modules/enrich-go/enrich.wasm")))
        #expect(goModule.count > 1 << 20)
    }

    @Test func baseModuleIsTheExampleModule() throws {
        let manifest = try RenderedManifest(kustomization: Repository.path(Kustomizations.base))
        let shipped = try #require(try manifest.configMap(volume: "wasm-modules").binaryData["enrich.wasm"])
        let example = try Data(
            contentsOf: URL(fileURLWithPath: Repository.path("examples/modules/enrich-c/enrich.wasm")))
        #expect(shipped == example, "deploy/base/modules/enrich.wasm is stale: run deploy/sync-modules.sh")
    }
}
