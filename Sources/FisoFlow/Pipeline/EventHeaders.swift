/// The headers an event carries: HTTP request headers, Kafka record headers, gRPC metadata, or
/// what an interceptor returned. Names keep their spelling; lookups ignore case, as in HTTP.
public struct EventHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: some Sequence<(String, String)>) {
        for (name, value) in fields { self[name] = value }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The value of `name` (any case). Setting replaces an existing field of any case; nil removes it.
    public subscript(name: String) -> String? {
        get { fields.first { $0.name.caseInsensitiveEquals(name) }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.name.caseInsensitiveEquals(name) }) {
                if let newValue {
                    fields[index] = (name, newValue)
                } else {
                    fields.remove(at: index)
                }
            } else if let newValue {
                fields.append((name, newValue))
            }
        }
    }

    /// Removes the fields whose name satisfies `predicate`.
    public mutating func removeAll(where predicate: (String) -> Bool) {
        fields.removeAll { predicate($0.name) }
    }

    /// Removes the fields whose name starts with `prefix` (any case).
    public mutating func removeAll(prefixed prefix: String) {
        let prefix = prefix.lowercased()
        fields.removeAll { $0.name.lowercased().hasPrefix(prefix) }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        fields.makeIterator()
    }

    public static func == (lhs: EventHeaders, rhs: EventHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

extension String {
    /// ASCII case-insensitive comparison, the rule for HTTP field names.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let left = utf8
        let right = other.utf8
        guard left.count == right.count else { return false }
        for (a, b) in zip(left, right) where a != b {
            let lowerA = (a >= 65 && a <= 90) ? a + 32 : a
            let lowerB = (b >= 65 && b <= 90) ? b + 32 : b
            if lowerA != lowerB { return false }
        }
        return true
    }

    /// The text without leading and trailing whitespace.
    func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
