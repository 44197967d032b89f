import FisoJSON

/// An immutable CEL list. It either owns CEL values or is a view over a JSON array, whose
/// elements are converted only when read.
///
/// A class, so that a ``CELValue`` holding a list is a single reference and cheap to copy.
public final class CELList: Sendable, RandomAccessCollection {
    enum Storage: Sendable {
        case values([CELValue])
        case json([JSONValue])
    }

    let storage: Storage

    public init(_ elements: [CELValue]) { storage = .values(elements) }

    init(storage: Storage) { self.storage = storage }

    /// A list view over the elements of a JSON array.
    public init(json elements: [JSONValue]) { storage = .json(elements) }

    public static let empty = CELList([])

    public var startIndex: Int { 0 }

    public var endIndex: Int {
        switch storage {
        case .values(let values): values.count
        case .json(let values): values.count
        }
    }

    public var count: Int { endIndex }

    public subscript(position: Int) -> CELValue {
        switch storage {
        case .values(let values): values[position]
        case .json(let values): CELValue(json: values[position])
        }
    }

    /// The elements as an array of CEL values (converting JSON-backed elements).
    public var elements: [CELValue] {
        switch storage {
        case .values(let values): values
        case .json(let values): values.map(CELValue.init(json:))
        }
    }

    /// `self + other`, keeping JSON storage when both sides are JSON-backed.
    func concatenating(_ other: CELList) -> CELList {
        switch (storage, other.storage) {
        case (.json(let left), .json(let right)): CELList(json: left + right)
        case (.values(let left), .values(let right)): CELList(left + right)
        default: CELList(elements + other.elements)
        }
    }
}
