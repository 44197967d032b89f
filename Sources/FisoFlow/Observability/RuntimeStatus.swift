import FisoJSON
import NIOConcurrencyHelpers

/// What `/readyz` reports: the runtime's phase and the state of every flow.
public final class RuntimeStatus: Sendable {
    public enum Phase: String, Sendable {
        case starting
        case running
        case draining
        case stopped
    }

    public enum FlowState: String, Sendable {
        case starting
        case running
        case failed
        case stopping
    }

    private struct State {
        var phase = Phase.starting
        var flows: [String: (state: FlowState, detail: String?)] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public var phase: Phase { state.withLockedValue { $0.phase } }

    func setPhase(_ phase: Phase) {
        state.withLockedValue { $0.phase = phase }
    }

    func setFlow(_ name: String, _ flowState: FlowState, detail: String? = nil) {
        state.withLockedValue { $0.flows[name] = (flowState, detail) }
    }

    func removeFlow(_ name: String) {
        state.withLockedValue { $0.flows[name] = nil }
    }

    /// Ready while running and no flow is still starting (a failed flow is logged and reported, but
    /// does not keep the others out of service).
    public var isReady: Bool {
        state.withLockedValue { state in
            state.phase == .running && !state.flows.values.contains { $0.state == .starting }
        }
    }

    /// The `/readyz` body.
    public func report() -> JSONValue {
        state.withLockedValue { state in
            var flows = JSONObject()
            for name in state.flows.keys.sorted() {
                let entry = state.flows[name]!
                var flow: JSONObject = ["state": .string(entry.state.rawValue)]
                if let detail = entry.detail { flow["detail"] = .string(detail) }
                flows[name] = .object(flow)
            }
            let ready = state.phase == .running && !state.flows.values.contains { $0.state == .starting }
            return .object([
                "status": .string(ready ? "ready" : "not ready"), "phase": .string(state.phase.rawValue),
                "flows": .object(flows),
            ])
        }
    }
}
