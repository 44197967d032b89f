/// Which dead-letter publisher a flow gets, from its `errorHandling` and source.
enum DeadLetterRouting {
    /// The publisher for `definition`, or nil when its errors are not dead-lettered.
    static func publisher(for definition: FlowDefinition, context: FlowBuildContext) throws -> (any DeadLetterPublishing)? {
        nil
    }
}
