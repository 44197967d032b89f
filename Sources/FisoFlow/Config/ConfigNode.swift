import FisoQuantities
import Yams

/// Collects every problem found while reading one file, instead of stopping at the first.
public final class ConfigProblems {
    public let file: String?
    public private(set) var all: [ConfigProblem] = []

    public init(file: String?) {
        self.file = file
    }

    public func add(_ path: String, line: Int?, _ message: String) {
        all.append(ConfigProblem(file: file, path: path, line: line, message: message))
    }

    public var isEmpty: Bool { all.isEmpty }
}

/// A YAML node together with its field path, read with typed accessors that record a problem
/// (with path and line) when the value is missing or has the wrong shape.
///
/// Every mapping read through ``mapping(allowedKeys:)`` reports keys it does not know, so a
/// misspelt field is an error rather than a silently ignored setting.
public struct ConfigNode {
    let node: Node?
    public let path: String
    let problems: ConfigProblems
    /// The line of the enclosing mapping, reported for a missing key.
    let parentLine: Int?

    init(node: Node?, path: String, problems: ConfigProblems, parentLine: Int? = nil) {
        self.node = node
        self.path = path
        self.problems = problems
        self.parentLine = parentLine
    }

    public var line: Int? { node?.mark?.line ?? parentLine }

    /// True when the key was absent or explicitly `null`/`~`.
    public var isMissing: Bool {
        guard let node else { return true }
        if case .scalar(let scalar) = node, isNullText(scalar) { return true }
        return false
    }

    /// True when the node is a scalar (a string, number or boolean).
    public var isScalar: Bool { node?.scalar != nil }

    private func isNullText(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    public func problem(_ message: String) {
        problems.add(path, line: line, message)
    }

    func child(_ key: String) -> ConfigNode {
        ConfigNode(
            node: node?.mapping?[key], path: path.isEmpty ? key : "\(path).\(key)", problems: problems, parentLine: line
        )
    }

    // MARK: Shapes

    /// The members of a mapping, reporting unknown keys. Nil (with a problem) when the node is
    /// present but not a mapping; an empty reader when it is missing.
    public func mapping(allowedKeys: [String]) -> ConfigMapping? {
        guard !isMissing, let node else { return ConfigMapping(node: self, keys: []) }
        guard let mapping = node.mapping else {
            problem("expected a mapping (key: value pairs), found \(describe(node))")
            return nil
        }
        var keys: [String] = []
        for (keyNode, _) in mapping {
            guard let key = keyNode.scalar?.string else {
                problems.add(path, line: keyNode.mark?.line, "mapping keys must be strings")
                continue
            }
            keys.append(key)
            if !allowedKeys.contains(key) {
                let location = path.isEmpty ? key : "\(path).\(key)"
                problems.add(location, line: keyNode.mark?.line, unknownKeyMessage(key, allowed: allowedKeys))
            }
        }
        return ConfigMapping(node: self, keys: keys)
    }

    /// A mapping whose keys are user data (header names, field names, cluster names).
    public func freeMapping() -> [(key: String, value: ConfigNode)]? {
        guard !isMissing, let node else { return [] }
        guard let mapping = node.mapping else {
            problem("expected a mapping (key: value pairs), found \(describe(node))")
            return nil
        }
        var members: [(key: String, value: ConfigNode)] = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                problems.add(path, line: keyNode.mark?.line, "mapping keys must be strings")
                continue
            }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            members.append((key, ConfigNode(node: valueNode, path: childPath, problems: problems)))
        }
        return members
    }

    /// The elements of a sequence (a missing node is an empty sequence).
    public func sequence() -> [ConfigNode]? {
        guard !isMissing, let node else { return [] }
        guard let sequence = node.sequence else {
            problem("expected a list, found \(describe(node))")
            return nil
        }
        return sequence.enumerated().map { index, element in
            ConfigNode(node: element, path: "\(path)[\(index)]", problems: problems)
        }
    }

    // MARK: Scalars

    /// A string scalar. Numbers and booleans written without quotes are accepted as their text,
    /// since YAML users rarely think of `port: 8080` as different from `port: "8080"`.
    public func string() -> String? {
        guard !isMissing, let node else { return nil }
        guard let scalar = node.scalar else {
            problem("expected a string, found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    public func requiredString() -> String? {
        if isMissing {
            problem("is required")
            return nil
        }
        guard let value = string() else { return nil }
        if value.isEmpty {
            problem("must not be empty")
            return nil
        }
        return value
    }

    public func int(range: ClosedRange<Int>? = nil) -> Int? {
        guard !isMissing, let node else { return nil }
        guard let scalar = node.scalar, let value = Int(scalar.string.replacingUnderscores()) else {
            problem("expected a whole number, found \(describe(node))")
            return nil
        }
        if let range, !range.contains(value) {
            problem("must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    public func double() -> Double? {
        guard !isMissing, let node else { return nil }
        guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
            problem("expected a number, found \(describe(node))")
            return nil
        }
        return value
    }

    public func bool() -> Bool? {
        guard !isMissing, let node else { return nil }
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem("expected true or false, found \(describe(node))")
            return nil
        }
    }

    /// A Go-style duration such as `250ms`, `5s` or `1m30s`.
    public func duration(minimum: Duration = .zero) -> Duration? {
        guard let text = string() else { return nil }
        do {
            let value = try GoDuration.parse(text)
            if value < minimum {
                problem("must be at least \(GoDuration.format(minimum)), got \(text)")
                return nil
            }
            return value
        } catch {
            problem("\(error)")
            return nil
        }
    }

    /// A byte size: a plain number of bytes or a Kubernetes quantity such as `128Mi` or `1M`.
    public func byteSize(minimum: Int = 0) -> Int? {
        guard let text = string() else { return nil }
        do {
            let value = try ByteSize.parse(text)
            if value < minimum {
                problem("must be at least \(minimum) bytes, got \(text)")
                return nil
            }
            return value
        } catch {
            problem("\(error)")
            return nil
        }
    }

    /// One of a fixed set of words.
    public func oneOf(_ choices: [String]) -> String? {
        guard let value = string() else { return nil }
        guard choices.contains(value) else {
            problem("must be one of \(choices.joined(separator: ", ")), got \"\(value)\"")
            return nil
        }
        return value
    }

    /// A mapping of strings to strings (headers, environment variables, librdkafka properties).
    public func stringMap() -> [(key: String, value: String)]? {
        guard let members = freeMapping() else { return nil }
        var result: [(key: String, value: String)] = []
        for (key, value) in members {
            if let text = value.string() {
                result.append((key, text))
            } else if value.isMissing {
                value.problem("must have a value")
            }
        }
        return result
    }

    /// The strings of a list of scalars, or nil — without recording a problem — for anything else
    /// (for looking ahead at a node that its owner reads and checks later).
    func quietStringList() -> [String]? {
        guard let sequence = node?.sequence else { return nil }
        let strings = sequence.compactMap { $0.scalar?.string }
        return strings.count == sequence.count ? strings : nil
    }

    /// A list of strings; a single string is accepted as a list of one.
    public func stringList() -> [String]? {
        guard !isMissing, let node else { return nil }
        if node.scalar != nil { return string().map { [$0] } }
        guard let elements = sequence() else { return nil }
        return elements.compactMap { $0.string() }
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// The members of one mapping whose keys were checked against the allowed set.
public struct ConfigMapping {
    let node: ConfigNode
    public let keys: [String]

    public subscript(key: String) -> ConfigNode { node.child(key) }
    public var path: String { node.path }
    public var line: Int? { node.line }
    public func problem(_ message: String) { node.problem(message) }
}

func unknownKeyMessage(_ key: String, allowed: [String]) -> String {
    var message = "unknown field \"\(key)\""
    if let suggestion = allowed.min(by: { editDistance($0, key) < editDistance($1, key) }),
        editDistance(suggestion, key) <= max(2, key.count / 3)
    {
        message += "; did you mean \"\(suggestion)\"?"
    } else if !allowed.isEmpty {
        message += " (allowed: \(allowed.joined(separator: ", ")))"
    }
    return message
}

/// Levenshtein distance, case-insensitive, for "did you mean" hints.
func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let left = Array(lhs.lowercased())
    let right = Array(rhs.lowercased())
    if left.isEmpty { return right.count }
    if right.isEmpty { return left.count }
    var previous = Array(0...right.count)
    var current = [Int](repeating: 0, count: right.count + 1)
    for i in 1...left.count {
        current[0] = i
        for j in 1...right.count {
            let substitution = previous[j - 1] + (left[i - 1] == right[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[right.count]
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        contains("_") ? String(filter { $0 != "_" }) : self
    }
}
