// The contacts tools for people whose linked DAV account has an address book (CardDAV).
//
// Each wraps the built-in tool of the same name, as the calendar ones do: for a person without
// an address book it is that tool, on the store, unchanged; for a person with one, `prepare`
// checks the arguments and marks the call `"on": "carddav"`, and the gate runs it as a remote
// call. A card is changed in place: only the fields the person changed are written, and every
// other property (photo, birthday, addresses, a phone's X- fields) stays as the server held
// it. Writes carry ETag preconditions, so a change made on a phone meanwhile is never
// overwritten; undo puts back the exact card that was there.
//
// Logging an interaction stays on the store (the log is the gateway's own).

import Foundation
public import SwitchboardEngine
public import SwitchboardModel
import SwitchboardDAV
import SwitchboardStorage

public enum CardDAVTools {
    /// `contacts.add`, `contacts.find`, `contacts.update`, `contacts.delete` and
    /// `contacts.merge` on the person's address book where they have one; `contacts.log` on the
    /// store.
    public static func all(accounts: DAVAccounts) -> [any Tool] {
        [
            CardDAVTool(ContactsAdd(), operation: .add, accounts: accounts),
            CardDAVTool(ContactsFind(), operation: .find, accounts: accounts),
            CardDAVTool(ContactsUpdate(), operation: .update, accounts: accounts),
            CardDAVTool(ContactsDelete(), operation: .delete, accounts: accounts),
            ContactsLog(),
            CardDAVTool(ContactsMerge(), operation: .merge, accounts: accounts),
        ]
    }
}

/// One contacts tool that works on the store or on the person's CardDAV address book.
struct CardDAVTool: RemoteTool {
    enum Operation: String, Sendable { case add, find, update, delete, merge }

    let local: any Tool
    let operation: Operation
    let accounts: DAVAccounts

    init(_ local: any Tool, operation: Operation, accounts: DAVAccounts) {
        self.local = local
        self.operation = operation
        self.accounts = accounts
    }

    var descriptor: ToolDescriptor { local.descriptor }

    func performsRemotely(_ call: PreparedCall) -> Bool { call.arguments["on"]?.stringValue == "carddav" }
    func revertsRemotely(_ payload: JSONValue) -> Bool { payload["on"]?.stringValue == "carddav" }

    func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        try local.execute(call, approval: approval, context: context)
    }

    func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        try local.undo(payload, approval: approval, context: context)
    }

    // MARK: Preparing

    func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard try context.account(DAVAccounts.contactsService) != nil else { return try local.prepare(arguments, context: context) }
        var prepared: [String: JSONValue]
        var preview: String
        switch operation {
        case .add, .find:
            // The same checks and preview as on the store; the store is not read for them.
            let call = try local.prepare(arguments, context: context)
            prepared = call.arguments.objectValue ?? [:]
            preview = call.preview + (operation == .add ? " to your address book" : " in your address book")
        case .merge:
            guard let names = arguments["names"]?.arrayValue?.compactMap({ $0.stringValue?.trimmingWhitespace() }), names.count == 2, names.allSatisfy({ !$0.isEmpty }) else {
                throw ToolFailure("Your contacts are in your address book, where I find them by name: say, for example, \"merge Bob Smith and Robert Smith\" (the first is kept).")
            }
            prepared = ["names": .array(names.map(JSONValue.string))]
            preview = "Merge the contact \"\(names[1])\" into \"\(names[0])\" in your address book; the second card will be deleted"
            if let message = context.lookup?["error"]?.stringValue { throw ToolFailure(message) }
            if let both = context.lookup?["merge"]?.arrayValue, both.count == 2 {
                var picked: [JSONValue] = []
                for (name, found) in zip(names, both) {
                    let matches = found.arrayValue ?? []
                    guard let first = matches.first else { throw ToolFailure("I found no contact matching \"\(name)\" in your address book.") }
                    guard matches.count == 1 else {
                        let lines = matches.prefix(10).map { "- " + ($0["line"]?.stringValue ?? "") }
                        throw ToolFailure("\(matches.count) contacts match \"\(name)\"; which one? Say more of the name.\n" + lines.joined(separator: "\n"))
                    }
                    picked.append(first)
                }
                guard picked[0]["href"] != picked[1]["href"] else { throw ToolFailure("Those are the same contact (\(picked[0]["line"]?.stringValue ?? names[0])); there's nothing to merge.") }
                prepared["keep"] = picked[0]
                prepared["other"] = picked[1]
                preview = "Merge \(picked[1]["line"]?.stringValue ?? names[1]) into \(picked[0]["line"]?.stringValue ?? names[0]) in your address book; the second card will be deleted"
            }
        case .update, .delete:
            guard let query = (arguments["query"] ?? arguments["name"])?.stringValue?.trimmingWhitespace(), !query.isEmpty else {
                throw ToolFailure(arguments["id"] != nil
                    ? "Your contacts are in your address book, where I find them by name: say, for example, \"\(operation == .update ? "change Bob's phone to 555 0199" : "delete the contact Carol")\"."
                    : "Which contact? Say their name.")
            }
            prepared = ["query": .string(query)]
            var what = ""
            if operation == .update {
                var changes = try ContactsTools.fields(arguments)
                if let newName = try RecordTools.optionalText(arguments, "new_name", maxLength: 200) { changes["name"] = .string(newName) }
                guard !changes.isEmpty else { throw ToolFailure("What should change for \(query)? Try: update \(query)'s phone to +44 20 7946 0000") }
                for (key, value) in changes { prepared[key] = value }
                what = ": " + changes.keys.sorted().map { "\($0) → \(ContactsUpdate.show(changes[$0]!))" }.joined(separator: ", ")
            }
            let verb = operation == .update ? "Update" : "Delete"
            if let message = context.lookup?["error"]?.stringValue { throw ToolFailure(message) }
            if let matches = context.lookup?["matches"]?.arrayValue {
                // Read just now: the preview names the very card, and the write acts only on
                // that version of it.
                guard let first = matches.first else { throw ToolFailure("I found no contact matching \"\(query)\" in your address book.") }
                guard matches.count == 1 else {
                    let lines = matches.prefix(10).map { "- " + ($0["line"]?.stringValue ?? "") }
                    throw ToolFailure("\(matches.count) contacts match \"\(query)\"; which one? Say more of the name.\n" + lines.joined(separator: "\n"))
                }
                prepared["href"] = first["href"]
                prepared["etag"] = first["etag"]
                preview = "\(verb) \(first["line"]?.stringValue ?? query) in your address book\(what)"
            } else {
                preview = "\(verb) the contact \"\(query)\" in your address book\(what)"
            }
        }
        prepared["on"] = "carddav"
        return PreparedCall(arguments: .object(prepared), preview: preview, risk: descriptor.baseRisk)
    }

    /// For an update or a delete: the cards the name matches, read before the call is
    /// prepared, so its preview shows the one card and the write changes exactly that version.
    func look(_ arguments: JSONValue, person: PersonID) async -> JSONValue? {
        if operation == .merge, let names = arguments["names"]?.arrayValue?.compactMap(\.stringValue), names.count == 2 {
            do {
                guard let account = try await accounts.account(for: person), let url = account.addressBook else { return nil }
                let all = try await CardDAVAddressBook(client: account.client(), url: url).contacts().contacts
                return ["merge": .array(names.map { name in
                    .array(Self.matching(name, in: all).map { contact, _, object in
                        ["href": .string(object.url.absoluteString), "etag": object.etag.map(JSONValue.string) ?? .null, "line": .string(Self.line(contact))]
                    })
                })]
            } catch {
                return ["error": .string(Self.failure(error, account: nil, writing: false).message)]
            }
        }
        guard operation == .update || operation == .delete, let query = (arguments["query"] ?? arguments["name"])?.stringValue?.trimmingWhitespace(), !query.isEmpty else {
            return nil
        }
        do {
            guard let account = try await accounts.account(for: person), let url = account.addressBook else { return nil }
            let book = CardDAVAddressBook(client: account.client(), url: url)
            let matches = Self.matching(query, in: try await book.contacts().contacts)
            return ["matches": .array(matches.map { contact, _, object in
                ["href": .string(object.url.absoluteString), "etag": object.etag.map(JSONValue.string) ?? .null, "line": .string(Self.line(contact))]
            })]
        } catch {
            return ["error": .string(Self.failure(error, account: nil, writing: false).message)]
        }
    }

    // MARK: On the server

    func perform(_ call: PreparedCall, approval: Approval, context: RemoteCallContext) async throws -> ToolOutput {
        let account = try await self.account(context.person)
        guard let url = account.addressBook else { throw ToolFailure("Your linked account has no address book any more; connect it again.") }
        let book = CardDAVAddressBook(client: account.client(), url: url)
        let arguments = call.arguments
        let now = Date()
        let where_ = Self.place(account)
        switch operation {
        case .find:
            let all = try await reading(account) { try await book.contacts() }
            let query = arguments["query"]?.stringValue
            let found = query.map { Self.matching($0, in: all.contacts) } ?? all.contacts
            var lines = found.prefix(20).map { Self.line($0.0) }
            if found.count > 20 { lines.append("…and \(found.count - 20) more; narrow the search.") }
            if !all.unreadable.isEmpty { lines.append("(\(all.unreadable.count) cards I could not read: \(all.unreadable.map(\.0.lastPathComponent).joined(separator: ", ")))") }
            guard !found.isEmpty else {
                return ToolOutput(reply: (query.map { "No contacts match \"\($0)\"\(where_)." } ?? "Your address book has no contacts yet.") + (lines.isEmpty ? "" : "\n" + lines.joined(separator: "\n")), summary: "0 contacts on the address book server")
            }
            return ToolOutput(reply: lines.joined(separator: "\n"), summary: "\(found.count) contacts on the address book server")

        case .add:
            let name = arguments["name"]?.stringValue ?? ""
            // The call id makes the card's UID: a second attempt of the same call finds its
            // name taken instead of adding the contact twice.
            let contact = ContactCard(
                uid: "switchboard-\(context.callID.rawValue)", name: name,
                emails: arguments["emails"]?.arrayValue?.compactMap(\.stringValue) ?? [], phone: arguments["phone"]?.stringValue,
                company: arguments["company"]?.stringValue, notes: arguments["notes"]?.stringValue,
                tags: arguments["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
            )
            let twins = ((try? await book.contacts().contacts) ?? []).filter { $0.0.name.caseInsensitiveCompare(name) == .orderedSame }
            let created: DAVObject
            do {
                created = try await book.create(VCard.card(for: contact, stamp: now), uid: contact.uid)
            } catch let error as DAVError where error.kind == .changed {
                throw ToolFailure("That contact is already\(where_) (this same request reached the server before); I did not add it again.")
            } catch {
                throw Self.failure(error, account: account, writing: true)
            }
            var reply = "Added\(where_): \(Self.line(contact))"
            if !twins.isEmpty { reply += "\nYou already had a contact named \(twins[0].0.name) there; if they are the same person, delete one of them." }
            return ToolOutput(
                reply: reply, summary: "added a contact to the address book server",
                undo: ["on": "carddav", "op": "delete", "href": .string(created.url.absoluteString), "etag": created.etag.map(JSONValue.string) ?? .null, "title": .string(name)]
            )

        case .merge:
            let names = arguments["names"]?.arrayValue?.compactMap(\.stringValue) ?? []
            guard names.count == 2 else { throw ToolFailure("Which two contacts?") }
            let (kept, keepCard, keepObject) = try await one(Self.pin(arguments["keep"], query: names[0]), in: book, account: account)
            let (gone, otherCard, otherObject) = try await one(Self.pin(arguments["other"], query: names[1]), in: book, account: account)
            guard keepObject.url != otherObject.url else { throw ToolFailure("Those are the same contact (\(kept.name)); there's nothing to merge.") }
            let merged = try VCard.merging(otherCard, into: keepCard, stamp: now)
            let written: DAVObject
            do {
                written = try await book.replace(keepObject, with: SwitchboardDAV.ICalendar.serialize(merged))
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: "\(kept.name) was changed in your address book since I read it; I merged nothing. Ask me again.")
            }
            var undo: JSONValue = [
                "on": "carddav", "op": "put_back", "href": .string(written.url.absoluteString), "etag": written.etag.map(JSONValue.string) ?? .null,
                "data": .string(keepObject.data), "title": .string(kept.name),
            ]
            do {
                try await book.delete(otherObject)
            } catch {
                // The kept card has both; the other is still there (changed, or the server failed).
                let why = Self.failure(error, account: account, writing: true, changed: "it was changed since I read it").message
                return ToolOutput(
                    reply: "Added \(gone.name)'s details to \(Self.line(try VCard.contact(merged))), but I left \(gone.name)'s own card in your address book: \(why)",
                    summary: "merged a contact's details on the address book server, the other card left", undo: undo
                )
            }
            undo = [
                "on": "carddav", "op": "unmerge", "href": .string(written.url.absoluteString), "etag": written.etag.map(JSONValue.string) ?? .null,
                "data": .string(keepObject.data), "title": .string(kept.name),
                "other_href": .string(otherObject.url.absoluteString), "other_data": .string(otherObject.data), "other_title": .string(gone.name),
            ]
            return ToolOutput(
                reply: "Merged \(gone.name) into \(Self.line(try VCard.contact(merged))) in your address book; \(gone.name)'s card is deleted. Say \"undo\" to split them again.",
                summary: "merged two contacts on the address book server", undo: undo
            )

        case .update, .delete:
            let (contact, card, object) = try await one(arguments, in: book, account: account)
            if operation == .delete {
                do {
                    try await book.delete(object)
                } catch {
                    throw Self.failure(error, account: account, writing: true, changed: "\(contact.name) was changed in your address book since I read it; I left it as it is. Ask me again to delete it as it is now.")
                }
                return ToolOutput(
                    reply: "Deleted from your address book: \(Self.line(contact)). Say \"undo\" to bring it back.", summary: "deleted a contact on the address book server",
                    undo: ["on": "carddav", "op": "restore", "href": .string(object.url.absoluteString), "data": .string(object.data), "title": .string(contact.name)]
                )
            }
            var changed = contact
            if let name = arguments["name"]?.stringValue { changed.name = name }
            if let emails = arguments["emails"]?.arrayValue { changed.emails = emails.compactMap(\.stringValue) }
            if let phone = arguments["phone"]?.stringValue { changed.phone = phone }
            if let company = arguments["company"]?.stringValue { changed.company = company }
            if let notes = arguments["notes"]?.stringValue { changed.notes = notes }
            if let tags = arguments["tags"]?.arrayValue { changed.tags = tags.compactMap(\.stringValue) }
            let written: DAVObject
            do {
                written = try await book.replace(object, with: SwitchboardDAV.ICalendar.serialize(VCard.applying(changed, to: card, stamp: now)))
            } catch {
                throw Self.failure(error, account: account, writing: true, changed: "\(contact.name) was changed in your address book since I read it; I did not overwrite that change. Ask me again to update it as it is now.")
            }
            return ToolOutput(
                reply: "Updated\(where_): \(Self.line(changed))", summary: "updated a contact on the address book server",
                undo: [
                    "on": "carddav", "op": "put_back", "href": .string(written.url.absoluteString), "etag": written.etag.map(JSONValue.string) ?? .null,
                    "data": .string(object.data), "title": .string(contact.name),
                ]
            )
        }
    }

    func revert(_ payload: JSONValue, approval: Approval, context: RemoteCallContext) async throws -> String {
        let account = try await self.account(context.person)
        guard let book = account.addressBook.map({ CardDAVAddressBook(client: account.client(), url: $0) }),
              let href = payload["href"]?.stringValue, let url = URL(string: href), account.client().isOwnOrigin(url)
        else { throw ToolFailure("I can't undo that: it was made in an address book you are no longer connected to.") }
        let title = payload["title"]?.stringValue ?? "the contact"
        let changed = "\(title) was changed in your address book after I wrote it, so I left it as it is now."
        do {
            switch payload["op"]?.stringValue {
            case "delete":
                // Only the version this call wrote: a contact edited since is kept.
                guard let etag = payload["etag"]?.stringValue else {
                    throw ToolFailure("I can't tell whether \(title) changed since I added it, so I left it in your address book.")
                }
                do {
                    try await book.delete(DAVObject(url: url, etag: etag, data: ""))
                } catch let error as DAVError where error.kind == .notFound {
                    throw ToolFailure("\(title) is no longer in your address book; nothing to undo.")
                }
                return "removed \(title) from your address book"
            case "restore":
                guard let data = payload["data"]?.stringValue else { throw ToolFailure("I can't undo that: I kept no copy of the contact.") }
                do {
                    try await book.restore(url, data: data)
                } catch let error as DAVError where error.kind == .changed {
                    throw ToolFailure("\(title) is back in your address book already (put there by someone else); I left it.")
                }
                return "put \(title) back in your address book"
            case "unmerge":
                guard let data = payload["data"]?.stringValue, let otherData = payload["other_data"]?.stringValue,
                      let otherHref = payload["other_href"]?.stringValue, let otherURL = URL(string: otherHref), account.client().isOwnOrigin(otherURL)
                else { throw ToolFailure("I can't undo that: I kept no copy of the contacts.") }
                guard let etag = payload["etag"]?.stringValue else {
                    throw ToolFailure("I can't tell whether \(title) changed since I merged it, so I left it as it is now.")
                }
                _ = try await book.replace(DAVObject(url: url, etag: etag, data: ""), with: data)
                let other = payload["other_title"]?.stringValue ?? "the other contact"
                do {
                    try await book.restore(otherURL, data: otherData)
                } catch let error as DAVError where error.kind == .changed {
                    return "put \(title)'s earlier details back (\(other)'s card is there again already)"
                }
                return "split \(title) and \(other) again"
            case "put_back":
                guard let data = payload["data"]?.stringValue else { throw ToolFailure("I can't undo that: I kept no copy of the contact.") }
                // Only over the version this update wrote: a change made since is kept.
                guard let etag = payload["etag"]?.stringValue else { throw ToolFailure("I can't tell whether \(title) changed since I updated it, so I left it as it is now.") }
                _ = try await book.replace(DAVObject(url: url, etag: etag, data: ""), with: data)
                return "put \(title)'s earlier details back"
            default:
                throw ToolFailure("I can't undo that.")
            }
        } catch let failure as ToolFailure {
            throw failure
        } catch {
            throw Self.failure(error, account: account, writing: true, changed: changed)
        }
    }

    // MARK: Helpers

    private func account(_ person: PersonID) async throws -> DAVAccount {
        let account: DAVAccount?
        do {
            account = try await accounts.account(for: person)
        } catch is SealingError {
            throw ToolFailure("I can't open your address book account (it was sealed with another key); connect it again.")
        }
        guard let account else { throw ToolFailure("Your address book account is no longer connected; nothing was changed.") }
        return account
    }

    /// The card an update or a delete acts on: the one pinned when the call was prepared (only
    /// while it is still that version), else the one card the name matches.
    private func one(_ arguments: JSONValue, in book: CardDAVAddressBook, account: DAVAccount) async throws -> (ContactCard, ICalComponent, DAVObject) {
        let query = arguments["query"]?.stringValue ?? ""
        if let href = arguments["href"]?.stringValue, let url = URL(string: href), account.client().isOwnOrigin(url) {
            let current: DAVResponse
            do {
                current = try await reading(account) { try await book.client.get(url) }
            } catch {
                throw ToolFailure("\(query) is no longer in your address book as I showed it; nothing was changed. Ask me again to see it as it is now.")
            }
            if let pinned = arguments["etag"]?.stringValue, let etag = current.etag, etag != pinned {
                throw ToolFailure("\(query) was changed in your address book since I showed it to you; I left it as it is. Ask me again to see it as it is now.")
            }
            let card = try SwitchboardDAV.ICalendar.parse(current.text)
            return (try VCard.contact(card), card, DAVObject(url: url, etag: current.etag ?? arguments["etag"]?.stringValue, data: current.text))
        }
        let matches = Self.matching(query, in: try await reading(account) { try await book.contacts() }.contacts)
        guard let first = matches.first else { throw ToolFailure("I found no contact matching \"\(query)\" in your address book.") }
        guard matches.count == 1 else {
            let lines = matches.prefix(10).map { "- " + Self.line($0.0) }
            throw ToolFailure("\(matches.count) contacts match \"\(query)\"; which one? Say more of the name.\n" + lines.joined(separator: "\n"))
        }
        return first
    }

    /// The arguments `one` reads for a card pinned in `prepare` (or found by name).
    static func pin(_ picked: JSONValue?, query: String) -> JSONValue {
        var arguments: [String: JSONValue] = ["query": .string(query)]
        if let href = picked?["href"] { arguments["href"] = href }
        if let etag = picked?["etag"] { arguments["etag"] = etag }
        return .object(arguments)
    }

    /// The contacts a query names: an exact name first, else any whose name or details contain it.
    static func matching(_ query: String, in contacts: [(ContactCard, ICalComponent, DAVObject)]) -> [(ContactCard, ICalComponent, DAVObject)] {
        func fold(_ text: String) -> String { text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil) }
        let wanted = fold(query.trimmingWhitespace())
        let exact = contacts.filter { fold($0.0.name) == wanted }
        if !exact.isEmpty { return exact }
        return contacts.filter { contact, _, _ in
            let card = contact
            let fields = [card.name, card.company ?? "", card.phone ?? "", card.notes ?? ""] + card.emails + card.tags
            return fields.contains { fold($0).contains(wanted) }
        }
    }

    /// A read, tried again after a short wait when the server was away or busy.
    private func reading<T: Sendable>(_ account: DAVAccount, _ body: () async throws -> T) async throws -> T {
        try await DAVReads.retrying(body) { Self.failure($0, account: account, writing: false) }
    }

    /// A DAV failure in words for the person; never a credential.
    static func failure(_ error: any Error, account: DAVAccount?, writing: Bool, changed: String? = nil) -> ToolFailure {
        if let failure = error as? ToolFailure { return failure }
        let host = account?.base.host ?? "your address book server"
        guard let error = error as? DAVError else {
            return ToolFailure("I couldn't read a card in your address book (\(host)): \(error). Nothing was changed.")
        }
        switch error.kind {
        case .unauthorized:
            return ToolFailure("Your address book server (\(host)) refused the login for \(account?.credentials.user ?? "you"): connect your account again (the password or app token may have changed). Nothing was changed.")
        case .forbidden:
            return ToolFailure("Your address book server (\(host)) does not let me \(writing ? "change" : "read") your contacts.")
        case .changed:
            return ToolFailure(changed ?? "That was changed in your address book meanwhile; I did not overwrite it.")
        case .notFound:
            return ToolFailure(writing ? "That contact is no longer in your address book." : "Your address book is no longer on \(host); connect your account again.")
        case .full:
            return ToolFailure("Your address book server (\(host)) is out of space; nothing was changed.")
        case .unreachable:
            return ToolFailure("Your address book server (\(host)) is not answering right now; nothing was changed. Try again in a while.")
        case .timeout:
            return ToolFailure(writing
                ? "Your address book server (\(host)) did not answer in time, so I can't tell whether the change was made: check your contacts before asking again."
                : "Your address book server (\(host)) is not answering right now; try again in a while.")
        case .status where (error.status ?? 0) >= 500:
            return ToolFailure("Your address book server (\(host)) has a problem right now (it answered \(error.status ?? 500)); nothing was changed. Try again in a while.")
        case .notDAV, .elsewhere, .tooLarge, .malformed, .status:
            return ToolFailure("Your address book server (\(host)) gave an answer I can't use (\(error.detail)).")
        }
    }

    /// " in your Contacts address book"; " in your address book" when its name says no more
    /// (Xandikos calls its own "addressbook").
    static func place(_ account: DAVAccount) -> String {
        let name = (account.addressBookName ?? "").trimmingWhitespace()
        let plain = name.lowercased().filter(\.isLetter)
        return plain.isEmpty || plain.contains("addressbook") ? " in your address book" : " in your \(name) address book"
    }

    /// "Bob Smith · bob@example.org · 555 0101 · Acme #friend".
    static func line(_ contact: ContactCard) -> String {
        var parts = [contact.name]
        if !contact.emails.isEmpty { parts.append(contact.emails.joined(separator: ", ")) }
        if let phone = contact.phone { parts.append(phone) }
        if let company = contact.company { parts.append(company) }
        if !contact.tags.isEmpty { parts.append("#" + contact.tags.joined(separator: " #")) }
        return parts.joined(separator: " · ")
    }
}
