import FisoJSON

/// A CEL map key: maps accept `bool`, `int`, `uint` and `string` keys.
///
/// Numeric keys follow CEL's heterogeneous equality: `1` and `1u` are the same key. Strings compare
/// by code points (no Unicode normalization), unlike Swift's `String ==`.
public enum CELMapKey: Sendable, Hashable {
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case string(String)

    /// The key for a value, or nil when the value's type cannot be a map key.
    public init?(_ value: CELValue) {
        switch value {
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .uint(let value): self = .uint(value)
        case .string(let value): self = .string(value)
        default: return nil
        }
    }

    /// The key used to look a value up: like ``init(_:)``, and integral doubles find numeric keys.
    init?(lookup value: CELValue) {
        if case .double(let number) = value {
            guard number.rounded(.towardZero) == number else { return nil }
            if let exact = Int64(exactly: number) {
                self = .int(exact)
            } else if let exact = UInt64(exactly: number) {
                self = .uint(exact)
            } else {
                return nil
            }
            return
        }
        self.init(value)
    }

    public var value: CELValue {
        switch self {
        case .bool(let value): .bool(value)
        case .int(let value): .int(value)
        case .uint(let value): .uint(value)
        case .string(let value): .string(value)
        }
    }

    public static func == (lhs: CELMapKey, rhs: CELMapKey) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let left), .bool(let right)): left == right
        case (.string(let left), .string(let right)): CELStrings.equal(left, right)
        case (.int(let left), .int(let right)): left == right
        case (.uint(let left), .uint(let right)): left == right
        case (.int(let left), .uint(let right)): left >= 0 && UInt64(left) == right
        case (.uint(let left), .int(let right)): right >= 0 && UInt64(right) == left
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .bool(let value):
            hasher.combine(0 as UInt8)
            hasher.combine(value)
        case .int(let value):
            // Non-negative ints hash like the equal uint.
            if value >= 0 {
                hasher.combine(1 as UInt8)
                hasher.combine(UInt64(value))
            } else {
                hasher.combine(2 as UInt8)
                hasher.combine(value)
            }
        case .uint(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .string(let value):
            hasher.combine(3 as UInt8)
            CELStrings.hashBytes(value, into: &hasher)
        }
    }
}

/// An immutable CEL map. It either owns its entries or is a view over a JSON object, whose values
/// are converted only when read. Iteration follows insertion (or document) order.
///
/// A class, so that a ``CELValue`` holding a map is a single reference and cheap to copy.
public final class CELMap: Sendable, Sequence {
    enum Storage: Sendable {
        case native(OrderedDictionary<CELMapKey, CELValue>)
        case json(JSONObject)
    }

    let storage: Storage

    public init(_ entries: OrderedDictionary<CELMapKey, CELValue>) { storage = .native(entries) }

    /// A map view over the members of a JSON object.
    public init(json object: JSONObject) { storage = .json(object) }

    public static let empty = CELMap(OrderedDictionary<CELMapKey, CELValue>())

    public var count: Int {
        switch storage {
        case .native(let entries): entries.count
        case .json(let object): object.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// The value stored under a string key (the fast path of `m.field`).
    public func value(forStringKey key: String) -> CELValue? {
        switch storage {
        case .native(let entries): entries[.string(key)]
        case .json(let object): object[key].map(CELValue.init(json:))
        }
    }

    /// The value stored under `key`, with numeric keys matched across `int`, `uint` and `double`.
    public func value(forKey key: CELValue) -> CELValue? {
        switch storage {
        case .native(let entries):
            guard let mapKey = CELMapKey(lookup: key) else { return nil }
            return entries[mapKey]
        case .json(let object):
            guard case .string(let name) = key else { return nil }
            return object[name].map(CELValue.init(json:))
        }
    }

    public func containsKey(_ key: CELValue) -> Bool {
        switch storage {
        case .native(let entries):
            guard let mapKey = CELMapKey(lookup: key) else { return false }
            return entries[mapKey] != nil
        case .json(let object):
            guard case .string(let name) = key else { return false }
            return object[name] != nil
        }
    }

    /// The keys, in iteration order.
    public var keys: [CELValue] {
        switch storage {
        case .native(let entries): entries.keys.map(\.value)
        case .json(let object): object.keys.map { .string($0) }
        }
    }

    /// The entry at an iteration position.
    func entry(at position: Int) -> (key: CELValue, value: CELValue) {
        switch storage {
        case .native(let entries): (entries.keys[position].value, entries.values[position])
        case .json(let object): (.string(object.keys[position]), CELValue(json: object.values[position]))
        }
    }

    public func makeIterator() -> Iterator { Iterator(map: self) }

    /// Iterates `(key, value)` pairs in order.
    public struct Iterator: IteratorProtocol {
        let map: CELMap
        var position = 0

        public mutating func next() -> (key: CELValue, value: CELValue)? {
            guard position < map.count else { return nil }
            defer { position += 1 }
            return map.entry(at: position)
        }
    }
}

extension CELMap: ExpressibleByDictionaryLiteral {
    /// A map from key-value pairs; a repeated key keeps its last value.
    public convenience init(dictionaryLiteral elements: (CELMapKey, CELValue)...) {
        self.init(entries: elements)
    }

    /// A map from key-value pairs in order; a repeated key keeps its first position and last value.
    public convenience init(entries: some Sequence<(CELMapKey, CELValue)>) {
        var dictionary = OrderedDictionary<CELMapKey, CELValue>()
        for (key, value) in entries { dictionary[key] = value }
        self.init(dictionary)
    }
}

extension CELMapKey: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
