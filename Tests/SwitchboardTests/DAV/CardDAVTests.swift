// Contacts on a person's own CardDAV address book: vCards read and written back without losing
// what other clients put in them, against Radicale and Xandikos, through the built binary as
// a newcomer uses it (`dav connect`, then `chat`), with what the server holds read back by an
// independent client (PyPI vobject, scripts/test-servers/card_check.py).

import Foundation
import SwitchboardDAV
import SwitchboardModel
import Testing

extension DAVServer {
    static let cardChecker = packageRoot + "/scripts/test-servers/card_check.py"

    /// The address book to use: Xandikos makes one (`--defaults`); on Radicale the client makes it.
    func addressBook(_ client: DAVClient) async throws -> URL {
        let layout = try await DAVDiscovery.discover(client)
        if let found = layout.addressBooks.first { return found.url }
        guard let home = layout.addressBookHome ?? layout.principal else { throw HarnessError(description: "no address book home on \(kind)") }
        let url = home.appendingPathComponent("contacts/")
        try await client.makeAddressBook(url, name: "Contacts")
        return url
    }

    /// What the independent client reads from (or does to) an address book, off the pool.
    func cards(_ book: URL, _ arguments: String...) async throws -> [JSONValue] {
        try await OffPool.run { [self] in
            let python = try runCommand("/bin/bash", [Self.script, "python"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let out = try runCommand(python, [Self.cardChecker, book.absoluteString, user, password] + arguments)
            return try out.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        }
    }
}

@Suite("vCard: what phones write, read and changed in place")
struct VCardTests {
    static let phone = """
        BEGIN:VCARD\r
        VERSION:4.0\r
        UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r
        FN:Ana María López\r
        N:López;Ana;María;;\r
        item1.EMAIL;TYPE=work:ana@example.org\r
        item1.X-ABLabel:Office\r
        TEL;VALUE=uri;TYPE="voice,cell":tel:+34-600-000-000\r
        ORG:Acme\\, Inc.;Research\r
        BDAY:19850412\r
        PHOTO:data:image/png;base64,iVBORw0KGgo=\r
        X-SOCIAL:@ana\r
        END:VCARD\r

        """

    @Test("A phone's vCard 4.0 is read: groups, tel: URIs, escaped structured values")
    func read() throws {
        let contact = try VCard.contact(try ICalendar.parse(Self.phone))
        #expect(contact.name == "Ana María López" && contact.emails == ["ana@example.org"] && contact.phone == "+34-600-000-000")
        #expect(contact.company == "Acme, Inc." && contact.uid == "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1")
    }

    @Test("A change sets only the changed fields and keeps everything else as written")
    func changeInPlace() throws {
        let card = try ICalendar.parse(Self.phone)
        var contact = try VCard.contact(card)
        contact.phone = "+34 600 111 222"
        contact.company = "Globex"
        contact.tags = ["family", "madrid, spain"]
        let changed = VCard.applying(contact, to: card, stamp: Date(timeIntervalSince1970: 1_796_720_400))
        let text = ICalendar.serialize(changed)
        #expect(text.contains("TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+34-600-111-222\r\n"), "\(text)")
        #expect(text.contains("ORG:Globex;Research\r\n") && text.contains("CATEGORIES:family,madrid\\, spain\r\n") && text.contains("REV:20261208T090000Z\r\n"), "\(text)")
        for kept in ["item1.EMAIL;TYPE=work:ana@example.org", "item1.X-ABLABEL:Office", "BDAY:19850412", "PHOTO:data:image/png;base64,iVBORw0KGgo=", "X-SOCIAL:@ana", "N:López;Ana;María;;", "FN:Ana María López"] {
            #expect(text.contains(kept + "\r\n"), "lost \(kept):\n\(text)")
        }
        let again = try VCard.contact(try ICalendar.parse(text))
        #expect(again.phone == "+34-600-111-222" && again.company == "Globex" && again.tags == ["family", "madrid, spain"])
        // A rename follows into N where N was the name's; a removed field goes.
        var renamed = again
        renamed.name = "Ana López"
        renamed.company = nil
        let second = ICalendar.serialize(VCard.applying(renamed, to: try ICalendar.parse(text), stamp: Date()))
        #expect(second.contains("FN:Ana López\r\n") && second.contains("N:López;Ana;;;\r\n") && !second.contains("ORG:"), "\(second)")
    }

    @Test("Merging keeps the first card and adds what only the second has, its groups kept apart")
    func merging() throws {
        let keep = try ICalendar.parse("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:1\r\nFN:Bob Smith\r\nN:Smith;Bob;;;\r\nitem1.EMAIL:bob@example.org\r\nitem1.X-ABLabel:Home\r\nTEL:555 0101\r\nCATEGORIES:golf\r\nEND:VCARD\r\n")
        let other = try ICalendar.parse("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:2\r\nFN:Robert Smith\r\nitem1.EMAIL:robert@example.org\r\nitem1.X-ABLabel:Work\r\nEMAIL:BOB@example.org\r\nTEL;TYPE=CELL:555 0199\r\nBDAY:1970-01-02\r\nORG:Acme\r\nNOTE:met in Lisbon\r\nCATEGORIES:Golf,work\r\nEND:VCARD\r\n")
        let merged = try VCard.merging(other, into: keep, stamp: Date())
        let contact = try VCard.contact(merged)
        #expect(contact.name == "Bob Smith" && contact.uid == "1" && contact.emails == ["bob@example.org", "robert@example.org"], "\(contact)")
        #expect(contact.phone == "555 0101" && contact.company == "Acme" && contact.notes == "met in Lisbon" && contact.tags == ["golf", "work"], "\(contact)")
        let text = ICalendar.serialize(merged)
        for line in ["item1.X-ABLABEL:Home", "item1-merged.EMAIL:robert@example.org", "item1-merged.X-ABLABEL:Work", "TEL;TYPE=CELL:555 0199", "BDAY:1970-01-02"] {
            #expect(text.contains(line + "\r\n"), "\(line) missing:\n\(text)")
        }
        #expect(!text.contains("Robert Smith") && !text.contains("UID:2"), "\(text)")
    }

    @Test("A new card is vCard 3.0 with the name, N, UID and the fields given; a card without any name is refused")
    func newCard() throws {
        let card = VCard.card(for: ContactCard(uid: "switchboard-1", name: "Bob Smith", emails: ["bob@example.org"], phone: "555 0101"), stamp: Date())
        let text = ICalendar.serialize(card)
        for line in ["VERSION:3.0", "UID:switchboard-1", "FN:Bob Smith", "N:Smith;Bob;;;", "EMAIL:bob@example.org", "TEL:555 0101"] {
            #expect(text.contains(line + "\r\n"), "\(text)")
        }
        #expect(throws: ICalError.self) { _ = try VCard.contact(try ICalendar.parse("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:x\r\nEND:VCARD\r\n")) }
        #expect(throws: ICalError.self) { _ = try VCard.contact(try ICalendar.parse("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")) }
    }
}

@Suite("CardDAV against Radicale and Xandikos", .serialized)
struct CardDAVTests {
    @Test("Cards are listed with their ETags, a write over a changed card is refused, and a phone's card keeps its fields", arguments: DAVServer.Kind.allCases)
    func addressBook(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        let url = try await server.addressBook(client)
        let book = CardDAVAddressBook(client: client, url: url)
        #expect(try await DAVDiscovery.discover(client).addressBooks.contains { $0.url == url })
        _ = try await server.cards(url, "phone-card", "phone-carol")
        let found = try await book.contacts()
        #expect(found.unreadable.isEmpty && found.contacts.map(\.0.name) == ["Carol Danvers"], "\(found.unreadable)")
        guard let (contact, card, object) = found.contacts.first else { return }
        #expect(contact.emails == ["carol@example.org"] && contact.phone == "+1 555 0100")

        // Changed on the phone meanwhile: the stale write is refused.
        _ = try await server.cards(url, "retitle", "phone-carol", "met at the conference")
        var changed = contact
        changed.phone = "+1 555 0199"
        await #expect(throws: DAVError.self) { _ = try await book.replace(object, with: ICalendar.serialize(VCard.applying(changed, to: card, stamp: Date()))) }
        // Read again, the change keeps the phone's note and every field it had.
        guard let (again, fresh, current) = try await book.contacts().contacts.first else { return }
        #expect(again.notes == "met at the conference")
        changed = again
        changed.phone = "+1 555 0199"
        _ = try await book.replace(current, with: ICalendar.serialize(VCard.applying(changed, to: fresh, stamp: Date())))
        let held = try await server.cards(url, "list")
        #expect(held.count == 1)
        let carol = held.first
        #expect(carol?["tels"] == ["+1 555 0199"] && carol?["note"]?.stringValue == "met at the conference", "\(held)")
        #expect(carol?["bday"]?.stringValue == "1980-03-14" && carol?["adr_city"]?.stringValue == "Springfield" && carol?["photo"]?.boolValue == true, "\(held)")
        #expect(carol?["groups"] == ["item1.EMAIL", "item1.X-ABLABEL"] && carol?["x"]?.arrayValue?.contains("X-PHONETIC-FIRST-NAME") == true, "\(held)")

        // A new card under a name already taken is refused, not an overwrite.
        let bob = VCard.card(for: ContactCard(uid: "switchboard-bob", name: "Bob Smith"), stamp: Date())
        _ = try await book.create(bob, uid: "switchboard-bob")
        await #expect(throws: DAVError.self) { _ = try await book.create(bob, uid: "switchboard-bob") }
        #expect(try await server.cards(url, "list").count == 2)
    }
}

@Suite("CardDAV through chat: a person's own address book", .serialized)
struct CardDAVChatTests {
    @Test("Linked with `dav connect`, contacts added, found, changed and deleted by chat are on the server, undone there, and a phone's fields survive", arguments: DAVServer.Kind.allCases)
    func chatOnTheServer(_ kind: DAVServer.Kind) async throws {
        let server = try await DAVServer.start(kind)
        let client = DAVClient(base: server.base, credentials: server.credentials)
        _ = try await server.calendar(client)
        let book = try await server.addressBook(client)
        _ = try await server.cards(book, "phone-card", "phone-carol")
        let data = try TemporaryDirectory()
        let secrets = try TemporaryDirectory()
        let passwordFile = secrets.path + "/token"
        try (server.password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let environment = CalDAVChatTests.environment(data)

        // A password in the address, or plain http to another machine, is refused before any request.
        let inURL = try await OffPool.binary(["dav", "connect", "--person", "alice", "http://sam:hunter2@127.0.0.1:\(server.port)/", "--user", server.user, "--password-file", passwordFile, "--data-dir", data.path])
        #expect(inURL.status != 0 && inURL.stderr.contains("not in the address") && !(inURL.stdout + inURL.stderr).contains("hunter2"), "\(inURL.stderr)")
        let plain = try await OffPool.binary(["dav", "connect", "--person", "alice", "http://dav.example.org/", "--user", server.user, "--password-file", passwordFile, "--data-dir", data.path])
        #expect(plain.status != 0 && plain.stderr.contains("plain http"), "\(plain.stderr)")
        let missing = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", passwordFile, "--address-book", "Work contacts", "--data-dir", data.path])
        #expect(missing.status != 0 && missing.stderr.contains("no address book called Work contacts"), "\(missing.stderr)")
        let linked = try await OffPool.binary(["dav", "connect", "--person", "alice", server.base.absoluteString, "--user", server.user, "--password-file", passwordFile, "--data-dir", data.path])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(linked.stdout.contains("Linked the address book") && linked.stdout.contains(book.absoluteString), "\(linked.stdout)")

        // Added by chat: a card any client reads.
        let added = try await OffPool.chat("alice", ["save Bob Smith's number 555 0101 to my contacts"], dataDir: data.path, environment: environment)
        #expect(added.stdout.contains("Added in your") && added.stdout.contains("Bob Smith · 555 0101"), "\(added.stdout)")
        var held = try await server.cards(book, "list")
        let bob = held.first { $0["fn"]?.stringValue == "Bob Smith" }
        #expect(bob?["tels"] == ["555 0101"] && bob?["version"]?.stringValue == "3.0", "\(held)")

        // Changed by chat: only the phone changes; the phone's photo, birthday, address, grouped
        // email and X- fields stay.
        let updated = try await OffPool.chat("alice", ["change Carol's phone number to 555 0199"], dataDir: data.path, environment: environment)
        #expect(updated.stdout.contains("Updated in your") && updated.stdout.contains("555 0199"), "\(updated.stdout)")
        held = try await server.cards(book, "list")
        var carol = held.first { $0["uid"]?.stringValue == "phone-carol" }
        #expect(carol?["tels"] == ["555 0199"] && carol?["emails"] == ["carol@example.org"], "\(held)")
        #expect(carol?["bday"]?.stringValue == "1980-03-14" && carol?["adr_city"]?.stringValue == "Springfield" && carol?["photo"]?.boolValue == true, "\(held)")
        #expect(carol?["groups"] == ["item1.EMAIL", "item1.X-ABLABEL"] && carol?["x"]?.arrayValue?.contains("X-PHONETIC-FIRST-NAME") == true, "\(held)")
        let undone = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: environment)
        #expect(undone.stdout.contains("Undone: put"), "\(undone.stdout)")
        carol = try await server.cards(book, "list").first { $0["uid"]?.stringValue == "phone-carol" }
        #expect(carol?["tels"] == ["+1 555 0100"], "\(String(describing: carol))")

        // Found by chat, from the server.
        let found = try await OffPool.chat("alice", ["what's Carol's email address"], dataDir: data.path, environment: environment)
        #expect(found.stdout.contains("Carol Danvers · carol@example.org"), "\(found.stdout)")

        // Merged by chat: one card with both phones and all of Carol's fields; undo splits them.
        let merged = try await OffPool.chat("alice", ["Carol Danvers and Bob Smith are the same person, combine them"], dataDir: data.path, environment: environment)
        #expect(merged.stdout.contains("Merged Bob Smith into Carol Danvers"), "\(merged.stdout)")
        held = try await server.cards(book, "list")
        #expect(held.count == 1 && held.first?["tels"] == ["+1 555 0100", "555 0101"] && held.first?["bday"]?.stringValue == "1980-03-14", "\(held)")
        let split = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: environment)
        #expect(split.stdout.contains("Undone: split Carol Danvers and Bob Smith again"), "\(split.stdout)")
        held = try await server.cards(book, "list")
        #expect(held.count == 2 && held.first { $0["uid"]?.stringValue == "phone-carol" }?["tels"] == ["+1 555 0100"], "\(held)")

        // Deleted by chat and put back by undo.
        let deleted = try await OffPool.chat("alice", ["remove Bob Smith from my contacts"], dataDir: data.path, environment: environment)
        #expect(deleted.stdout.contains("Deleted from your address book: Bob Smith"), "\(deleted.stdout)")
        #expect(try await server.cards(book, "list").allSatisfy { $0["fn"]?.stringValue != "Bob Smith" })
        let back = try await OffPool.chat("alice", ["undo"], dataDir: data.path, environment: environment)
        #expect(back.stdout.contains("Undone: put Bob Smith back"), "\(back.stdout)")
        #expect(try await server.cards(book, "list").contains { $0["fn"]?.stringValue == "Bob Smith" })

        // Dana linked nothing: her contacts are the built-in ones.
        let dana = try await OffPool.chat("dana", ["save Eve Jones's number 555 0123 to my contacts", "add contact Evie Jones, evie@example.org", "merge Eve Jones and Evie Jones"], dataDir: data.path, environment: environment)
        #expect(dana.stdout.contains("Added contact"), "\(dana.stdout)")
        #expect(dana.stdout.contains("Merged Evie Jones (2) into 1: Eve Jones · evie@example.org · 555 0123"), "\(dana.stdout)")
        #expect(try await server.cards(book, "list").count == 2)
        for output in [linked, added, updated, undone, found, deleted, back] {
            #expect(!(output.stdout + output.stderr).contains(server.password))
        }
    }
}
