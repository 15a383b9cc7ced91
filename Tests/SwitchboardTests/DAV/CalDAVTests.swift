// The CalDAV client against real servers: Radicale and Xandikos from PyPI, started by
// scripts/test-servers/dav.sh on free ports, the same tests against both, and what they hold
// checked with an independent client (PyPI caldav, scripts/test-servers/dav_check.py).

import Foundation
import NIOHTTP1
import SwitchboardDAV
import SwitchboardModel
import Testing

/// One DAV server in a temporary directory.
final class DAVServer: Sendable {
    enum Kind: String, CaseIterable, Sendable { case radicale, xandikos }

    static let script = packageRoot + "/scripts/test-servers/dav.sh"
    static let checker = packageRoot + "/scripts/test-servers/dav_check.py"
    let kind: Kind
    let directory: TemporaryDirectory
    let port: Int
    let user = "sam"
    let password = "test-password-\(UUID().uuidString.prefix(8))"
    var base: URL { URL(string: "http://127.0.0.1:\(port)/")! }
    var credentials: DAVCredentials { DAVCredentials(user: user, password: Secret(password)) }

    init(_ kind: Kind) throws {
        self.kind = kind
        directory = try TemporaryDirectory()
        port = try freePort()
        do {
            _ = try runCommand("/bin/bash", [Self.script, "start", kind.rawValue, directory.path, String(port), user, password])
        } catch {
            throw HarnessError(description: """
                Could not start \(kind.rawValue) for the DAV tests. The README's test command installs it; by hand: \
                bash scripts/test-servers/dav.sh install\n\(error)
                """)
        }
    }

    /// Killed outright, at once: a test's end must not wait on the pool for a graceful stop.
    deinit {
        if let text = try? String(contentsOfFile: directory.path + "/server.pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGKILL)
        }
    }

    /// Starts a server off the cooperative pool (the start script runs until it answers).
    static func start(_ kind: Kind) async throws -> DAVServer {
        try await OffPool.run { try DAVServer(kind) }
    }

    /// `check`, off the cooperative pool.
    func checking(_ calendar: URL, _ arguments: String...) async throws -> [JSONValue] {
        try await OffPool.run { [self] in try self.check(calendar, arguments) }
    }

    /// The calendar to use: Xandikos makes one (`--defaults`); on Radicale the client makes it.
    func calendar(_ client: DAVClient) async throws -> URL {
        let layout = try await DAVDiscovery.discover(client)
        if let found = layout.calendars.first(where: \.takesEvents) { return found.url }
        guard let home = layout.calendarHome ?? layout.principal else { throw HarnessError(description: "no calendar home on \(kind)") }
        let url = home.appendingPathComponent("work/")
        try await client.makeCalendar(url, name: "Work")
        return url
    }

    /// What the independent client reads from a calendar.
    func check(_ calendar: URL, _ arguments: String...) throws -> [JSONValue] {
        try check(calendar, arguments)
    }

    func check(_ calendar: URL, _ arguments: [String]) throws -> [JSONValue] {
        let python = try runCommand("/bin/bash", [Self.script, "python"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try runCommand(python, [Self.checker, calendar.absoluteString, user, password] + arguments)
        return try out.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }
}

@Suite("CalDAV against Radicale and Xandikos", .serialized)
struct CalDAVTests {
    static let berlin = TimeZone(identifier: "Europe/Berlin")!

    @Test("Discovery from the server's root finds the principal and the calendar home", arguments: DAVServer.Kind.allCases)
    func discovery(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        let calendar = try await server.calendar(client)
        let layout = try await DAVDiscovery.discover(client)
        #expect(layout.principal?.absoluteString == server.base.absoluteString + "sam/")
        #expect(layout.calendars.contains { $0.url == calendar && $0.takesEvents }, "\(layout)")
    }

    @Test("An event made here is on the server in its time zone, listed by time range, and never overwritten after a change elsewhere", arguments: DAVServer.Kind.allCases)
    func eventsAndETags(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        let calendar = CalDAVCalendar(client: client, url: try await server.calendar(client))
        // Tuesday 8 December 2026, 10:00 in Berlin (09:00 UTC), an hour.
        let start = Date(timeIntervalSince1970: 1_796_720_400)
        let event = CalendarEvent(
            uid: "switchboard-\(UUID().uuidString)", summary: "Dentist; bring card, forms", location: "Main St. 3",
            start: EventTime(date: start, zone: Self.berlin), end: EventTime(date: start.addingTimeInterval(3600), zone: Self.berlin)
        )
        let created = try await calendar.create(event, stamp: Date())
        #expect(created.etag != nil)

        // The independent client sees it in Berlin time, with the text as written.
        let held = try await server.checking(calendar.url, "list")
        #expect(held.count == 1)
        #expect(held.first?["tzid"]?.stringValue == "Europe/Berlin")
        #expect(held.first?["start"]?.stringValue?.hasPrefix("2026-12-08T10:00:00") == true, "\(held)")
        #expect(held.first?["summary"]?.stringValue == "Dentist; bring card, forms")

        // A time-range query finds it for that day and not for the next.
        let day = try await calendar.events(from: start.addingTimeInterval(-9 * 3600), to: start.addingTimeInterval(15 * 3600), zone: Self.berlin)
        #expect(day.events.map(\.0.uid) == [event.uid] && day.unreadable.isEmpty)
        #expect(day.events.first?.0.start.date == start && day.events.first?.0.location == "Main St. 3")
        #expect(try await calendar.events(from: start.addingTimeInterval(86400), to: start.addingTimeInterval(2 * 86400), zone: Self.berlin).events.isEmpty)

        // A create under a name already taken is refused, not an overwrite.
        await #expect(throws: DAVError.self) { _ = try await calendar.create(event, stamp: Date()) }

        // Someone changes it on their phone; a move with the old ETag is refused.
        guard let read = day.events.first?.1 else { return }
        _ = try await server.checking(calendar.url, "retitle", event.uid, "Dentist (moved by phone)")
        let moved = ICalendar.serialize(try CalendarEvent.moved(try ICalendar.parse(read.data), to: start.addingTimeInterval(3600), end: start.addingTimeInterval(7200), stamp: Date()))
        do {
            _ = try await calendar.replace(read, with: moved)
            Issue.record("a stale ETag overwrote the phone's change")
        } catch let error as DAVError {
            #expect(error.kind == .changed, "\(error)")
        }
        #expect(try await server.checking(calendar.url, "list").first?["summary"]?.stringValue == "Dentist (moved by phone)")

        // Read again, the move keeps the phone's title and everything else, and the zone.
        guard let fresh = try await calendar.objects(from: start.addingTimeInterval(-86400), to: start.addingTimeInterval(86400)).first else {
            Issue.record("the event is gone")
            return
        }
        let again = try await calendar.replace(fresh, with: ICalendar.serialize(try CalendarEvent.moved(try ICalendar.parse(fresh.data), to: start.addingTimeInterval(3600), end: start.addingTimeInterval(7200), stamp: Date())))
        let after = try await server.checking(calendar.url, "list")
        #expect(after.first?["summary"]?.stringValue == "Dentist (moved by phone)")
        #expect(after.first?["start"]?.stringValue?.hasPrefix("2026-12-08T11:00:00") == true && after.first?["tzid"]?.stringValue == "Europe/Berlin", "\(after)")

        // A delete with a stale ETag is refused; with the current one it goes.
        await #expect(throws: DAVError.self) { try await calendar.delete(fresh) }
        try await calendar.delete(again)
        #expect(try await server.checking(calendar.url, "list").isEmpty)
    }

    @Test("A repeating event carries its rule to the server, and each occurrence is found by time range", arguments: DAVServer.Kind.allCases)
    func repeating(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        let calendar = CalDAVCalendar(client: client, url: try await server.calendar(client))
        let monday = Date(timeIntervalSince1970: 1_796_626_800)  // Monday 7 December 2026, 08:00 Berlin
        let event = CalendarEvent(
            uid: "weekly-\(UUID().uuidString)", summary: "Stand-up",
            start: EventTime(date: monday, zone: Self.berlin), end: EventTime(date: monday.addingTimeInterval(900), zone: Self.berlin),
            rule: "FREQ=WEEKLY;BYDAY=MO;COUNT=10"
        )
        _ = try await calendar.create(event, stamp: Date())
        #expect(try await server.checking(calendar.url, "list").first?["rrule"]?.stringValue == "FREQ=WEEKLY;COUNT=10;BYDAY=MO")
        // The fourth Monday (28 December) is found; a Tuesday is not.
        let fourth = monday.addingTimeInterval(21 * 86400)
        #expect(try await calendar.objects(from: fourth.addingTimeInterval(-3600), to: fourth.addingTimeInterval(3600)).count == 1)
        #expect(try await calendar.objects(from: fourth.addingTimeInterval(86400 - 3600), to: fourth.addingTimeInterval(86400 + 3600)).isEmpty)
    }

    @Test("A wrong password, a URL that is no DAV server and a server that is not there are each a clear error")
    func badServers() async throws {
        let server = try await DAVServer.start(.radicale)
        let wrong = DAVClient(base: server.base, credentials: DAVCredentials(user: "sam", password: Secret("not-the-password")))
        do {
            _ = try await DAVDiscovery.discover(wrong)
            Issue.record("a wrong password was accepted")
        } catch let error as DAVError {
            #expect(error.kind == .unauthorized, "\(error)")
            #expect(!error.description.contains("not-the-password"))
        }
        // A web server that is no DAV server (Python's, serving a page).
        let site = try TemporaryDirectory()
        try "<html><body>hello</body></html>".write(toFile: site.path + "/index.html", atomically: true, encoding: .utf8)
        let port = try freePort()
        let web = Process()
        web.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        web.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", site.path]
        web.standardOutput = FileHandle.nullDevice
        web.standardError = FileHandle.nullDevice
        try web.run()
        defer { web.terminate() }
        let web1 = DAVClient(base: URL(string: "http://127.0.0.1:\(port)/")!, credentials: server.credentials)
        _ = await eventually(20) { (try? await web1.send(.GET, web1.base))?.status == 200 }
        do {
            _ = try await DAVDiscovery.discover(web1)
            Issue.record("a plain web server passed for a DAV server")
        } catch let error as DAVError {
            #expect(error.kind == .notDAV, "\(error)")
            #expect(error.description.contains("is not a CalDAV or CardDAV server"), "\(error)")
        }
        // Nothing listening.
        let nobody = DAVClient(base: URL(string: "http://127.0.0.1:\(try freePort())/")!, credentials: server.credentials)
        do {
            _ = try await DAVDiscovery.discover(nobody)
            Issue.record("discovery on a closed port succeeded")
        } catch let error as DAVError {
            #expect(error.kind == .unreachable && error.isTransient, "\(error)")
        }
    }
}

@Suite("iCalendar: what servers and phones write, read and written back")
struct ICalendarTests {
    @Test("Folded lines, quoted parameters, unknown properties and components survive a round trip")
    func roundTrip() throws {
        let text = """
            BEGIN:VCALENDAR\r
            VERSION:2.0\r
            PRODID:-//Phone//EN\r
            BEGIN:VEVENT\r
            UID:abc-1\r
            DTSTART;TZID="/mozilla.org/20070129_1/Europe/Berlin":20261208T100000\r
            DURATION:PT1H30M\r
            SUMMARY:A long title that goes on and on and on past the seventy-five octet li\r
             mit of a line\\, folded\r
            ATTENDEE;CN="Doe, Jane";ROLE=REQ-PARTICIPANT:mailto:jane@example.org\r
            X-PHONE-COLOUR:teal\r
            BEGIN:VALARM\r
            ACTION:DISPLAY\r
            TRIGGER:-PT15M\r
            END:VALARM\r
            END:VEVENT\r
            END:VCALENDAR\r

            """
        let parsed = try ICalendar.parse(text)
        let event = try CalendarEvent(calendar: parsed, defaultZone: TimeZone(identifier: "UTC")!)
        #expect(event.summary == "A long title that goes on and on and on past the seventy-five octet limit of a line, folded")
        #expect(event.start.zone?.identifier == "Europe/Berlin")
        #expect(event.end.date.timeIntervalSince(event.start.date) == 5400)
        #expect(parsed.components("VEVENT").first?.property("ATTENDEE")?.parameter("CN") == "Doe, Jane")
        let again = try ICalendar.parse(ICalendar.serialize(parsed))
        #expect(again == parsed)
        #expect(ICalendar.serialize(parsed).split(separator: "\r\n").allSatisfy { $0.utf8.count <= 75 })
        // A move keeps the alarm, the attendee and the phone's own property.
        let moved = try CalendarEvent.moved(parsed, to: event.start.date.addingTimeInterval(3600), end: event.end.date.addingTimeInterval(3600), stamp: Date())
        let movedEvent = try #require(moved.components("VEVENT").first)
        #expect(movedEvent.property("X-PHONE-COLOUR")?.value == "teal" && !movedEvent.components("VALARM").isEmpty && movedEvent.property("DURATION") == nil)
        #expect(movedEvent.property("DTSTART")?.value == "20261208T110000" && movedEvent.property("DTSTART")?.parameter("TZID") == "Europe/Berlin")
    }

    @Test("EXDATEs are read in the start's zone, several to a line, and an unreadable one is left out")
    func exceptions() throws {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART;TZID=Europe/Berlin:20261207T090000\r\nRRULE:FREQ=WEEKLY\r\nEXDATE;TZID=Europe/Berlin:20261214T090000,20261221T090000\r\nEXDATE:20261228T080000Z\r\nEXDATE:garbage\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        let event = try CalendarEvent(calendar: try ICalendar.parse(text), defaultZone: TimeZone(identifier: "UTC")!)
        let monday = Date(timeIntervalSince1970: 1_796_630_400)  // Monday 7 December 2026, 09:00 Berlin (08:00 UTC)
        #expect(event.exceptions == Set([1, 2, 3].map { monday.addingTimeInterval(Double($0) * 7 * 86400) }), "\(event.exceptions)")
        #expect(event.skips(monday.addingTimeInterval(7 * 86400)) && !event.skips(monday))
    }

    @Test("Broken objects are refused with a reason; a huge one is read up to the limit")
    func badObjects() throws {
        for bad in ["BEGIN:VCALENDAR\r\nEND:VEVENT\r\n", "BEGIN:VCALENDAR\r\nNOCOLON\r\nEND:VCALENDAR\r\n", "BEGIN:VCALENDAR\r\n", "SUMMARY:x\r\n", "BEGIN:VCALENDAR\r\nX;A=\"open:1\r\nEND:VCALENDAR\r\n"] {
            #expect(throws: ICalError.self, "\(bad)") { _ = try ICalendar.parse(bad) }
        }
        let noStart = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        #expect(throws: ICalError.self) { _ = try CalendarEvent(calendar: try ICalendar.parse(noStart), defaultZone: .current) }
        // An unknown TZID is read in the person's zone, not refused.
        let custom = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART;TZID=Custom Zone:20261208T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        #expect(try CalendarEvent(calendar: try ICalendar.parse(custom), defaultZone: TimeZone(identifier: "Asia/Tokyo")!).start.zone?.identifier == "Asia/Tokyo")
        // 5 MB of description (an attachment pasted inline) is read.
        let big = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20261208T100000Z\r\nDESCRIPTION:" + String(repeating: "x", count: 5 << 20) + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        #expect(try CalendarEvent(calendar: try ICalendar.parse(big), defaultZone: .current).uid == "1")
        #expect(throws: ICalError.self) { _ = try ICalendar.parse(String(repeating: "x", count: 9 << 20)) }
    }

    @Test("A VTIMEZONE is written from the zone database: yearly rules for a zone with summer time, one observance without")
    func timeZones() throws {
        let winter = Date(timeIntervalSince1970: 1_796_720_400)
        let berlin = VTimeZone.component(TimeZone(identifier: "Europe/Berlin")!, around: winter)
        let rules = berlin.components.compactMap { $0.property("RRULE")?.value }.sorted()
        #expect(rules == ["FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"], "\(ICalendar.serialize(berlin))")
        #expect(berlin.components("DAYLIGHT").first?.property("TZOFFSETTO")?.value == "+0200")
        let tokyo = VTimeZone.component(TimeZone(identifier: "Asia/Tokyo")!, around: winter)
        #expect(tokyo.components.count == 1 && tokyo.components.first?.property("TZOFFSETTO")?.value == "+0900")
    }
}

/// The blocking harness calls (a process run to its end) made from async tests, on a thread of
/// their own: on the cooperative pool (two threads on a 2-core machine) they would stall every
/// other test of the run for as long as they take.
enum OffPool {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    static func chat(_ person: String, _ lines: [String], dataDir: String, environment: [String: String] = [:]) async throws -> RunResult {
        try await run { try Binary.chat(person, lines, dataDir: dataDir, environment: environment) }
    }

    static func binary(_ arguments: [String]) async throws -> RunResult {
        try await run { try Binary.run(arguments) }
    }

    static func command(_ executable: String, _ arguments: [String]) async throws -> String {
        try await run { try runCommand(executable, arguments) }
    }
}
