// A person's account on their calendar server, as kept (sealed) in the store: where it is, the
// login, the calendar chosen for new events and the address book for contacts.

public import Foundation
public import SwitchboardModel
import NIOCore

/// A linked DAV account. Its encoded form holds the password: it is only ever stored sealed.
public struct DAVAccount: Sendable, Hashable {
    /// The URL the person gave (the server's root, a principal or a calendar).
    public var base: URL
    /// The login.
    public var credentials: DAVCredentials
    /// The calendar new events go to, and the one listed.
    public var calendar: URL
    /// Its name on the server ("Work").
    public var calendarName: String
    /// The address book contacts are kept in, when the server has one (CardDAV).
    public var addressBook: URL?
    /// Its name on the server ("Contacts").
    public var addressBookName: String?

    public init(base: URL, credentials: DAVCredentials, calendar: URL, calendarName: String, addressBook: URL? = nil, addressBookName: String? = nil) {
        self.base = base
        self.credentials = credentials
        self.calendar = calendar
        self.calendarName = calendarName
        self.addressBook = addressBook
        self.addressBookName = addressBookName
    }

    /// A client for the account.
    public func client(timeout: Int64 = 15) -> DAVClient {
        DAVClient(base: base, credentials: credentials, timeout: .seconds(timeout))
    }

    private struct Stored: Codable {
        var base: String
        var user: String
        var password: String
        var calendar: String
        var calendarName: String
        // Absent in accounts linked before contacts were kept on the server.
        var addressBook: String?
        var addressBookName: String?
    }

    /// The JSON that is sealed and stored.
    public func encoded() -> String {
        let stored = Stored(base: base.absoluteString, user: credentials.user, password: credentials.password.revealed, calendar: calendar.absoluteString, calendarName: calendarName,
            addressBook: addressBook?.absoluteString, addressBookName: addressBookName
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(stored)) ?? Data(), as: UTF8.self)
    }

    /// Reads what `encoded` wrote.
    public static func decode(_ text: String) throws -> DAVAccount {
        let stored = try JSONDecoder().decode(Stored.self, from: Data(text.utf8))
        guard let base = URL(string: stored.base), let calendar = URL(string: stored.calendar) else {
            throw DAVError(.malformed, "the stored calendar account has a bad URL")
        }
        return DAVAccount(
            base: base, credentials: DAVCredentials(user: stored.user, password: Secret(stored.password)), calendar: calendar, calendarName: stored.calendarName,
            addressBook: stored.addressBook.flatMap(URL.init(string:)), addressBookName: stored.addressBookName
        )
    }

    /// Discovers an account from what a person gives, and picks its calendar: the one named
    /// (case-insensitively), else the first that takes events; and its address book, the one
    /// named or else the first, when the server has any.
    ///
    /// - Throws: `DAVError`; a `.notFound` one names the calendars there are when the named one
    ///   is not among them.
    public static func connect(base: URL, credentials: DAVCredentials, calendarNamed name: String? = nil, addressBookNamed bookName: String? = nil) async throws -> DAVAccount {
        let client = DAVClient(base: base, credentials: credentials)
        let layout = try await DAVDiscovery.discover(client)
        let calendars = layout.calendars.filter(\.takesEvents)
        let chosen: DAVCollection?
        if let name {
            chosen = calendars.first { Self.name(of: $0).caseInsensitiveCompare(name) == .orderedSame || $0.url.lastPathComponent.caseInsensitiveCompare(name) == .orderedSame }
        } else {
            chosen = calendars.first
        }
        guard let chosen else {
            let names = calendars.map(Self.name(of:))
            if let name {
                throw DAVError(.notFound, "there is no calendar called \(name) on \(base.host ?? "the server")" + (names.isEmpty ? "" : "; there are: " + names.joined(separator: ", ")))
            }
            throw DAVError(.notFound, "\(base.host ?? "the server") has no calendar for events for \(credentials.user)")
        }
        let books = layout.addressBooks
        let book = bookName.map { wanted in
            books.first { Self.name(of: $0).caseInsensitiveCompare(wanted) == .orderedSame || $0.url.lastPathComponent.caseInsensitiveCompare(wanted) == .orderedSame }
        } ?? books.first
        if let bookName, book == nil {
            throw DAVError(.notFound, "there is no address book called \(bookName) on \(base.host ?? "the server")" + (books.isEmpty ? "" : "; there are: " + books.map(Self.name(of:)).joined(separator: ", ")))
        }
        return DAVAccount(base: base, credentials: credentials, calendar: chosen.url, calendarName: Self.name(of: chosen), addressBook: book?.url, addressBookName: book.map(Self.name(of:)))
    }

    /// What people call a calendar: its display name, without the path some servers give as one
    /// (Radicale says "sam/work" for a calendar made without a name), else its last path segment.
    static func name(of calendar: DAVCollection) -> String {
        let shown = calendar.displayName.trimmingCharacters(in: .whitespaces)
        let path = calendar.url.path(percentEncoded: false).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return shown.isEmpty || shown == path ? calendar.url.lastPathComponent : shown
    }
}
