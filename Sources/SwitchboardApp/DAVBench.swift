// `switchboard dav bench`: how long listing a week takes on a CalDAV server holding thousands
// of events. It makes a calendar of its own on the account (never touching the others), fills
// it with events spread over a year (one in fifty a weekly series), lists random weeks as the
// calendar tool does (one calendar-query REPORT with a time range, the server filtering), and
// deletes the calendar again. The figures: per-list p50 and p99, and HTTP requests per list.

public import Foundation
import NIOCore
import SwitchboardDAV
public import SwitchboardModel

/// What the DAV benchmark measured.
public struct DAVBenchResult: Sendable {
    public var events: Int
    public var rounds: Int
    public var fillSeconds: Double
    public var listP50: Double
    public var listP99: Double
    public var requestsPerList: Double
    public var eventsPerWeek: Double

    /// One JSON object, times in milliseconds.
    public var json: String {
        func ms(_ value: Double) -> JSONValue { .double((value * 1_000_000).rounded() / 1000) }
        return JSONValue.object([
            "events": .int(Int64(events)), "rounds": .int(Int64(rounds)), "fill_seconds": .double((fillSeconds * 10).rounded() / 10),
            "list_week_p50_ms": ms(listP50), "list_week_p99_ms": ms(listP99),
            "requests_per_list": .double(requestsPerList), "events_per_week": .double((eventsPerWeek * 10).rounded() / 10),
        ]).canonicalText
    }
}

public enum DAVBench {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add() { lock.withLock { value += 1 } }
        var count: Int { lock.withLock { value } }
    }

    /// Runs it against the account at `base`.
    public static func run(base: URL, user: String, password: Secret, events: Int, rounds: Int, keep: Bool, progress: @Sendable (String) -> Void) async throws -> DAVBenchResult {
        let counter = Counter()
        let credentials = DAVCredentials(user: user, password: password)
        var client = DAVClient(base: base, credentials: credentials, timeout: .seconds(60))
        client.onRequest = { counter.add() }
        let layout = try await DAVDiscovery.discover(client)
        guard let home = layout.calendarHome ?? layout.principal else {
            throw DAVError(.notDAV, "\(base.host ?? "the server") names no calendar home for \(credentials.user)")
        }
        let url = home.appendingPathComponent("switchboard-bench-\(UUID().uuidString.prefix(8).lowercased())/")
        try await client.makeCalendar(url, name: "Switchboard benchmark")
        let calendar = CalDAVCalendar(client: client, url: url)
        do {
            let result = try await measure(calendar, counter: counter, events: events, rounds: rounds, progress: progress)
            if !keep { try? await client.delete(url, etag: nil) }
            return result
        } catch {
            if !keep { try? await client.delete(url, etag: nil) }
            throw error
        }
    }

    static func measure(_ calendar: CalDAVCalendar, counter: Counter, events count: Int, rounds: Int, progress: @Sendable (String) -> Void) async throws -> DAVBenchResult {
        let zone = TimeZone(identifier: "Europe/Berlin")!
        let now = Date()
        let year: TimeInterval = 365 * 86400
        var generator = SystemRandomNumberGenerator()
        // Working hours over the year around now, on the quarter hour.
        let starts = (0..<count).map { _ in
            (now.addingTimeInterval(-year / 2 + Double.random(in: 0..<year, using: &generator)).timeIntervalSince1970 / 900).rounded() * 900
        }
        let fillStart = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add(_ index: Int) {
                group.addTask {
                    let start = Date(timeIntervalSince1970: starts[index])
                    let event = CalendarEvent(
                        uid: "bench-\(index)-\(UUID().uuidString)", summary: "Benchmark meeting \(index)", location: index % 3 == 0 ? "Room \(index % 40)" : nil,
                        start: EventTime(date: start, zone: zone), end: EventTime(date: start.addingTimeInterval(3600), zone: zone),
                        rule: index % 50 == 0 ? "FREQ=WEEKLY;COUNT=20" : nil
                    )
                    _ = try await calendar.create(event, stamp: Date())
                }
            }
            // A few writes at a time: what a server takes from one busy client.
            while next < min(4, count) { add(next); next += 1 }
            while try await group.next() != nil {
                if next < count {
                    add(next)
                    next += 1
                    if next % 500 == 0 { progress("\(next) of \(count) events written") }
                }
            }
        }
        let fill = Date().timeIntervalSince(fillStart)
        var times: [Double] = []
        var found = 0
        let before = counter.count
        for _ in 0..<rounds {
            let from = now.addingTimeInterval(-year / 2 + Double.random(in: 0..<(year - 7 * 86400), using: &generator))
            let clock = ContinuousClock.now
            let week = try await calendar.events(from: from, to: from.addingTimeInterval(7 * 86400), zone: zone)
            let elapsed = ContinuousClock.now - clock
            times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            found += week.events.count
        }
        times.sort()
        func percentile(_ p: Double) -> Double { times.isEmpty ? 0 : times[min(times.count - 1, Int((Double(times.count) * p).rounded(.up)) - 1)] }
        return DAVBenchResult(
            events: count, rounds: rounds, fillSeconds: fill, listP50: percentile(0.5), listP99: percentile(0.99),
            requestsPerList: Double(counter.count - before) / Double(max(1, rounds)), eventsPerWeek: Double(found) / Double(max(1, rounds))
        )
    }
}
