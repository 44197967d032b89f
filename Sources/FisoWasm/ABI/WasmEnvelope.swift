import FisoJSON

/// Event headers as the ABI carries them: string to string, in order.
public typealias WasmHeaders = OrderedDictionary<String, String>

/// What a module reads on stdin (the guide's ABI):
/// `{"payload": <event JSON>, "headers": {string: string}, "direction": "inbound"}`.
public struct WasmTransformInput: Sendable {
    /// The event's payload.
    public enum Payload: Sendable {
        /// A parsed JSON value.
        case value(JSONValue)
        /// Raw JSON text, passed to the module as it is (after checking that it is JSON).
        case json([UInt8])
    }

    public var payload: Payload
    public var headers: WasmHeaders
    /// `"inbound"` for events on their way from a source to a sink.
    public var direction: String

    public init(payload: Payload, headers: WasmHeaders = [:], direction: String = "inbound") {
        self.payload = payload
        self.headers = headers
        self.direction = direction
    }

    public init(payload: JSONValue, headers: WasmHeaders = [:], direction: String = "inbound") {
        self.init(payload: .value(payload), headers: headers, direction: direction)
    }

    /// Parses a whole envelope (as `fiso-flow wasm run --input FILE` and `wasm bench` take it):
    /// `payload` is required, `headers` (string values) and `direction` are optional.
    ///
    /// - Throws: ``WasmError`` with reason `invalid_json`.
    public init(parsingEnvelope bytes: [UInt8]) throws(WasmError) {
        let document: JSONValue
        do {
            document = try JSONValue(parsing: bytes)
        } catch {
            throw .invalidJSON("input: \(error)")
        }
        guard case .object(let members) = document else {
            throw .invalidJSON("input is a JSON \(document.kindName), not an object")
        }
        guard let payload = members["payload"] else {
            throw .invalidJSON("input has no \"payload\"")
        }
        var headers = WasmHeaders()
        switch members["headers"] {
        case nil, .null?: break
        case .object(let values)?:
            for (name, value) in values {
                guard case .string(let text) = value else {
                    throw .invalidJSON("input header \"\(name)\" is a \(value.kindName), not a string")
                }
                headers[name] = text
            }
        case let other?:
            throw .invalidJSON("input \"headers\" is a \(other.kindName), not an object")
        }
        self.init(payload: .value(payload), headers: headers, direction: members["direction"]?.stringValue ?? "inbound")
    }

    /// The stdin bytes for the module.
    ///
    /// - Throws: ``WasmError`` with reason `invalid_json` when a raw ``Payload/json(_:)`` payload
    ///   is not JSON.
    public func encoded() throws(WasmError) -> [UInt8] {
        var output: [UInt8] = []
        output.append(contentsOf: #"{"payload":"#.utf8)
        switch payload {
        case .value(let value):
            value.serialize(into: &output)
        case .json(let bytes):
            do {
                _ = try JSONValue(parsing: bytes)
            } catch {
                throw .invalidJSON("the event payload is not JSON: \(error)")
            }
            output.append(contentsOf: bytes)
        }
        output.append(contentsOf: #","headers":{"#.utf8)
        var first = true
        for (name, value) in headers {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            JSONValue.serializeString(name, into: &output)
            output.append(UInt8(ascii: ":"))
            JSONValue.serializeString(value, into: &output)
        }
        output.append(contentsOf: #"},"direction":"#.utf8)
        JSONValue.serializeString(direction, into: &output)
        output.append(UInt8(ascii: "}"))
        return output
    }
}

/// What a module wrote on stdout, decoded: `{"payload": ..., "headers": {...}}`.
public struct WasmTransformOutput: Sendable {
    /// The new payload (any JSON value, `null` included).
    public var payload: JSONValue
    /// The headers the event carries on: the module's, or the input's when it returned none.
    public var headers: WasmHeaders
    /// Whether the module returned `headers` (when it did not, ``headers`` are the input's).
    public var moduleReturnedHeaders: Bool
    /// What the module wrote to stderr (bounded); log it with the module's name.
    public var stderr: String
    /// Where the time of the call went.
    public var timing: WasmCallTiming
    /// The module version that ran.
    public var version: WasmModuleVersion?

    /// Decodes a module's stdout. Keys other than `payload` and `headers` are ignored; a missing
    /// or `null` `headers` keeps `inputHeaders`.
    ///
    /// - Throws: ``WasmError`` with reason `invalid_json`.
    public static func decode(stdout: [UInt8], inputHeaders: WasmHeaders) throws(WasmError) -> (
        payload: JSONValue, headers: WasmHeaders, moduleReturnedHeaders: Bool
    ) {
        guard stdout.contains(where: { !Self.isWhitespace($0) }) else {
            throw .invalidJSON("the module wrote nothing to stdout")
        }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: stdout)
        } catch {
            throw .invalidJSON("module output: \(error)")
        }
        guard case .object(let members) = document else {
            throw .invalidJSON("module output is a JSON \(document.kindName), not an object")
        }
        guard let payload = members["payload"] else {
            throw .invalidJSON("module output has no \"payload\"")
        }
        switch members["headers"] {
        case nil, .null?:
            return (payload, inputHeaders, false)
        case .object(let values)?:
            var headers = WasmHeaders()
            for (name, value) in values {
                guard case .string(let text) = value else {
                    throw .invalidJSON("module output header \"\(name)\" is a \(value.kindName), not a string")
                }
                headers[name] = text
            }
            return (payload, headers, true)
        case let other?:
            throw .invalidJSON("module output \"headers\" is a \(other.kindName), not an object")
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09
    }
}
