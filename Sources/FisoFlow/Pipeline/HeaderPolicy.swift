/// Which of a message's headers become the event's headers (and so reach interceptors, CEL and the
/// sink). A source's `forwardHeaders` and `dropHeaders` set it; the default keeps everything except
/// the caller's credentials and client identity, and fields that belong to one connection.
public struct HeaderPolicy: Sendable, Equatable {
    /// Dropped unless `forwardHeaders` names them: they carry the caller's credentials for our
    /// ingress or describe the caller's client, not the event.
    public static let sensitive: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "user-agent",
    ]

    /// Lower-cased names that alone may pass (`forwardHeaders`); nil lets every name pass that is
    /// not dropped.
    public var forward: Set<String>?
    /// Lower-cased names dropped besides the sensitive ones (`dropHeaders`).
    public var drop: Set<String>

    public init(forward: [String]? = nil, drop: [String] = []) {
        self.forward = forward.map { Set($0.map { $0.lowercased() }) }
        self.drop = Set(drop.map { $0.lowercased() })
    }

    public static let standard = HeaderPolicy()

    /// The keys a source's `config` accepts for its policy.
    static let configKeys = ["forwardHeaders", "dropHeaders"]

    /// Whether a header named `name` reaches the event. Hop-by-hop fields never do.
    public func admits(_ name: String) -> Bool {
        let lowercased = name.lowercased()
        if HTTPHeaderRules.isHopByHop(lowercased) || drop.contains(lowercased) { return false }
        if let forward { return forward.contains(lowercased) }
        return !Self.sensitive.contains(lowercased)
    }

    /// Reads `forwardHeaders` and `dropHeaders` of a source's `config`.
    static func read(_ config: ConfigMapping) -> HeaderPolicy {
        func names(_ key: String) -> [String]? {
            guard let list = config[key].stringList() else { return nil }
            for name in list where !HTTPHeaderRules.isValidName(name) {
                config[key].problem("\"\(name)\" is not a valid header name")
            }
            return list
        }
        let forward = names("forwardHeaders")
        let drop = names("dropHeaders") ?? []
        if let forward {
            for name in forward where HTTPHeaderRules.isHopByHop(name.lowercased()) {
                config["forwardHeaders"].problem(
                    "\(name) describes one connection and is never forwarded; remove it from forwardHeaders")
            }
        }
        return HeaderPolicy(forward: forward, drop: drop)
    }

    /// The fields of `fields` this policy admits, repeated names (in any case) joined with ", "
    /// under the first spelling. Fields named with `bindingPrefix` (a CloudEvents binding's `ce-` or
    /// `ce_`) pass unfiltered: the event decoder reads them as attributes and then consumes them.
    func headers(
        from fields: some Sequence<(name: String, value: String)>, keepingPrefixed bindingPrefix: String? = nil
    ) -> EventHeaders {
        var admitted: [(name: String, value: String)] = []
        for (name, value) in fields
        where admits(name) || bindingPrefix.map({ name.lowercased().hasPrefix($0) }) == true {
            if let index = admitted.firstIndex(where: { $0.name.caseInsensitiveEquals(name) }) {
                admitted[index].value += ", " + value
            } else {
                admitted.append((name, value))
            }
        }
        return EventHeaders(admitted.lazy.map { ($0.name, $0.value) })
    }
}
