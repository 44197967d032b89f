// swift-tools-version:6.2
import PackageDescription

// Upcoming features every target builds with: explicit `any`, and imports that are only as
// visible as they are declared.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "fiso-flow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fiso-flow", targets: ["FisoFlowCLI"]),
        .executable(name: "cel-conformance", targets: ["CELConformance"]),
        .executable(name: "fiso-bench", targets: ["FisoBenchmarks"]),
        .library(name: "FisoCEL", targets: ["FisoCEL"]),
        .library(name: "FisoJSON", targets: ["FisoJSON"]),
        .library(name: "FisoWasm", targets: ["FisoWasm"]),
        .library(name: "FisoKafka", targets: ["FisoKafka"]),
        .library(name: "FisoGRPC", targets: ["FisoGRPC"]),
        .library(name: "FisoFlow", targets: ["FisoFlow"]),
    ],
    dependencies: [
        // Keep at most one trait per dependency: SwiftPM 6.3 re-orders trait flags on every
        // re-plan and then rebuilds packages that have two or more enabled.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2", traits: ["MultiThread"]),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
    ],
    targets: [
        // MARK: Libraries that know nothing of flows

        // The concurrency toolkit every module below shares (signal, semaphore, threads).
        .target(
            name: "FisoConcurrency",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Go-style durations and Kubernetes-style byte sizes, as configuration writes them.
        .target(name: "FisoQuantities", swiftSettings: swiftSettings),
        .target(
            name: "FisoJSON",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FisoCEL",
            dependencies: ["FisoJSON"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FisoWasm",
            dependencies: [
                "FisoJSON",
                "FisoQuantities",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "FisoKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FisoGRPC",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: The runtime

        .target(
            name: "FisoFlow",
            dependencies: [
                "FisoJSON",
                "FisoQuantities",
                "FisoCEL",
                "FisoWasm",
                "FisoKafka",
                "FisoGRPC",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables

        .executableTarget(
            name: "FisoFlowCLI",
            dependencies: [
                "FisoFlow",
                "FisoQuantities",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CELConformance",
            dependencies: [
                "FisoCEL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FisoBenchmarks",
            dependencies: [
                "FisoFlow",
                "FisoCEL",
                "FisoJSON",
                "FisoWasm",
                "FisoGRPC",
                "FisoKafka",
                "CRdKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        .testTarget(
            name: "FisoConcurrencyTests",
            dependencies: [
                "FisoConcurrency",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoQuantitiesTests",
            dependencies: ["FisoQuantities"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoJSONTests",
            dependencies: ["FisoJSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoCELTests",
            dependencies: ["FisoCEL", "FisoJSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoWasmTests",
            dependencies: ["FisoWasm"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoKafkaTests",
            dependencies: [
                "FisoKafka",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoGRPCTests",
            dependencies: [
                "FisoGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoFlowTests",
            dependencies: [
                "FisoFlow",
                "FisoKafka",
                "FisoWasm",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
