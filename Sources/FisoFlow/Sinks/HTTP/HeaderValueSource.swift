import Foundation
import NIOConcurrencyHelpers

/// Where a sink's static header value comes from: the flow file, or — for credentials, which
/// should not live in flow files — an environment variable or a file (a mounted Kubernetes
/// Secret). Values never appear in logs, errors or `/readyz`; errors name only where they were
/// looked for.
///
/// ```yaml
/// headers:
///   X-Team: orders                                  # literal
///   Authorization: {valueFrom: {env: ORDERS_TOKEN}}  # read when the flow starts
///   X-Api-Key: {valueFrom: {file: /etc/secrets/key}} # re-read when the file changes
/// ```
public enum HeaderValueSource: Sendable, Equatable {
    case literal(String)
    case environment(String)
    case file(String)

    /// How often a file value is checked for changes (a rotated Secret).
    static let fileRecheckInterval: Duration = .seconds(5)

    struct LookupError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads a header value: a string, or `{valueFrom: {env: NAME}}` / `{valueFrom: {file: PATH}}`.
    static func read(_ node: ConfigNode) -> HeaderValueSource? {
        if node.isMissing {
            node.problem("must have a value")
            return nil
        }
        if node.isScalar { return node.string().map { .literal($0) } }
        guard let block = node.mapping(allowedKeys: ["valueFrom"]) else { return nil }
        guard let from = block["valueFrom"].mapping(allowedKeys: ["env", "file"]) else { return nil }
        switch (from["env"].string(), from["file"].string()) {
        case (let name?, nil):
            guard !name.isEmpty else {
                from["env"].problem("must name an environment variable")
                return nil
            }
            return .environment(name)
        case (nil, let path?):
            guard path.hasPrefix("/") else {
                from["file"].problem("must be an absolute path")
                return nil
            }
            return .file(path)
        case (nil, nil):
            block["valueFrom"].problem("needs env: NAME or file: PATH")
            return nil
        case (_?, _?):
            block["valueFrom"].problem("takes env or file, not both")
            return nil
        }
    }

    /// A literal must be a valid header value; the others are checked when read.
    var isValidLiteral: Bool {
        if case .literal(let text) = self { return HTTPHeaderRules.isValidValue(text) }
        return true
    }

    /// The value ready for requests: fixed for literals and variables, re-read from a changed file.
    func resolved() throws -> Resolved {
        switch self {
        case .literal(let text): return Resolved(fixed: text)
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw LookupError(description: "environment variable \(name) is not set")
            }
            guard HTTPHeaderRules.isValidValue(value) else {
                throw LookupError(description: "environment variable \(name) is not a valid header value")
            }
            return Resolved(fixed: value)
        case .file(let path):
            let resolved = Resolved(path: path)
            _ = try resolved.current()
            return resolved
        }
    }

    /// A resolved value; a file's is cached and re-read at most every ``fileRecheckInterval``.
    final class Resolved: Sendable {
        private let fixed: String?
        private let path: String?
        private let cache = NIOLockedValueBox<(value: String, checked: ContinuousClock.Instant)?>(nil)

        init(fixed: String) {
            self.fixed = fixed
            self.path = nil
        }

        init(path: String) {
            self.fixed = nil
            self.path = path
        }

        func current() throws -> String {
            if let fixed { return fixed }
            guard let path else { return "" }
            let now = ContinuousClock.now
            if let cached = cache.withLockedValue({ $0 }), now - cached.checked < HeaderValueSource.fileRecheckInterval
            {
                return cached.value
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LookupError(description: "cannot read \(path)")
            }
            // Secret files usually end with a newline that is not part of the value.
            var value = String(decoding: data, as: UTF8.self)
            while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
            guard HTTPHeaderRules.isValidValue(value) else {
                throw LookupError(description: "\(path) does not hold a valid header value")
            }
            cache.withLockedValue { $0 = (value, now) }
            return value
        }
    }
}
