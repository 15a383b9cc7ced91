// swift-tools-version: 6.2
// Switchboard: a self-hosted assistant gateway.
//
// The target graph is the architecture (see docs/architecture.md): the model knows nothing,
// storage engines know no protocol, the engine knows no adapter, adapters know no tool, and
// only the composition root (SwitchboardApp) sees everything.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboard", targets: ["switchboard"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/JohnSundell/Ink", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        // OTLP over HTTP only: the gRPC exporter would bring grpc-swift for nothing.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Values only: IDs, messages, risk, confirmations, audit records, errors.
        .target(
            name: "SwitchboardModel",
            swiftSettings: swiftSettings
        ),
        // Carrying a trace from one stage to the next through the database (W3C trace context).
        .target(
            name: "SwitchboardTracing",
            dependencies: [
                "SwitchboardModel",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Store protocols (the ports), StoreError, the audit hash chain.
        .target(
            name: "SwitchboardStorage",
            dependencies: [
                "SwitchboardModel",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded engine: system libsqlite3 in WAL mode through GRDB.
        .target(
            name: "SwitchboardSQLite",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The shared engine: PostgreSQL through postgres-nio, for several instances on one database.
        .target(
            name: "SwitchboardPostgres",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Conversation engine, planner protocol, tool gate, confirmations, risk, rate limits.
        .target(
            name: "SwitchboardEngine",
            dependencies: [
                "SwitchboardTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Built-in tools. They see the Tool protocol and their own data, nothing else.
        .target(
            name: "SwitchboardTools",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardEngine",
                "SwitchboardDAV",
            ],
            swiftSettings: swiftSettings
        ),
        // libcurl (IMAP, SMTP), with typed wrappers around its variadic calls.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // libolm: Olm and Megolm for Matrix end-to-end encryption.
        .systemLibrary(
            name: "COlm",
            pkgConfig: "olm",
            providers: [.apt(["libolm-dev"])]
        ),
        // The email channel: MIME, IMAP in and SMTP out over libcurl, threads, sender checks.
        .target(
            name: "SwitchboardEmail",
            dependencies: [
                "CCurl",
                "SwitchboardTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardChannels",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The local intent engine: classifies a message into a tool and reads its arguments,
        // learning from the examples each tool declares. No network, no storage.
        .target(
            name: "SwitchboardIntent",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardEngine",
            ],
            // Optimised in debug builds too: unoptimised, training at start-up takes seconds
            // instead of a fraction of one, in every test process that needs it.
            swiftSettings: swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // The language-model planner: providers (OpenAI-compatible, Anthropic) over
        // AsyncHTTPClient, routing by tier, budgets, context and summaries. It plans; every
        // tool call it proposes goes through the engine's gate. Knows no channel.
        .target(
            name: "SwitchboardLLM",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardEngine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every channel adapter shares: the adapter protocol, inbox writer (group
        // commit), outbox dispatcher, and the one retry/backoff state machine.
        .target(
            name: "SwitchboardChannels",
            dependencies: [
                "SwitchboardTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The terminal channel: stdin in, stdout out.
        .target(
            name: "SwitchboardTerminal",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardChannels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Matrix channel: client-server API over AsyncHTTPClient.
        .target(
            name: "SwitchboardMatrix",
            dependencies: [
                "COlm",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                "SwitchboardTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardChannels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Ink", package: "Ink"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP API: health, readiness and metrics today (Hummingbird, Prometheus text).
        .target(
            name: "SwitchboardHTTP",
            dependencies: [
                "SwitchboardTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardChannels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tools from outside: MCP servers (stdio and streamable HTTP, on the MCP swift-sdk) and
        // HTTP APIs declared in configuration. They are tools like any other: the engine's gate
        // decides, audits and rate-limits every call. Knows no channel.
        .target(
            name: "SwitchboardRemoteTools",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardEngine",
                "SwitchboardChannels",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // CalDAV and CardDAV: a WebDAV client for one account, discovery, iCalendar and vCard.
        // A tools target: it knows the model, never the engine's insides nor any channel.
        .target(
            name: "SwitchboardDAV",
            dependencies: [
                "SwitchboardModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition root: configuration, wiring, the service group, benchmark, audit report.
        .target(
            name: "SwitchboardApp",
            dependencies: [
                "SwitchboardTracing",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardSQLite",
                "SwitchboardPostgres",
                "SwitchboardEngine",
                "SwitchboardTools",
                "SwitchboardIntent",
                "SwitchboardLLM",
                "SwitchboardEmail",
                "SwitchboardChannels",
                "SwitchboardTerminal",
                "SwitchboardMatrix",
                "SwitchboardHTTP",
                "SwitchboardRemoteTools",
                "SwitchboardDAV",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executable: argument parsing only.
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "SwitchboardApp",
                "SwitchboardHTTP",
                "SwitchboardModel",
                "SwitchboardStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fuzz targets: every parser of outside input with the invariants it keeps. Driven by
        // switchboard-fuzz under libFuzzer (scripts/fuzz.sh) and replayed over the seed corpora
        // in Fuzz/ by the tests. Never linked by the app.
        .target(
            name: "SwitchboardFuzzing",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardEngine",
                "SwitchboardEmail",
                "SwitchboardMatrix",
                "SwitchboardIntent",
                "SwitchboardHTTP",
                "SwitchboardRemoteTools",
                "SwitchboardApp",
                .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "CFuzzer"),
        .executableTarget(
            name: "switchboard-fuzz",
            dependencies: ["SwitchboardFuzzing", "CFuzzer"],
            swiftSettings: swiftSettings
        ),
        // Test support, never linked by the app.
        .target(
            name: "SwitchboardTesting",
            dependencies: [
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardChannels",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardTests",
            dependencies: [
                "SwitchboardTracing",
                "SwitchboardModel",
                "SwitchboardStorage",
                "SwitchboardSQLite",
                "SwitchboardPostgres",
                "SwitchboardEngine",
                "SwitchboardTools",
                "SwitchboardIntent",
                "SwitchboardLLM",
                "SwitchboardEmail",
                "SwitchboardChannels",
                "SwitchboardTerminal",
                "SwitchboardMatrix",
                "SwitchboardApp",
                "SwitchboardHTTP",
                "SwitchboardTesting",
                "SwitchboardRemoteTools",
                "SwitchboardFuzzing",
                "SwitchboardDAV",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // To inspect and tamper with the database from the outside in system tests.
                .product(name: "GRDB", package: "GRDB.swift"),
                // To read the deployment files.
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
    ]
)
