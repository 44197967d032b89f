import FisoGRPC
import FisoTemporal
import Foundation

/// `sink.type: temporal` settings, spelled as the Go original spells them (docs/temporal.md).
public struct TemporalSinkSettings: SinkSettings {
    public static let defaultTimeout = Duration.seconds(10)

    public enum Mode: Sendable, Equatable {
        case start
        case signal(name: String)
    }

    /// Where a workflow id comes from.
    public enum WorkflowID: Sendable, Equatable {
        /// No `workflowIdExpr`: `<workflowType>-<CloudEvent id>`, the same for every retry.
        case perEvent
        /// The Go original's template form, `order-{{.order_id}}`: text and dotted paths.
        case template([TemplatePart])
        /// Plain text or CEL, told apart by the `cloudevents` override rule; decided when the flow is
        /// built, since that rule depends on the source's variables.
        case textOrExpression(String)
    }

    public enum TemplatePart: Sendable, Equatable {
        case text(String)
        case path([String])
    }

    public struct TLS: Sendable, Equatable {
        public var disabled = false
        public var enabled = false
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public var skipVerify = false
    }

    public struct OIDC: Sendable, Equatable {
        public var tokenURL: String
        public var clientID: String
        public var clientSecret: HeaderValueSource
        public var scopes: [String]
    }

    public enum Auth: Sendable, Equatable {
        case none
        case apiKey(String)
        case apiKeyEnv(String)
        case tokenFile(String)
        case oidc(OIDC)
    }

    public var hostPort: String
    public var namespace = "default"
    public var taskQueue: String
    public var workflowType: String
    public var timeout = Self.defaultTimeout
    public var mode = Mode.start
    public var workflowID = WorkflowID.perEvent
    /// CEL expressions, one per workflow argument; empty sends the event data as the only one.
    public var params: [String] = []
    public var tls = TLS()
    public var auth = Auth.none

    /// Whether calls use TLS: asked for, implied by TLS files, or — as with the Temporal SDKs — by
    /// a bearer credential, unless `tls.disabled`.
    public var usesTLS: Bool {
        if tls.disabled { return false }
        if tls.enabled || tls.caFile != nil || tls.certificateFile != nil || tls.skipVerify { return true }
        return auth != .none
    }
}

extension TemporalSinkSettings {
    public static let typeName = "temporal"
    public static let configKeys = [
        "hostPort", "namespace", "taskQueue", "workflowType", "workflowIdExpr", "mode", "signalName", "timeout",
        "params", "tls", "auth",
    ]

    public static func parse(_ config: ConfigMapping, context: ConfigContext) -> Self? {
        let hostPort = config["hostPort"].requiredString()
        if let hostPort, (try? HostPort(parsing: hostPort)) == nil || hostPort.hasPrefix(":") {
            config["hostPort"].problem("\"\(hostPort)\" is not host:port")
        }
        let taskQueue = config["taskQueue"].requiredString()
        let workflowType = config["workflowType"].requiredString()
        var settings = TemporalSinkSettings(
            hostPort: hostPort ?? "", taskQueue: taskQueue ?? "", workflowType: workflowType ?? "")
        if let namespace = config["namespace"].string() {
            if namespace.isEmpty {
                config["namespace"].problem("must not be empty")
            } else {
                settings.namespace = namespace
            }
        }
        if let timeout = config["timeout"].duration(minimum: .milliseconds(1)) { settings.timeout = timeout }

        let signalName = config["signalName"].string()
        switch config["mode"].oneOf(["start", "signal"]) ?? "start" {
        case "signal":
            if let signalName, !signalName.isEmpty {
                settings.mode = .signal(name: signalName)
            } else {
                config["signalName"].problem("is required when mode is signal")
            }
            if config["workflowIdExpr"].isMissing {
                config["workflowIdExpr"].problem("is required when mode is signal (it names the workflow to signal)")
            }
        default:
            if signalName != nil { config["signalName"].problem("is only used when mode is signal") }
        }

        if let text = config["workflowIdExpr"].string() {
            if text.trimmingCharacters(in: .whitespaces).isEmpty {
                config["workflowIdExpr"].problem("must not be empty")
            } else if text.contains("{{") {
                if let parts = parseTemplate(text) {
                    settings.workflowID = .template(parts)
                } else {
                    config["workflowIdExpr"].problem(
                        "\"\(text)\" is not a template: write {{.field}} or {{.nested.field}} (paths into the event data)"
                    )
                }
            } else {
                settings.workflowID = .textOrExpression(text)
            }
        }

        for element in config["params"].sequence() ?? [] {
            guard let block = element.mapping(allowedKeys: ["expr"]) else { continue }
            if let expression = block["expr"].requiredString() { settings.params.append(expression) }
        }

        readTLS(config["tls"], into: &settings)
        readAuth(config["auth"], settings: &settings)
        guard hostPort != nil, taskQueue != nil, workflowType != nil else { return nil }
        return settings
    }

    /// `order-{{.order_id}}-{{ .customer.id }}` as text and paths; nil when malformed.
    static func parseTemplate(_ text: String) -> [TemplatePart]? {
        var parts: [TemplatePart] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else { return nil }
            let inner = String(rest[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespaces)
            guard inner.hasPrefix("."), inner.count > 1 else { return nil }
            let segments = inner.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard segments.allSatisfy({ !$0.isEmpty && !$0.contains(" ") && !$0.contains("}") }) else { return nil }
            parts.append(.path(segments))
            rest = rest[close.upperBound...]
        }
        if rest.contains("}}") { return nil }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    private static func readTLS(_ node: ConfigNode, into settings: inout TemporalSinkSettings) {
        guard !node.isMissing,
            let block = node.mapping(allowedKeys: [
                "disabled", "enabled", "caFile", "certFile", "keyFile", "skipVerify",
            ])
        else { return }
        var tls = TLS()
        tls.disabled = block["disabled"].bool() ?? false
        tls.enabled = block["enabled"].bool() ?? false
        tls.caFile = block["caFile"].string()
        tls.certificateFile = block["certFile"].string()
        tls.keyFile = block["keyFile"].string()
        tls.skipVerify = block["skipVerify"].bool() ?? false
        if tls.certificateFile != nil, tls.keyFile == nil {
            block["keyFile"].problem("is required when certFile is set")
        }
        if tls.keyFile != nil, tls.certificateFile == nil {
            block["certFile"].problem("is required when keyFile is set")
        }
        if tls.disabled, tls.enabled || tls.caFile != nil || tls.certificateFile != nil || tls.skipVerify {
            block["disabled"].problem("contradicts the other tls settings")
        }
        settings.tls = tls
    }

    private static func readAuth(_ node: ConfigNode, settings: inout TemporalSinkSettings) {
        let methods = ["apiKey", "apiKeyEnv", "tokenFile", "oidc", "azure"]
        var chosen: [String] = []
        if !node.isMissing, let block = node.mapping(allowedKeys: methods) {
            chosen = methods.filter { !block[$0].isMissing }
            if let key = block["apiKey"].string() {
                if key.isEmpty { block["apiKey"].problem("must not be empty") }
                settings.auth = .apiKey(key)
            }
            if let name = block["apiKeyEnv"].string() {
                if name.isEmpty { block["apiKeyEnv"].problem("must name an environment variable") }
                settings.auth = .apiKeyEnv(name)
            }
            if let path = block["tokenFile"].string() {
                if !path.hasPrefix("/") { block["tokenFile"].problem("must be an absolute path") }
                settings.auth = .tokenFile(path)
            }
            if !block["oidc"].isMissing, let oidc = readOIDC(block["oidc"]) { settings.auth = .oidc(oidc) }
            if !block["azure"].isMissing {
                block["azure"].problem(
                    "Azure workload identity is not supported by this runtime: use oidc (client credentials) or tokenFile"
                )
            }
        }
        if settings.tls.certificateFile != nil, settings.tls.keyFile != nil { chosen.append("mTLS (tls.certFile)") }
        if chosen.count > 1 {
            node.problem(
                "only one auth method allowed, found \(chosen.joined(separator: " and ")): use one of apiKey, "
                    + "apiKeyEnv, tokenFile, oidc or mTLS client certificates")
        }
    }

    private static func readOIDC(_ node: ConfigNode) -> OIDC? {
        guard
            let block = node.mapping(allowedKeys: ["tokenURL", "clientID", "clientSecret", "clientSecretEnv", "scopes"])
        else { return nil }
        let tokenURL = block["tokenURL"].requiredString()
        let clientID = block["clientID"].requiredString()
        var secret: HeaderValueSource?
        switch (block["clientSecret"].string(), block["clientSecretEnv"].string()) {
        case (let value?, nil): secret = .literal(value)
        case (nil, let name?): secret = .environment(name)
        case (nil, nil): block.problem("needs clientSecret or clientSecretEnv")
        case (_?, _?): block["clientSecretEnv"].problem("clientSecret and clientSecretEnv are mutually exclusive")
        }
        if let tokenURL, !(tokenURL.hasPrefix("https://") || tokenURL.hasPrefix("http://")) {
            block["tokenURL"].problem("\"\(tokenURL)\" is not an http:// or https:// URL")
        }
        guard let tokenURL, let clientID, let secret else { return nil }
        return OIDC(
            tokenURL: tokenURL, clientID: clientID, clientSecret: secret, scopes: block["scopes"].stringList() ?? [])
    }

    public func makeComponent(context: FlowBuildContext) async throws -> any EventSink {
        try await TemporalSink.make(settings: self, context: context)
    }
}
