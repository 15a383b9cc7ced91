import Foundation
import Logging
import OTel
import ServiceLifecycle
public import SwitchboardModel
import Tracing

/// Where traces go: OTLP over HTTP when `tracing.otlp_endpoint` is set, nowhere otherwise (the
/// no-op tracer, which records nothing and costs next to nothing).
///
/// Keys: `tracing.otlp_endpoint` (the collector's base URL, e.g. `http://127.0.0.1:4318`; spans
/// go to `/v1/traces` under it), `tracing.protocol` (`http/protobuf`, default, or `http/json`),
/// `tracing.service_name` (default `switchboard`), `tracing.sample_ratio` (0–1, default 1).
/// The OpenTelemetry `OTEL_*` variables for traces (`OTEL_BSP_SCHEDULE_DELAY`, ...) apply too.
public struct TracingConfiguration: Sendable {
    /// The collector's base URL, if tracing is on.
    public var endpoint: String?
    /// `http/protobuf` or `http/json`.
    public var wireProtocol = "http/protobuf"
    /// The `service.name` resource attribute.
    public var serviceName = "switchboard"
    /// The share of traces kept.
    public var sampleRatio = 1.0

    /// Tracing off.
    public init() {}

    /// Reads the `tracing.*` keys.
    public init(config: inout ConfigValues) {
        if let endpoint = config.string("tracing.otlp_endpoint")?.trimmingWhitespace(), !endpoint.isEmpty {
            if let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil {
                self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            } else {
                config.report("tracing.otlp_endpoint", "expected an http:// or https:// URL, got \"\(endpoint)\"")
            }
        }
        wireProtocol = config.choice("tracing.protocol", default: wireProtocol, from: ["http/protobuf", "http/json"])
        serviceName = config.string("tracing.service_name", default: serviceName)
        sampleRatio = config.double("tracing.sample_ratio", default: sampleRatio, range: 0...1)
    }

    /// Installs the OTLP tracer for the process and returns the service that exports its spans
    /// (run it in the service group: it flushes what is left when the group shuts down). Nil
    /// when tracing is off.
    func bootstrap(logger: Logger) throws -> (any Service)? {
        guard let endpoint else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        configuration.traces.otlpExporter.endpoint = endpoint + "/v1/traces"
        configuration.traces.otlpExporter.protocol = wireProtocol == "http/json" ? .httpJSON : .httpProtobuf
        configuration.traces.sampler = sampleRatio >= 1 ? .parentBasedAlwaysOn : (.parentBasedTraceIDRatio(ratio: sampleRatio) ?? .parentBasedAlwaysOn)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info("tracing to \(endpoint)/v1/traces", metadata: ["tracing.protocol": "\(wireProtocol)", "tracing.sample_ratio": "\(sampleRatio)"])
        return backend.service
    }
}
