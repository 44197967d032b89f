import Foundation
import Testing
import Yams

/// The Grafana dashboard and the Prometheus alert rules in deploy/ query only metrics and labels
/// the runtime exports (as named in Sources/FisoFlow/Observability/FlowMetrics.swift).
@Suite struct MonitoringAssetTests {
    /// The runtime's metrics, read from the source that defines them: series name → is a histogram.
    struct ExportedMetrics {
        var names: [String: Bool] = [:]
        var labels: Set<String> = []

        init() throws {
            let source = try String(
                contentsOfFile: Repository.path("Sources/FisoFlow/Observability/FlowMetrics.swift"), encoding: .utf8
            )
            let descriptor = try Regex(
                #"static var (\w+): MetricNameDescriptor \{\s*descriptor\(\s*"(\w+)",\s*unit:\s*"(\w*)""#)
            var byProperty: [String: String] = [:]
            for match in source.matches(of: descriptor) {
                let property = String(match.output[1].substring ?? "")
                let name = String(match.output[2].substring ?? "")
                let unit = String(match.output[3].substring ?? "")
                byProperty[property] = "fiso_flow_" + name + (unit.isEmpty ? "" : "_" + unit)
            }
            let histogram = try Regex(#"makeDurationHistogram\(\s*descriptor: MetricNames\.(\w+)"#)
            let histograms = Set(source.matches(of: histogram).compactMap { $0.output[1].substring.map(String.init) })
            for (property, name) in byProperty { names[name] = histograms.contains(property) }
            let label = try Regex(#"\("(\w+)", "#)
            labels = Set(source.matches(of: label).compactMap { $0.output[1].substring.map(String.init) })
        }

        /// Whether a series name (with `_bucket`, `_sum`, `_count` for histograms) is exported.
        func exports(_ series: String) -> Bool {
            if names[series] != nil { return true }
            for suffix in ["_bucket", "_sum", "_count"] where series.hasSuffix(suffix) {
                if names[String(series.dropLast(suffix.count))] == true { return true }
            }
            return false
        }
    }

    /// Labels Prometheus adds (Kubernetes service discovery, the scrape, histograms).
    static let targetLabels: Set<String> = ["namespace", "pod", "job", "instance", "le", "service", "deployment"]

    static func seriesNames(in expression: String) -> [String] {
        expression.matches(of: /fiso_flow_[a-z_]+/).map { String($0.output) }
    }

    static func groupingLabels(in expression: String) -> [String] {
        expression.matches(of: /by \(([^)]*)\)/).flatMap {
            $0.output.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    /// Labels named in the selectors of fiso_flow_* series: `fiso_flow_x{label="…"}`.
    static func selectorLabels(in expression: String) -> [String] {
        expression.matches(of: /fiso_flow_[a-z_]+\{([^}]*)\}/).flatMap { match in
            match.output.1.matches(of: /(\w+)\s*(=~|!~|!=|=)/).map { String($0.output.1) }
        }
    }

    func check(_ expression: String, where place: String, metrics: ExportedMetrics) {
        let series = Self.seriesNames(in: expression)
        for name in series {
            #expect(
                metrics.exports(name),
                "\(place): \(name) is not a metric fiso-flow exports (\(metrics.names.keys.sorted()))")
        }
        guard !series.isEmpty else { return }
        let known = metrics.labels.union(Self.targetLabels)
        for label in Self.groupingLabels(in: expression) + Self.selectorLabels(in: expression) {
            #expect(known.contains(label), "\(place): label \(label) is not one fiso-flow's metrics carry")
        }
    }

    @Test func theSourceDefinesTheDocumentedMetrics() throws {
        let metrics = try ExportedMetrics()
        // The guide's three metrics, and the rest of ours.
        for name in ["fiso_flow_events_total", "fiso_flow_transform_errors_total", "fiso_flow_dead_letters_total"] {
            #expect(metrics.names[name] == false, "\(name)")
        }
        #expect(metrics.names["fiso_flow_event_duration_seconds"] == true)
        #expect(metrics.names["fiso_flow_interceptor_duration_seconds"] == true)
        #expect(metrics.names.count >= 10)
        #expect(metrics.labels.isSuperset(of: ["flow", "status", "stage", "module", "reason", "result", "code"]))
    }

    @Test func dashboardQueriesExportedMetrics() throws {
        let metrics = try ExportedMetrics()
        let data = try Data(
            contentsOf: URL(fileURLWithPath: Repository.path("deploy/grafana/fiso-flow-dashboard.json")))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var expressions: [(String, String)] = []
        func collect(_ value: Any, title: String) {
            if let object = value as? [String: Any] {
                let title = object["title"] as? String ?? title
                if let expression = object["expr"] as? String { expressions.append((title, expression)) }
                if let query = object["query"] as? [String: Any], let text = query["query"] as? String {
                    expressions.append((title, text))
                }
                for (_, member) in object { collect(member, title: title) }
            } else if let array = value as? [Any] {
                for member in array { collect(member, title: title) }
            }
        }
        collect(dashboard, title: "dashboard")
        #expect(expressions.count >= 15)
        for (title, expression) in expressions {
            check(expression, where: "dashboard panel \"\(title)\"", metrics: metrics)
        }
        // Every metric the runtime exports is on the dashboard.
        let used = Set(expressions.flatMap { Self.seriesNames(in: $0.1) })
        for name in metrics.names.keys {
            #expect(used.contains { $0 == name || $0.hasPrefix(name + "_") }, "\(name) is on no panel")
        }
    }

    @Test func alertRulesQueryExportedMetrics() throws {
        let metrics = try ExportedMetrics()
        let text = try String(
            contentsOfFile: Repository.path("deploy/prometheus/fiso-flow-alerts.yaml"), encoding: .utf8)
        let rule = KubeObject(node: try #require(try Yams.compose(yaml: text)))
        #expect(rule.kind == "PrometheusRule")
        var alerts: [String: String] = [:]
        for group in nodes(rule.node["spec"]?["groups"]) {
            for entry in nodes(group["rules"]) {
                let name = try #require(entry["alert"]?.string)
                let expression = try #require(entry["expr"]?.string)
                alerts[name] = expression
                #expect(entry["labels"]?["severity"]?.string != nil, "\(name) has a severity")
                check(expression, where: "alert \(name)", metrics: metrics)
            }
        }
        // The issue's three: error rate, dead-letter growth, readiness.
        #expect(alerts["FisoFlowHighErrorRate"]?.contains("fiso_flow_events_total") == true)
        #expect(alerts["FisoFlowDeadLetterGrowth"]?.contains("fiso_flow_dead_letters_total") == true)
        #expect(alerts["FisoFlowNotReady"] != nil)
    }

    @Test func aMisspeltMetricIsCaught() throws {
        // The check itself: a name the runtime does not export, and a label it does not set.
        let metrics = try ExportedMetrics()
        #expect(!metrics.exports("fiso_flow_event_total"))
        #expect(!metrics.exports("fiso_flow_events_total_bucket"))
        #expect(metrics.exports("fiso_flow_event_duration_seconds_bucket"))
        #expect(Self.groupingLabels(in: "sum by (flow, topic) (rate(x[5m]))") == ["flow", "topic"])
        #expect(Self.selectorLabels(in: #"fiso_flow_events_total{status="error", flow=~"a"}"#) == ["status", "flow"])
    }
}
