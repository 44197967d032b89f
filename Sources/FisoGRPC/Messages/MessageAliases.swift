import GRPCCore

/// `fiso.flow.v1.Event`: one event as it travels over gRPC.
public typealias EventMessage = Fiso_Flow_V1_Event
/// `fiso.flow.v1.Ack`: the outcome of one event.
public typealias EventAck = Fiso_Flow_V1_Ack
/// `fiso.flow.v1.SinkReply`: what a synchronous sink answered.
public typealias SinkReplyMessage = Fiso_Flow_V1_SinkReply
/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
public typealias HealthServingStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

/// Names of the services this module serves, as clients and health checks spell them.
public enum ServiceNames {
    /// `fiso.flow.v1.EventService`.
    public static let eventService = Fiso_Flow_V1_EventService.descriptor.fullyQualifiedService
    /// `grpc.health.v1.Health`.
    public static let health = Grpc_Health_V1_Health.descriptor.fullyQualifiedService
}
