/// One thing wrong with a flow file: where it is and what is wrong.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in (as given to the loader), or nil for problems of the whole set.
    public var file: String?
    /// Dotted field path, e.g. `source.config.listenAddr` or `interceptors[1].config.module`.
    public var path: String
    /// 1-based line in the file, when known.
    public var line: Int?
    public var message: String

    public init(file: String? = nil, path: String, line: Int? = nil, message: String) {
        self.file = file
        self.path = path
        self.line = line
        self.message = message
    }

    /// `file:line: path: message`, the form editors and CI logs link to.
    public var description: String {
        var location = file ?? "config"
        if let line { location += ":\(line)" }
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }
}

/// The problems of a whole configuration, thrown when nothing usable could be loaded.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public init(_ message: String, file: String? = nil) {
        self.problems = [ConfigProblem(file: file, path: "", message: message)]
    }

    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
