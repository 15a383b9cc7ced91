// The calendar tools for people who linked their own calendar server (CalDAV).
//
// Each wraps the built-in tool of the same name. For a person without a linked account it is
// that tool, on the store, unchanged. For a person with one, `prepare` (which stays local and
// cannot reach the network) checks the arguments and marks the call `"on": "caldav"`, and the
// gate then runs it as a remote call: committed as `dispatched` first, performed outside any
// transaction, its outcome recorded after (ToolGate+Remote). Writes carry ETag preconditions,
// so a change made on a phone in the meantime is never overwritten; undo does the same.

import Foundation
public import SwitchboardEngine
public import SwitchboardModel
public import SwitchboardStorage
public import SwitchboardDAV

/// Where people's calendar accounts are kept: one sealed record each in the store (the
/// password among what is sealed), opened only when a call goes to the server.
public final class DAVAccounts: Sendable {
    /// The service name of the records (`account.dav.<person>`).
    public static let service = "dav"
    /// The service name of a marker record (`account.dav-contacts.<person>`, no secret in it)
    /// kept while the account has an address book: the contacts tools read it in `prepare`,
    /// which cannot open the sealed account.
    public static let contactsService = "dav-contacts"

    let store: any Store
    let sealer: SecretSealer

    public init(store: any Store, sealer: SecretSealer) {
        self.store = store
        self.sealer = sealer
    }

    static func recordName(_ person: PersonID) -> String { ToolContext.accountRecord(service, person: person) }

    /// The person's account, if they linked one.
    ///
    /// - Throws: `SealingError` when it was sealed under another key or is damaged.
    public func account(for person: PersonID) async throws -> DAVAccount? {
        let name = Self.recordName(person)
        guard let sealed = try await store.read({ try $0.cursor(name) }) else { return nil }
        return try DAVAccount.decode(try sealer.open(sealed, name: name))
    }

    /// Links (or replaces) the person's account.
    public func save(_ account: DAVAccount, for person: PersonID) async throws {
        let name = Self.recordName(person)
        let sealed = try sealer.seal(account.encoded(), name: name)
        let marker = ToolContext.accountRecord(Self.contactsService, person: person)
        try await store.write { tx in
            try tx.setCursor(name, value: sealed)
            if account.addressBook != nil { try tx.setCursor(marker, value: "carddav") } else { try tx.deleteCursor(marker) }
        }
    }

    /// Unlinks the person's account; whether there was one.
    public func remove(for person: PersonID) async throws -> Bool {
        let name = Self.recordName(person)
        return try await store.write { tx in
            try tx.deleteCursor(ToolContext.accountRecord(Self.contactsService, person: person))
            guard try tx.cursor(name) != nil else { return false }
            try tx.deleteCursor(name)
            return true
        }
    }
}

/// Reads from a person's DAV server, shared by the calendar and the contacts tools.
enum DAVReads {
    /// A read, tried again after a short wait (0.3 s, then 0.9 s) when the server was away or
    /// busy; a timeout, any other failure or the third attempt's is said in `failure`'s words.
    static func retrying<T: Sendable>(_ body: () async throws -> T, failure: (any Error) -> ToolFailure) async throws -> T {
        var delay: UInt64 = 300_000_000
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as DAVError where error.isTransient && error.kind != .timeout && attempt < 3 {
                try await Task.sleep(nanoseconds: delay)
                delay *= 3
                attempt += 1
            } catch {
                throw failure(error)
            }
        }
    }
}

public enum CalDAVTools {
    /// The calendar tools, on the person's server where they linked one: `calendar.create`,
    /// `calendar.list`, `calendar.move` and `calendar.cancel` (export stays on the store).
    public static func all(accounts: DAVAccounts) -> [any Tool] {
        [
            CalDAVTool(CalendarCreate(), operation: .create, accounts: accounts),
            CalDAVTool(CalendarList(), operation: .list, accounts: accounts),
            CalDAVTool(CalendarMove(), operation: .move, accounts: accounts),
            CalDAVTool(CalendarCancel(), operation: .cancel, accounts: accounts),
            CalendarExport(),
        ]
    }

    /// How far ahead (and back) an event named in a move or a cancel is looked for.
    static let lookBack: TimeInterval = 86400
    static let lookAhead: TimeInterval = 366 * 86400
}

/// One calendar tool that works on the store or on the person's CalDAV server.
struct CalDAVTool: RemoteTool {
    enum Operation: String, Sendable { case create, list, move, cancel }

    let local: any Tool
    let operation: Operation
    let accounts: DAVAccounts

    init(_ local: any Tool, operation: Operation, accounts: DAVAccounts) {
        self.local = local
        self.operation = operation
        self.accounts = accounts
    }

    var descriptor: ToolDescriptor { local.descriptor }

    // MARK: Local or remote

    func performsRemotely(_ call: PreparedCall) -> Bool { call.arguments["on"]?.stringValue == "caldav" }
    func revertsRemotely(_ payload: JSONValue) -> Bool { payload["on"]?.stringValue == "caldav" }

    func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard try context.account(DAVAccounts.service) != nil else { return try local.prepare(arguments, context: context) }
        let zone = RecordTools.zone(context)
        var prepared: [String: JSONValue]
        var preview: String
        switch operation {
        case .create, .list:
            // The same checks, defaults and preview as on the store (learned lengths and times
            // included); the store's own data is not read for them. A repeat is the server's.
            var given = arguments
            let rule = try arguments["repeat"]?.stringValue.map(RepeatRule.init)
            if rule != nil, var object = arguments.objectValue {
                object.removeValue(forKey: "repeat")
                given = .object(object)
            }
            let call = try (local as? CalendarCreate)?.prepareEvent(given, context: context) ?? local.prepare(given, context: context)
            prepared = call.arguments.objectValue ?? [:]
            preview = call.preview
            if let rule {
                prepared["repeat"] = .string(rule.text)
                preview += ", " + rule.describe(zone: zone, now: context.now)
            }
            // What the server holds at that time, read before (`look`): a booking over it waits
            // for a yes. Only a single event is checked; a series is not expanded against it.
            if operation == .create, rule == nil, let events = context.lookup?["events"]?.arrayValue,
               let start = try RecordTools.time(prepared["start"], name: "the start"), let end = try RecordTools.time(prepared["end"], name: "the end")
            {
                let overlaps = events.filter { item in
                    guard let from = try? RecordTools.time(item["start"], name: "start"), let to = try? RecordTools.time(item["end"], name: "end") else { return false }
                    return from < end && to > start
                }.map { item in
                    let from = (try? RecordTools.time(item["start"], name: "start")) ?? start
                    let to = (try? RecordTools.time(item["end"], name: "end")) ?? from
                    return "\(RecordTools.describe(from, zone: zone, now: context.now))–\(CalendarTools.timeOnly(to, zone: zone)) \(item["title"]?.stringValue ?? "an event")"
                }
                prepared["on"] = "caldav"
                prepared["zone"] = .string(zone.identifier)
                return CalendarTools.askingAboutOverlaps(PreparedCall(arguments: .object(prepared), preview: preview, risk: descriptor.baseRisk), overlaps: overlaps)
            }
        case .cancel where arguments["all"]?.boolValue == true:
            let (from, to) = try CalendarTools.range(arguments, days: 1, context: context)
            let range = "from \(RecordTools.describe(from, zone: zone, now: context.now)) to \(RecordTools.describe(to, zone: zone, now: context.now))"
            if let message = context.lookup?["error"]?.stringValue { throw ToolFailure(message) }
            guard let events = context.lookup?["events"]?.arrayValue else {
                throw ToolFailure("I need to look at your calendar server before cancelling everything \(range); ask me directly: cancel all my meetings tomorrow.")
            }
            guard !events.isEmpty else { throw ToolFailure("There is nothing in your calendar \(range) to cancel.") }
            guard events.count <= 50 else { throw ToolFailure("That is \(events.count) events; I cancel up to 50 at a time. Give a shorter range.") }
            let lines = events.map { item -> String in
                let start = (try? RecordTools.time(item["start"], name: "start")) ?? from
                let end = (try? RecordTools.time(item["end"], name: "end")) ?? start
                return "- \(RecordTools.describe(start, zone: zone, now: context.now))–\(CalendarTools.timeOnly(end, zone: zone)) \(item["title"]?.stringValue ?? "")"
                    + (item["repeats"]?.boolValue == true ? " (a repeating event: the whole series)" : "")
            }
            prepared = ["all": true, "events": .array(events)]
            preview = "Cancel \(events.count == 1 ? "this event" : "these \(events.count) events") in your calendar \(range):\n" + lines.joined(separator: "\n")
            prepared["on"] = "caldav"
            prepared["zone"] = .string(zone.identifier)
            return PreparedCall(arguments: .object(prepared), preview: preview, risk: .high)
        case .move, .cancel:
            guard let query = arguments["query"]?.stringValue?.trimmingWhitespace(), !query.isEmpty else {
                throw ToolFailure("Which event? On your calendar server I find events by their name: say, for example, \"\(operation == .move ? "move the dentist to friday at 3" : "cancel the dentist")\".")
            }
            prepared = ["query": .string(query)]
            preview = "\(operation == .move ? "Move" : "Cancel") the event \"\(query)\" in your calendar"
            if operation == .move {
                guard let start = try RecordTools.time(arguments["start"], name: "the new start") else {
                    throw ToolFailure("When should it start instead? Try: move the dentist to friday at 3pm")
                }
                prepared["start"] = .string(RecordTools.iso(start))
                if let end = try RecordTools.time(arguments["end"], name: "the new end") {
                    guard end > start else { throw ToolFailure("That would end before it starts; check the times.") }
                    guard end.timeIntervalSince(start) <= CalendarTools.maxLength else { throw ToolFailure("Events can last up to 14 days.") }
                    prepared["end"] = .string(RecordTools.iso(end))
                }
                preview += " to \(RecordTools.describe(start, zone: zone, now: context.now))"
            }
        }
        prepared["on"] = "caldav"
        prepared["zone"] = .string(zone.identifier)
        return PreparedCall(arguments: .object(prepared), preview: preview, risk: descriptor.baseRisk)
    }

    func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        try local.execute(call, approval: approval, context: context)
    }

    /// For "cancel all my meetings tomorrow": the events of the range, read before the call
    /// is prepared, so its preview lists them and the cancel deletes exactly those versions.
    func look(_ arguments: JSONValue, person: PersonID) async -> JSONValue? {
        if operation == .create { return await overlapping(arguments, person: person) }
        guard operation == .cancel, arguments["all"]?.boolValue == true,
              let from = try? RecordTools.time(arguments["from"], name: "the start"), let to = try? RecordTools.time(arguments["to"], name: "the end"), to > from
        else { return nil }
        do {
            guard let account = try await accounts.account(for: person) else { return nil }
            let server = CalDAVCalendar(client: account.client(), url: account.calendar)
            let found = try await reading(account) { try await server.events(from: from, to: to, zone: .current) }
            return ["events": .array(found.events.map { event, object in
                [
                    "href": .string(object.url.absoluteString), "etag": object.etag.map(JSONValue.string) ?? .null, "title": .string(event.summary),
                    "start": .string(RecordTools.iso(event.start.date)), "end": .string(RecordTools.iso(event.end.date)),
                    "repeats": .bool(event.rule != nil),
                ]
            })]
        } catch let failure as ToolFailure {
            return ["error": .string(failure.message)]
        } catch {
            return ["error": .string(Self.failure(error, account: nil, writing: false).message)]
        }
    }

    /// For a booking: the events (each occurrence of a series) from half a day before its
    /// start to a day and a half after, wide enough for the start the person's usual time and
    /// length give it; `prepare` keeps those that overlap. Nil when the server cannot be read:
    /// the booking then goes ahead and the overlap is said after, as without a look.
    func overlapping(_ arguments: JSONValue, person: PersonID) async -> JSONValue? {
        guard arguments["repeat"] == nil, let start = try? RecordTools.time(arguments["start"], name: "the start") else { return nil }
        let from = start.addingTimeInterval(-12 * 3600), to = start.addingTimeInterval(36 * 3600)
        do {
            guard let account = try await accounts.account(for: person) else { return nil }
            let server = CalDAVCalendar(client: account.client(timeout: 5), url: account.calendar)
            let found = try await server.events(from: from, to: to, zone: .current)
            var items: [JSONValue] = []
            for (event, _) in found.events {
                let length = event.end.date.timeIntervalSince(event.start.date)
                let starts = event.rule.flatMap { try? RepeatRule($0) }.map { rule in
                    rule.occurrences(start: event.start.date, from: from.addingTimeInterval(-length), to: to, zone: event.start.zone ?? .current)
                } ?? [event.start.date]
                for one in starts where !event.skips(one) {
                    items.append(["title": .string(event.summary), "start": .string(RecordTools.iso(one)), "end": .string(RecordTools.iso(one.addingTimeInterval(length)))])
                }
            }
            return ["events": .array(items)]
        } catch {
            return nil
        }
    }

    func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        try local.undo(payload, approval: approval, context: context)
    }

    // MARK: On the server

    func perform(_ call: PreparedCall, approval: Approval, context: RemoteCallContext) async throws -> ToolOutput {
        let account = try await self.account(context.person)
        let server = CalDAVCalendar(client: account.client(), url: account.calendar)
        let arguments = call.arguments
        let zone = arguments["zone"]?.stringValue.flatMap(TimeZone.init(identifier:)) ?? .current
        let now = Date()
        let where_ = " in your \(account.calendarName) calendar"
        switch operation {
        case .list:
            guard let from = try RecordTools.time(arguments["from"], name: "the start"), let to = try RecordTools.time(arguments["to"], name: "the end") else {
                throw ToolFailure("I need a range to show.")
            }
            let found = try await reading(account) { try await server.events(from: from, to: to, zone: zone) }
            let range = "\(RecordTools.describe(from, zone: zone, now: now)) to \(RecordTools.describe(to, zone: zone, now: now))"
            // A repeating event is one object; each of its occurrences in the range is a line.
            var occurrences: [(Date, String)] = []
            for (event, _) in found.events {
                guard let text = event.rule, let rule = try? RepeatRule(text) else {
                    occurrences.append((event.start.date, Self.line(event, zone: zone, now: now)))
                    continue
                }
                let length = event.end.date.timeIntervalSince(event.start.date)
                for start in rule.occurrences(start: event.start.date, from: from.addingTimeInterval(-length), to: to, zone: event.start.zone ?? zone)
                where start.addingTimeInterval(length) > from && !event.skips(start) {
                    var one = event
                    one.start.date = start
                    one.end.date = start.addingTimeInterval(length)
                    occurrences.append((start, Self.line(one, zone: zone, now: now)))
                }
            }
            occurrences.sort { $0.0 < $1.0 }
            var lines = occurrences.map(\.1)
            if !found.unreadable.isEmpty {
                lines.append("(\(found.unreadable.count) more I could not read: \(found.unreadable.map(\.0.lastPathComponent).joined(separator: ", ")))")
            }
            guard !occurrences.isEmpty else {
                return ToolOutput(reply: "Nothing\(where_) from \(range)." + (lines.isEmpty ? "" : "\n" + lines.joined(separator: "\n")), summary: "0 events on the calendar server")
            }
            let header = occurrences.count == 1 ? "1 event\(where_) from \(range):" : "\(occurrences.count) events\(where_) from \(range):"
            return ToolOutput(reply: ([header] + lines).joined(separator: "\n"), summary: occurrences.count == 1 ? "1 event on the calendar server" : "\(occurrences.count) events on the calendar server")

        case .create:
            let (start, end) = try CalendarTools.span(arguments, defaultLength: CalendarTools.defaultLength)
            let title = arguments["title"]?.stringValue ?? ""
            var summaryTitle = title
            if let attendees = arguments["attendees"]?.arrayValue?.compactMap(\.stringValue), !attendees.isEmpty {
                summaryTitle += " (with \(attendees.joined(separator: ", ")))"
            }
            // The call id makes the event's UID: a second attempt of the same call finds its
            // name taken instead of adding the event twice.
            let rule = try arguments["repeat"]?.stringValue.map(RepeatRule.init)
            let event = CalendarEvent(
                uid: "switchboard-\(context.callID.rawValue)", summary: summaryTitle, location: arguments["location"]?.stringValue,
                start: EventTime(date: start, zone: zone), end: EventTime(date: end, zone: zone), rule: rule?.text
            )
            // Asked about before the yes when they were read then; otherwise said after.
            let overlapping = arguments["overlaps"]?.stringValue == "asked" ? [] : (try? await server.events(from: start, to: end, zone: zone).events.map(\.0)) ?? []
            let created: DAVObject
            do {
                created = try await server.create(event, stamp: now)
            } catch let error as DAVError where error.kind == .changed {
                throw ToolFailure("That event is already\(where_) (this same request reached the server before); I did not add it again.")
            } catch {
                throw Self.failure(error, account: account, writing: true)
            }
            var reply = "Added\(where_): \(Self.line(event, zone: zone, now: now))"
            if !overlapping.isEmpty {
                reply += "\nHeads up: this overlaps with " + overlapping.map { Self.line($0, zone: zone, now: now) }.joined(separator: "; ") + "."
            }
            return ToolOutput(
                reply: reply, summary: "added an event to the calendar server",
                undo: ["on": "caldav", "op": "delete", "href": .string(created.url.absoluteString), "etag": created.etag.map(JSONValue.string) ?? .null, "title": .string(title)]
            )

        case .cancel where arguments["all"]?.boolValue == true:
            // Exactly the versions listed in the preview: one changed since is left, and said.
            var cancelled: [String] = []
            var left: [String] = []
            var restore: [JSONValue] = []
            for item in arguments["events"]?.arrayValue ?? [] {
                guard let href = item["href"]?.stringValue, let url = URL(string: href), account.client().isOwnOrigin(url) else { continue }
                let title = item["title"]?.stringValue ?? "an event"
                do {
                    let current = try await server.client.get(url)
                    if let expected = item["etag"]?.stringValue, let etag = current.etag, etag != expected {
                        left.append(title)
                        continue
                    }
                    try await server.delete(DAVObject(url: url, etag: current.etag, data: current.text))
                    cancelled.append(title)
                    restore.append(["href": .string(href), "data": .string(current.text), "title": .string(title)])
                } catch let error as DAVError where error.kind == .changed || error.kind == .notFound {
                    left.append(title)
                } catch {
                    // Stopped part-way: what was done is said and can be undone.
                    let failure = Self.failure(error, account: account, writing: true)
                    if cancelled.isEmpty { throw failure }
                    left.append(title + " (" + failure.message + ")")
                    break
                }
            }
            guard !cancelled.isEmpty else { throw ToolFailure("Those events were changed or removed on your calendar server since I listed them; I cancelled none. Ask me again to see them as they are now.") }
            var reply = "Cancelled \(cancelled.count == 1 ? "1 event" : "\(cancelled.count) events")\(where_): " + cancelled.joined(separator: ", ") + "."
            if !left.isEmpty { reply += "\nLeft as they are (changed or removed on the server since I listed them): " + left.joined(separator: ", ") + "." }
            return ToolOutput(reply: reply, summary: "cancelled \(cancelled.count) events on the calendar server", undo: ["on": "caldav", "op": "restore_all", "items": .array(restore), "title": .string("\(cancelled.count) events")])

        case .move, .cancel:
            let query = arguments["query"]?.stringValue ?? ""
            let (event, object) = try await find(query, in: server, account: account, zone: zone, now: now)
            if operation == .cancel {
                do {
                    try await server.delete(object)
                } catch {
                    throw Self.failure(error, account: account, writing: true, changed: "\(event.summary) was changed on your calendar server since I read it; I left it as it is. Ask me again to cancel it as it is now.")
                }
                return ToolOutput(
                    reply: "Cancelled\(where_): \(Self.line(event, zone: zone, now: now))" + (event.rule == nil ? "" : ", the whole series"),
                    summary: "cancelled an event on the calendar server",
                    undo: ["on": "caldav", "op": "restore", "href": .string(object.url.absoluteString), "data": .string(object.data), "title": .string(event.summary)]
                )
            }
            guard event.rule == nil else {
                throw ToolFailure("\(event.summary) repeats; I can't move one occurrence of a series yet. Change it in your calendar app.")
            }
            guard let start = try RecordTools.time(arguments["start"], name: "the new start") else { throw ToolFailure("When should it start instead?") }
            let end = try RecordTools.time(arguments["end"], name: "the new end") ?? start.addingTimeInterval(max(60, event.end.date.timeIntervalSince(event.start.date)))
            let moved: DAVObject
            do {
                let data = SwitchboardDAV.ICalendar.serialize(try CalendarEvent.moved(try SwitchboardDAV.ICalendar.parse(object.data), to: start, end: end, stamp: now))
                moved = try await server.replace(object, with: data)
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: "\(event.summary) was changed on your calendar server since I read it; I did not overwrite that change. Ask me again to move it as it is now.")
            }
            var after = event
            after.start = EventTime(date: start, zone: event.start.zone ?? zone)
            after.end = EventTime(date: end, zone: event.end.zone ?? zone)
            return ToolOutput(
                reply: "Moved\(where_): \(Self.line(after, zone: zone, now: now))", summary: "moved an event on the calendar server",
                undo: [
                    "on": "caldav", "op": "move_back", "href": .string(moved.url.absoluteString), "etag": moved.etag.map(JSONValue.string) ?? .null,
                    "start": .string(RecordTools.iso(event.start.date)), "end": .string(RecordTools.iso(event.end.date)), "title": .string(event.summary),
                ]
            )
        }
    }

    func revert(_ payload: JSONValue, approval: Approval, context: RemoteCallContext) async throws -> String {
        let account = try await self.account(context.person)
        let server = CalDAVCalendar(client: account.client(), url: account.calendar)
        let title = payload["title"]?.stringValue ?? "the event"
        let href = payload["href"]?.stringValue.flatMap { URL(string: $0) }
        let url = href ?? account.calendar
        guard payload["op"]?.stringValue == "restore_all" || (href != nil && account.client().isOwnOrigin(url)) else {
            throw ToolFailure("I can't undo that: it was made on a calendar server you are no longer connected to.")
        }
        let changed = "\(title) was changed on your calendar server after I wrote it, so I left it as it is now."
        switch payload["op"]?.stringValue {
        case "delete":
            do {
                try await server.delete(DAVObject(url: url, etag: payload["etag"]?.stringValue, data: ""))
            } catch let error as DAVError where error.kind == .notFound {
                throw ToolFailure("\(title) is no longer in your calendar; nothing to undo.")
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: changed)
            }
            return "removed \(title) from your calendar"
        case "restore":
            guard let data = payload["data"]?.stringValue else { throw ToolFailure("I can't undo that: I kept no copy of the event.") }
            do {
                _ = try await server.client.put(url, data, contentType: "text/calendar; charset=utf-8", precondition: .absent)
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: "\(title) is back in your calendar already (put there by someone else); I left it.")
            }
            return "put \(title) back in your calendar"
        case "restore_all":
            var back: [String] = []
            var skipped: [String] = []
            for item in payload["items"]?.arrayValue ?? [] {
                guard let href = item["href"]?.stringValue, let url = URL(string: href), account.client().isOwnOrigin(url), let data = item["data"]?.stringValue else { continue }
                let name = item["title"]?.stringValue ?? "an event"
                do {
                    _ = try await server.client.put(url, data, contentType: "text/calendar; charset=utf-8", precondition: .absent)
                    back.append(name)
                } catch let error as DAVError where error.kind == .changed {
                    skipped.append(name)
                } catch {
                    if back.isEmpty { throw Self.failure(error, account: account, writing: true) }
                    skipped.append(name)
                }
            }
            guard !back.isEmpty else { throw ToolFailure("Those events are back in your calendar already (put there by someone else); I left them.") }
            return "put back " + back.joined(separator: ", ") + (skipped.isEmpty ? "" : " (not \(skipped.joined(separator: ", ")): there again already, or the server did not answer)")
        case "move_back":
            guard let start = try RecordTools.time(payload["start"], name: "the start"), let end = try RecordTools.time(payload["end"], name: "the end") else {
                throw ToolFailure("I can't undo that move: I kept no earlier time.")
            }
            do {
                let current = try await server.client.get(url)
                guard current.etag == nil || payload["etag"]?.stringValue == nil || current.etag == payload["etag"]?.stringValue else { throw ToolFailure(changed) }
                let data = SwitchboardDAV.ICalendar.serialize(try CalendarEvent.moved(try SwitchboardDAV.ICalendar.parse(current.text), to: start, end: end, stamp: Date()))
                _ = try await server.replace(DAVObject(url: url, etag: payload["etag"]?.stringValue ?? current.etag, data: current.text), with: data)
            } catch let failure as ToolFailure {
                throw failure
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: changed)
            }
            return "moved \(title) back"
        default:
            throw ToolFailure("I can't undo that.")
        }
    }

    // MARK: Helpers

    private func account(_ person: PersonID) async throws -> DAVAccount {
        let account: DAVAccount?
        do {
            account = try await accounts.account(for: person)
        } catch is SealingError {
            throw ToolFailure("I can't open your calendar account (it was sealed with another key); connect your calendar again.")
        }
        guard let account else { throw ToolFailure("Your calendar account is no longer connected; nothing was changed.") }
        return account
    }

    /// The one event whose title contains the query, among those from a day ago to a year ahead.
    private func find(_ query: String, in server: CalDAVCalendar, account: DAVAccount, zone: TimeZone, now: Date) async throws -> (CalendarEvent, DAVObject) {
        let found = try await reading(account) {
            try await server.events(from: now.addingTimeInterval(-CalDAVTools.lookBack), to: now.addingTimeInterval(CalDAVTools.lookAhead), zone: zone)
        }
        let folded = query.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        let matches = found.events.filter { $0.0.summary.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).contains(folded) }
        guard let first = matches.first else {
            throw ToolFailure("I found no event matching \"\(query)\" in your \(account.calendarName) calendar (from yesterday to a year ahead).")
        }
        guard matches.count == 1 else {
            let lines = matches.prefix(10).map { "- " + Self.line($0.0, zone: zone, now: now) }
            throw ToolFailure("\(matches.count) events match \"\(query)\"; which one? Say more of its name.\n" + lines.joined(separator: "\n"))
        }
        return first
    }

    /// A read, tried again after a short wait when the server was away or busy.
    private func reading<T: Sendable>(_ account: DAVAccount, _ body: () async throws -> T) async throws -> T {
        try await DAVReads.retrying(body) { Self.failure($0, account: account, writing: false) }
    }

    /// A DAV failure in words for the person; never a credential.
    static func failure(_ error: any Error, account: DAVAccount?, writing: Bool, changed: String? = nil) -> ToolFailure {
        if let failure = error as? ToolFailure { return failure }
        let host = account?.base.host ?? "your calendar server"
        let user = account?.credentials.user ?? "you"
        let calendarName = account?.calendarName ?? "chosen"
        guard let error = error as? DAVError else {
            return ToolFailure("I couldn't read what your calendar server (\(host)) holds: \(error). Nothing was changed.")
        }
        switch error.kind {
        case .unauthorized:
            return ToolFailure("Your calendar server (\(host)) refused the login for \(user): connect your calendar again (the password or app token may have changed). Nothing was changed.")
        case .forbidden:
            return ToolFailure("Your calendar server (\(host)) does not let me \(writing ? "change" : "read") your \(calendarName) calendar.")
        case .changed:
            return ToolFailure(changed ?? "That was changed on your calendar server meanwhile; I did not overwrite it.")
        case .notFound:
            return ToolFailure(writing ? "That event is no longer on your calendar server." : "Your \(calendarName) calendar is no longer on \(host); connect your calendar again.")
        case .full:
            return ToolFailure("Your calendar server (\(host)) is out of space; nothing was changed.")
        case .unreachable:
            return ToolFailure("Your calendar server (\(host)) is not answering right now; nothing was changed. Try again in a while.")
        case .timeout:
            return ToolFailure(writing
                ? "Your calendar server (\(host)) did not answer in time, so I can't tell whether the change was made: check your calendar before asking again."
                : "Your calendar server (\(host)) is not answering right now; try again in a while.")
        case .status where (error.status ?? 0) >= 500:
            return ToolFailure("Your calendar server (\(host)) has a problem right now (it answered \(error.status ?? 500)); nothing was changed. Try again in a while.")
        case .notDAV, .elsewhere, .tooLarge, .malformed, .status:
            return ToolFailure("Your calendar server (\(host)) gave an answer I can't use (\(error.detail)).")
        }
    }

    /// "Tue 8 Dec 10:00–11:00 Dentist @ Main St. 3".
    static func line(_ event: CalendarEvent, zone: TimeZone, now: Date) -> String {
        var line = event.start.allDay ? RecordTools.describe(event.start.date, zone: zone, now: now).split(separator: " ").dropLast().joined(separator: " ") + " (all day)"
            : RecordTools.describe(event.start.date, zone: zone, now: now) + "–" + CalendarTools.timeOnly(event.end.date, zone: zone)
        line += " " + event.summary
        if let location = event.location, !location.isEmpty { line += " @ \(location)" }
        if let text = event.rule { line += " (" + ((try? RepeatRule(text))?.describe(zone: zone, now: now) ?? "repeats") + ")" }
        return line
    }
}
