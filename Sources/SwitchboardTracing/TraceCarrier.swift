// A trace crosses the database twice: adapter → inbox → engine, and engine → outbox → delivery.
// Each stage stores the W3C trace context of its span with the message (as the propagation
// headers, `traceparent` and `tracestate`), and the next stage starts its span as a child of it.
// With tracing off, the no-op instrument injects nothing: nothing is stored, nothing costs.

import Foundation
public import ServiceContextModule
import SwitchboardModel
public import Tracing

/// Saving and restoring trace context as text.
public enum TraceCarrier {
    /// The current context's propagation headers as stored text; nil when nothing is traced.
    public static func capture(_ context: ServiceContext? = ServiceContext.current) -> String? {
        guard let context else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderInjector())
        guard !headers.isEmpty else { return nil }
        return JSONValue.object(headers.mapValues(JSONValue.string)).canonicalText
    }

    /// The context stored text describes (a top-level one when there is none or it is unreadable).
    public static func restore(_ text: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard let text, case .object(let object)? = try? JSONValue.parse(text) else { return context }
        let headers = object.compactMapValues(\.stringValue)
        InstrumentationSystem.instrument.extract(headers, into: &context, using: HeaderExtractor())
        return context
    }

    struct HeaderInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key] = value
        }
    }

    struct HeaderExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? {
            carrier[key]
        }
    }
}

extension TraceCarrier {
    /// Whether a real tracer is installed (`tracing.otlp_endpoint` set).
    public static var isOn: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }
}

/// Runs `body` in a span when tracing is on, and without any span work when it is off: a busy
/// engine pays nothing for tracing it does not use.
public func withTracedSpan<T>(
    _ name: String,
    context: @autoclosure () -> ServiceContext = ServiceContext.current ?? .topLevel,
    ofKind kind: SpanKind = .internal,
    _ body: ((any Span)?) throws -> T
) rethrows -> T {
    guard TraceCarrier.isOn else { return try body(nil) }
    return try withSpan(name, context: context(), ofKind: kind) { span in try body(span) }
}

/// The asynchronous form of `withTracedSpan`.
public func withTracedSpan<T>(
    _ name: String,
    context: @autoclosure () -> ServiceContext = ServiceContext.current ?? .topLevel,
    ofKind kind: SpanKind = .internal,
    isolation: isolated (any Actor)? = #isolation,
    _ body: ((any Span)?) async throws -> T
) async rethrows -> T {
    guard TraceCarrier.isOn else { return try await body(nil) }
    return try await withSpan(name, context: context(), ofKind: kind, isolation: isolation) { span in try await body(span) }
}
