/// The variables an evaluation can read, by name.
///
/// ```swift
/// var activation = CELActivation()
/// activation["data"] = CELValue(json: payload)
/// activation["id"] = .string(eventID)
/// let value = try program.evaluate(activation)
/// ```
///
/// Built for the handful of variables a transform has: it is a small list searched linearly,
/// which is cheaper to build per event than a hash table.
public struct CELActivation: Sendable, ExpressibleByDictionaryLiteral {
    private var entries: [(name: String, value: CELValue)]

    public init(_ values: [String: CELValue] = [:]) {
        entries = values.map { ($0.key, $0.value) }
    }

    public init(dictionaryLiteral elements: (String, CELValue)...) {
        entries = []
        entries.reserveCapacity(elements.count)
        for (name, value) in elements { self[name] = value }
    }

    /// The value of a variable; qualified names such as `a.b` are plain keys.
    public subscript(name: String) -> CELValue? {
        get {
            for entry in entries where entry.name == name { return entry.value }
            return nil
        }
        set {
            if let index = entries.firstIndex(where: { $0.name == name }) {
                if let newValue {
                    entries[index].value = newValue
                } else {
                    entries.remove(at: index)
                }
            } else if let newValue {
                entries.append((name, newValue))
            }
        }
    }

    /// The names that have values.
    public var names: [String] { entries.map(\.name) }
}
