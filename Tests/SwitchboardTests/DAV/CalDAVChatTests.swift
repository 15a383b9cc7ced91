// The calendar tools on a person's own CalDAV server, through the built binary as a newcomer
// uses it: `switchboard dav connect`, then `switchboard chat` with dav.enabled, what the server
// holds read back by an independent client (PyPI caldav), and the password nowhere in the
// output, the audit trail or the database file.

import Foundation
import NIOHTTP1
import SwitchboardDAV
import SwitchboardModel
import Testing

@Suite("CalDAV through chat: a person's own calendar server", .serialized)
struct CalDAVChatTests {
    /// What a shell in Berlin would run.
    static func environment(_ dir: TemporaryDirectory) -> [String: String] {
        ["SWITCHBOARD_DAV_ENABLED": "true", "TZ": "Europe/Berlin", "SWITCHBOARD_DATA_DIR": dir.path]
    }

    @Test("Linked with `dav connect`, an event made by chat is on the server in the person's zone, listed, moved, cancelled and undone there", arguments: DAVServer.Kind.allCases)
    func chatOnTheServer(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        let calendar = try await server.calendar(client)
        let data = try TemporaryDirectory()
        let secrets = try TemporaryDirectory()
        let passwordFile = secrets.path + "/token"
        try (server.password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)

        // A wrong password is refused with the reason, and nothing is linked.
        if kind == .radicale {
            let wrongFile = secrets.path + "/wrong"
            try "not-the-password\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
            let refused = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", wrongFile, "--data-dir", data.path])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("refused the login for sam"), "\(refused.stderr)")
            #expect(!(refused.stdout + refused.stderr).contains("not-the-password"))
        }
        // A calendar that is not there is named, with the ones that are.
        let missing = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", passwordFile, "--calendar", "Holidays", "--data-dir", data.path])
        #expect(missing.status != 0 && missing.stderr.contains("no calendar called Holidays"), "\(missing.stderr)")

        let linked = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", passwordFile, "--data-dir", data.path])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(linked.stdout.contains("Linked the calendar") && linked.stdout.contains(calendar.absoluteString), "\(linked.stdout)")

        // Tomorrow in Berlin.
        var berlin = Calendar(identifier: .gregorian)
        berlin.timeZone = TimeZone(identifier: "Europe/Berlin")!
        let tomorrow = berlin.date(byAdding: .day, value: 1, to: berlin.startOfDay(for: Date()))!
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.timeZone = berlin.timeZone
        day.dateFormat = "yyyy-MM-dd"
        let tomorrowText = day.string(from: tomorrow)

        let first = try await OffPool.chat("alice", ["put dentist in my calendar tomorrow at 10am", "what's in my calendar tomorrow"], dataDir: data.path, environment: Self.environment(data))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("Added in your"), "\(first.stdout)")
        #expect(first.stdout.contains("1 event in your"), "\(first.stdout)")
        var held = try await server.checking(calendar, "list")
        #expect(held.count == 1, "\(held)")
        #expect(held.first?["summary"]?.stringValue?.lowercased() == "dentist", "\(held)")
        #expect(held.first?["tzid"]?.stringValue == "Europe/Berlin", "\(held)")
        #expect(held.first?["start"]?.stringValue?.hasPrefix(tomorrowText + "T10:00:00") == true, "\(held)")
        // The built-in calendar was not used.
        let local = try await OffPool.chat("alice", ["export next week's calendar"], dataDir: data.path)
        #expect(!local.stdout.contains("SUMMARY:dentist"), "\(local.stdout)")

        // A booking over it waits for a yes, naming what the server holds then; a no books nothing.
        let overlap = try await OffPool.chat("alice", ["put call with ana in my calendar tomorrow at 10:30am", "no"], dataDir: data.path, environment: Self.environment(data))
        #expect(overlap.stdout.contains("You already have") && overlap.stdout.contains("10:00–11:00 dentist then; book it anyway?"), "\(overlap.stdout)")
        #expect(try await server.checking(calendar, "list").count == 1, "nothing may be booked over it before a yes")

        // Changed on a phone, then moved here: the phone's title is kept, the time moves.
        guard let uid = held.first?["uid"]?.stringValue else { return }
        _ = try await server.checking(calendar, "retitle", uid, "Dentist (bring card)")
        let moved = try await OffPool.chat("alice", ["move dentist to tomorrow at 11am"], dataDir: data.path, environment: Self.environment(data))
        #expect(moved.stdout.contains("Moved in your"), "\(moved.stdout)")
        held = try await server.checking(calendar, "list")
        #expect(held.first?["summary"]?.stringValue == "Dentist (bring card)" && held.first?["start"]?.stringValue?.hasPrefix(tomorrowText + "T11:00:00") == true, "\(held)")

        // Undo moves it back; cancel removes it; undo puts the same object back.
        let back = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: Self.environment(data))
        #expect(back.stdout.contains("Undone: moved"), "\(back.stdout)")
        held = try await server.checking(calendar, "list")
        #expect(held.first?["start"]?.stringValue?.hasPrefix(tomorrowText + "T10:00:00") == true, "\(held)")
        let cancelled = try await OffPool.chat("alice", ["cancel dentist"], dataDir: data.path, environment: Self.environment(data))
        #expect(cancelled.stdout.contains("Cancelled in your"), "\(cancelled.stdout)")
        #expect(try await server.checking(calendar, "list").isEmpty)
        let restored = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: Self.environment(data))
        #expect(restored.stdout.contains("Undone: put"), "\(restored.stdout)")
        #expect(try await server.checking(calendar, "list").first?["uid"]?.stringValue == uid)

        // Bob linked nothing: his calendar is the built-in one.
        let bob = try await OffPool.chat("bob", ["put haircut in my calendar tomorrow at 9am"], dataDir: data.path, environment: Self.environment(data))
        #expect(bob.stdout.contains("Added event"), "\(bob.stdout)")
        #expect(try await server.checking(calendar, "list").count == 1)

        // A repeating event: its rule on the server, each occurrence listed, cancelled as a series.
        let weekly = try await OffPool.chat("alice", ["put standup in my calendar every monday at 9", "what's in my calendar next week"], dataDir: data.path, environment: Self.environment(data))
        #expect(weekly.stdout.contains("every Monday"), "\(weekly.stdout)")
        held = try await server.checking(calendar, "list")
        let standup = held.first { $0["summary"]?.stringValue == "standup" }
        #expect(standup?["rrule"]?.stringValue == "FREQ=WEEKLY;BYDAY=MO" && standup?["tzid"]?.stringValue == "Europe/Berlin", "\(held)")
        #expect(standup?["start"]?.stringValue?.contains("T09:00:00") == true, "\(held)")
        if let text = standup?["start"]?.stringValue, let date = ISO8601DateFormatter().date(from: text) {
            #expect(berlin.component(.weekday, from: date) == 2, "not a Monday: \(text)")
        }
        #expect(weekly.stdout.contains("09:00–10:00 standup (every Monday)"), "\(weekly.stdout)")
        // One occurrence cancelled on a phone (an EXDATE) is no longer listed; the rest are.
        func listed(_ output: RunResult) -> Int { output.stdout.components(separatedBy: "standup (every Monday)").count - 1 }
        let week = try await OffPool.chat("alice", ["what's in my calendar next week"], dataDir: data.path, environment: Self.environment(data))
        if let uid = standup?["uid"]?.stringValue { _ = try await server.checking(calendar, "skip", uid, "0") }
        let skipped = try await OffPool.chat("alice", ["what's in my calendar next week"], dataDir: data.path, environment: Self.environment(data))
        #expect(listed(week) >= 1 && listed(skipped) == listed(week) - 1, "before:\n\(week.stdout)\nafter:\n\(skipped.stdout)")
        let series = try await OffPool.chat("alice", ["cancel standup"], dataDir: data.path, environment: Self.environment(data))
        #expect(series.stdout.contains("the whole series"), "\(series.stdout)")
        #expect(try await server.checking(calendar, "list").allSatisfy { $0["summary"]?.stringValue != "standup" })
        // "Cancel all my meetings tomorrow" waits for a yes with the events listed, then
        // cancels exactly those; undo puts them back.
        let bulk = try await OffPool.chat("alice", ["put lunch with sam in my calendar tomorrow at 12pm", "cancel all my meetings tomorrow"], dataDir: data.path, environment: Self.environment(data))
        #expect(bulk.stdout.contains("these 2 events") && bulk.stdout.contains("10:00–11:00 Dentist (bring card)") && bulk.stdout.contains("12:00–13:00 lunch"), "\(bulk.stdout)")
        #expect(try await server.checking(calendar, "list").count == 2, "nothing may go before the yes")
        let yes = try await OffPool.chat("alice", ["yes"], dataDir: data.path, environment: Self.environment(data))
        #expect(yes.stdout.contains("Cancelled 2 events"), "\(yes.stdout)")
        #expect(try await server.checking(calendar, "list").isEmpty)
        let both = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: Self.environment(data))
        #expect(both.stdout.contains("Undone: put back"), "\(both.stdout)")
        #expect(try await server.checking(calendar, "list").count == 2)

        // Bob, on the built-in calendar, is told where repeats go.
        let bobWeekly = try await OffPool.chat("bob", ["put standup in my calendar every monday at 9"], dataDir: data.path, environment: Self.environment(data))
        #expect(bobWeekly.stdout.contains("Repeating events go on your own calendar server"), "\(bobWeekly.stdout)")
        // The same bulk cancel on the built-in calendar.
        let bobBulk = try await OffPool.chat("bob", ["cancel all my meetings tomorrow", "yes"], dataDir: data.path, environment: Self.environment(data))
        #expect(bobBulk.stdout.contains("09:00–10:00 haircut") && bobBulk.stdout.contains("Cancelled 1 event"), "\(bobBulk.stdout)")

        // The password is in no output, no audit record and not in the database files' bytes.
        let audit = try await OffPool.binary(["audit", "--json", "--data-dir", data.path])
        for text in [linked.stdout, linked.stderr, first.stdout, first.stderr, moved.stdout, audit.stdout] {
            #expect(!text.contains(server.password))
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: data.path) where name.hasPrefix("switchboard.sqlite") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: data.path + "/" + name))
            #expect(bytes.range(of: Data(server.password.utf8)) == nil, "the password is readable in \(name)")
        }
    }

    @Test("The server gone: the person is told it is not answering, nothing half-done; disconnect goes back to the built-in calendar")
    func serverGone() async throws {
        let server = try await DAVServer.start(.radicale)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        _ = try await server.calendar(client)
        let data = try TemporaryDirectory()
        let passwordFile = data.path + "/token"
        try server.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let linked = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", passwordFile, "--data-dir", data.path])
        #expect(linked.status == 0, "\(linked.stderr)")
        _ = try await OffPool.command("/bin/bash", [DAVServer.script, "stop", server.directory.path])
        _ = await eventually(10) { (try? await client.send(.OPTIONS, server.base)) == nil }

        let down = try await OffPool.chat("alice", ["put dentist in my calendar tomorrow at 10am", "what's in my calendar tomorrow"], dataDir: data.path, environment: Self.environment(data))
        #expect(down.stdout.components(separatedBy: "is not answering right now").count == 3, "\(down.stdout)")
        let path = data.path
        let failedCreate = try await OffPool.run {
            try Binary.auditJSON(dataDir: path).contains { $0["tool"] as? String == "calendar.create" && $0["status"] as? String == "failed" }
        }
        #expect(failedCreate, "no failed calendar.create in the audit trail")

        // Back on the same port with the same data: nothing of the failed write is there, and
        // asking again adds it once.
        _ = try await OffPool.command("/bin/bash", [DAVServer.script, "start", "radicale", server.directory.path, String(server.port), server.user, server.password])
        let calendar = try await server.calendar(client)
        #expect(try await server.checking(calendar, "list").isEmpty)
        let again = try await OffPool.chat("alice", ["put dentist in my calendar tomorrow at 10am"], dataDir: data.path, environment: Self.environment(data))
        #expect(again.stdout.contains("Added in your"), "\(again.stdout)")
        #expect(try await server.checking(calendar, "list").count == 1)

        // The password changed on the server: the person is told to connect again.
        _ = try await OffPool.command("/bin/bash", [DAVServer.script, "stop", server.directory.path])
        _ = try await OffPool.command("/bin/bash", [DAVServer.script, "start", "radicale", server.directory.path, String(server.port), server.user, "another-password"])
        let refused = try await OffPool.chat("alice", ["what's in my calendar tomorrow"], dataDir: data.path, environment: Self.environment(data))
        #expect(refused.stdout.contains("refused the login for sam: connect your calendar again"), "\(refused.stdout)")

        let gone = try await OffPool.binary(["dav", "disconnect", "--person", "alice", "--data-dir", data.path])
        #expect(gone.stdout.contains("Forgot the calendar account of alice"), "\(gone.stdout)")
        let local = try await OffPool.chat("alice", ["put dentist in my calendar tomorrow at 10am"], dataDir: data.path, environment: Self.environment(data))
        #expect(local.stdout.contains("Added event"), "\(local.stdout)")
    }
}
