// A contact as a vCard (RFC 6350 4.0, RFC 2426 3.0): the few fields Switchboard reads and
// writes (name, emails, phone, company, notes, tags) over the card's whole property tree.
// A change sets only those properties and leaves every other one as the server held it (a
// phone's photo, birthday, addresses, X- properties, groups such as `item1.EMAIL`), so a
// contact edited here loses nothing that another client put there.

public import Foundation

/// The fields of a contact that Switchboard reads and changes.
public struct ContactCard: Sendable, Hashable {
    public var uid: String
    public var name: String
    public var emails: [String]
    public var phone: String?
    public var company: String?
    public var notes: String?
    public var tags: [String]

    public init(uid: String, name: String, emails: [String] = [], phone: String? = nil, company: String? = nil, notes: String? = nil, tags: [String] = []) {
        self.uid = uid
        self.name = name
        self.emails = emails
        self.phone = phone
        self.company = company
        self.notes = notes
        self.tags = tags
    }
}

public enum VCard {
    /// A property's name without its group: `ITEM1.EMAIL` → `EMAIL`.
    static func base(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }

    /// The contact a card holds.
    ///
    /// - Throws: `ICalError` when the object is not a vCard or has no name at all.
    public static func contact(_ card: ICalComponent) throws -> ContactCard {
        guard card.name == "VCARD" else { throw ICalError(description: "a \(card.name) where a VCARD was expected") }
        func all(_ name: String) -> [ICalProperty] { card.properties.filter { base($0.name) == name } }
        let formatted = all("FN").first?.text.trimmingCharacters(in: .whitespaces) ?? ""
        let name: String
        if !formatted.isEmpty {
            name = formatted
        } else if let structured = all("N").first {
            // family;given;additional;prefixes;suffixes → "given additional family".
            let parts = components(structured.value)
            name = [parts[safe: 3], parts[safe: 1], parts[safe: 2], parts[safe: 0], parts[safe: 4]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        } else {
            name = all("ORG").first.map { components($0.value).first ?? "" } ?? ""
        }
        guard !name.isEmpty else { throw ICalError(description: "a vCard with no name (FN, N or ORG)") }
        let uid = all("UID").first?.text ?? ""
        let emails = all("EMAIL").map { $0.text.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let phone = all("TEL").map { telephone($0.text) }.first { !$0.isEmpty }
        let company = all("ORG").first.flatMap { components($0.value).first }.flatMap { $0.isEmpty ? nil : $0 }
        let notes = all("NOTE").first.map(\.text).flatMap { $0.isEmpty ? nil : $0 }
        let tags = all("CATEGORIES").flatMap { components($0.value, separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return ContactCard(uid: uid, name: name, emails: emails, phone: phone, company: company, notes: notes, tags: tags)
    }

    /// A new card (vCard 3.0, which every CardDAV server and client reads) for a contact.
    public static func card(for contact: ContactCard, stamp: Date) -> ICalComponent {
        var card = ICalComponent("VCARD", properties: [ICalProperty("VERSION", "3.0"), ICalProperty("PRODID", "-//Switchboard//Switchboard//EN"), ICalProperty(text: "UID", contact.uid)])
        card = applying(contact, to: card, stamp: stamp)
        return card
    }

    /// The card with the contact's fields set and every other property left as it was. An
    /// email the card had keeps its parameters (TYPE=work) and group; a field set to nothing
    /// is removed.
    public static func applying(_ contact: ContactCard, to card: ICalComponent, stamp: Date) -> ICalComponent {
        var card = card
        let before = (try? Self.contact(card))
        func replace(_ name: String, with properties: [ICalProperty]) {
            guard let first = card.properties.firstIndex(where: { base($0.name) == name }) else {
                // New properties go before the first one a client would not expect them after.
                card.properties += properties
                return
            }
            card.properties.removeAll { base($0.name) == name }
            card.properties.insert(contentsOf: properties, at: min(first, card.properties.count))
        }
        func existing(_ name: String) -> [ICalProperty] { card.properties.filter { base($0.name) == name } }

        if before?.name != contact.name || existing("FN").isEmpty {
            replace("FN", with: [keeping(existing("FN").first, "FN", ICalendar.escapeText(contact.name))])
            // vCard 3.0 requires N; it follows the name when it was derived from it or absent.
            let structured = structuredName(contact.name)
            if let old = existing("N").first {
                if before.map({ old.value == structuredName($0.name) }) ?? true { replace("N", with: [keeping(old, "N", structured)]) }
            } else if existing("VERSION").first?.value != "4.0" {
                replace("N", with: [ICalProperty("N", structured)])
            }
        }
        if before?.emails != contact.emails {
            let old = existing("EMAIL")
            replace("EMAIL", with: contact.emails.map { email in
                old.first { $0.text.caseInsensitiveCompare(email) == .orderedSame } ?? ICalProperty(text: "EMAIL", email)
            })
        }
        if before?.phone != contact.phone {
            var phones = existing("TEL")
            if let phone = contact.phone {
                if phones.isEmpty {
                    phones = [ICalProperty(text: "TEL", phone)]
                } else if phones[0].value.lowercased().hasPrefix("tel:") {
                    // vCard 4.0's URI form has no spaces: "tel:+44-20-7946-0000".
                    phones[0] = keeping(phones[0], "TEL", "tel:" + phone.split(separator: " ").joined(separator: "-"))
                } else {
                    phones[0] = keeping(phones[0], "TEL", ICalendar.escapeText(phone))
                }
            } else {
                phones.removeFirst(min(1, phones.count))
            }
            replace("TEL", with: phones)
        }
        if before?.company != contact.company {
            let old = existing("ORG").first
            // ORG is company;unit;…: the units stay.
            var parts = old.map { splitRaw($0.value) } ?? []
            if let company = contact.company {
                if parts.isEmpty { parts = [""] }
                parts[0] = ICalendar.escapeText(company)
                replace("ORG", with: [keeping(old, "ORG", parts.joined(separator: ";"))])
            } else {
                replace("ORG", with: [])
            }
        }
        if before?.notes != contact.notes {
            replace("NOTE", with: contact.notes.map { [keeping(existing("NOTE").first, "NOTE", ICalendar.escapeText($0))] } ?? [])
        }
        if before?.tags != contact.tags {
            replace("CATEGORIES", with: contact.tags.isEmpty ? [] : [keeping(existing("CATEGORIES").first, "CATEGORIES", contact.tags.map(ICalendar.escapeText).joined(separator: ","))])
        }
        if before != contact || existing("REV").isEmpty {
            replace("REV", with: [ICalProperty("REV", CalendarEvent.utc(stamp))])
        }
        return card
    }

    /// Two cards of one person as one: `keep` with what only `other` has added. Its emails and
    /// phones not on `keep` (with their parameters), its tags, its note after `keep`'s, its
    /// company when `keep` has none, and every other property `keep` lacks (a birthday, an
    /// address, a photo, X- fields; groups renamed so they never join one of `keep`'s).
    public static func merging(_ other: ICalComponent, into keep: ICalComponent, stamp: Date) throws -> ICalComponent {
        let first = try contact(keep)
        let second = try contact(other)
        var card = keep
        let meta: Set<String> = ["VERSION", "PRODID", "UID", "REV", "FN", "N", "NOTE", "CATEGORIES", "ORG"]
        let present = Set(card.properties.map { base($0.name) })
        func group(_ property: ICalProperty) -> String? { property.name.lastIndex(of: ".").map { String(property.name[..<$0]) } }
        var copy = other.properties.map { property -> Bool in
            let name = base(property.name)
            if meta.contains(name) { return false }
            if name == "EMAIL" || name == "TEL" {
                let texts = card.properties.filter { base($0.name) == name }.map { $0.text.lowercased() }
                return !texts.contains(property.text.lowercased())
            }
            return !present.contains(name)
        }
        // A group travels together: the label of a copied email goes with it.
        let groups = Set(zip(other.properties, copy).compactMap { $1 ? group($0) : nil })
        for (index, property) in other.properties.enumerated() where !copy[index] {
            if let name = group(property), groups.contains(name), !meta.contains(base(property.name)) { copy[index] = true }
        }
        for (property, copied) in zip(other.properties, copy) where copied {
            var copied = property
            if let dot = property.name.lastIndex(of: ".") {
                copied.name = String(property.name[..<dot]) + "-merged" + property.name[dot...]
            }
            card.properties.append(copied)
        }
        var merged = try contact(card)
        merged.company = first.company ?? second.company
        merged.tags = first.tags + second.tags.filter { tag in !first.tags.contains { $0.caseInsensitiveCompare(tag) == .orderedSame } }
        merged.notes = [first.notes, second.notes].compactMap { $0 }.joined(separator: "\n").nilIfEmpty
        return applying(merged, to: card, stamp: stamp)
    }

    /// A property with a new value, keeping the old one's group and parameters.
    static func keeping(_ old: ICalProperty?, _ name: String, _ value: String) -> ICalProperty {
        guard let old else { return ICalProperty(name, value) }
        var property = old
        property.value = value
        return property
    }

    /// "Ana María López" → "López;Ana;María;;".
    static func structuredName(_ name: String) -> String {
        let words = name.split(separator: " ").map(String.init)
        guard words.count > 1 else { return ICalendar.escapeText(name) + ";;;;" }
        return [words.last!, words[0], words.dropFirst().dropLast().joined(separator: " "), "", ""].map(ICalendar.escapeText).joined(separator: ";")
    }

    /// The unescaped components of a structured value (`a;b\;c;d` → a, "b;c", d).
    static func components(_ value: String, separator: Character = ";") -> [String] {
        splitRaw(value, separator: separator).map(ICalendar.unescapeText)
    }

    /// A structured value split at unescaped separators, each part still escaped.
    static func splitRaw(_ value: String, separator: Character = ";") -> [String] {
        var parts: [String] = []
        var current = ""
        var escaping = false
        for character in value {
            if escaping {
                current.append(character)
                escaping = false
            } else if character == "\\" {
                current.append(character)
                escaping = true
            } else if character == separator {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    /// A TEL value as shown: vCard 4.0 writes it as a `tel:` URI.
    static func telephone(_ value: String) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        return trimmed.lowercased().hasPrefix("tel:") ? String(trimmed.dropFirst(4)) : trimmed
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
