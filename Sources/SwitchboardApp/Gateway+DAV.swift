// `switchboard dav connect` / `disconnect`: linking a person's own calendar server. The
// password comes from a file (never an argument, so it is in no shell history or process
// list), is checked against the server, and is stored only sealed.

public import Foundation
import SwitchboardDAV
public import SwitchboardModel
import SwitchboardStorage
import SwitchboardTools

/// What `dav connect` linked.
public struct DAVConnection: Sendable {
    /// The person it was linked for (the profile their identities are linked to).
    public var person: PersonID
    /// The calendar new events go to.
    public var calendar: URL
    /// Its name.
    public var calendarName: String
    /// The address book contacts are kept in, when the server has one.
    public var addressBook: URL?
    /// Its name.
    public var addressBookName: String?
}

extension Gateway {
    /// Discovers the account, picks the calendar and stores the account sealed for the person.
    ///
    /// - Throws: `GatewayError` with the reason in words (the server refused the login, is not
    ///   a CalDAV server, has no such calendar, cannot be reached).
    public func davConnect(person identity: PersonID, url: String, user: String, password: Secret, calendar: String?, addressBook: String? = nil) async throws -> DAVConnection {
        guard let base = URL(string: url.trimmingWhitespace()), ["http", "https"].contains(base.scheme?.lowercased() ?? ""), base.host != nil else {
            throw GatewayError("\"\(url)\" is not a calendar server address; give one such as https://dav.example.org/.")
        }
        guard base.user == nil, base.password == nil else {
            throw GatewayError("Give the user name with --user and the password in a file (--password-file), not in the address.")
        }
        // The password goes with every request: never in clear over a network.
        let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(base.host?.lowercased() ?? "")
        guard base.scheme?.lowercased() == "https" || loopback else {
            throw GatewayError("\(url) is plain http, so the password would cross the network unencrypted; give the https address (plain http is taken only for a server on this machine).")
        }
        guard !user.isEmpty else { throw GatewayError("Give the user name of the calendar account (--user).") }
        guard !password.revealed.isEmpty else { throw GatewayError("The password file is empty.") }
        let account: DAVAccount
        do {
            account = try await DAVAccount.connect(base: base, credentials: DAVCredentials(user: user, password: password), calendarNamed: calendar, addressBookNamed: addressBook)
        } catch let error as DAVError {
            switch error.kind {
            case .unauthorized: throw GatewayError("\(base.host ?? url) refused the login for \(user); check the user name and the password (or app token).")
            case .unreachable, .timeout: throw GatewayError("\(base.host ?? url) is not answering (\(error.detail)).")
            default: throw GatewayError("Could not link the calendar: \(error.detail).")
            }
        }
        let person = try await store.read { try $0.linkedPerson(for: identity) } ?? identity
        try await DAVAccounts(store: store, sealer: try Self.sealer(configuration, exclusive: true)).save(account, for: person)
        return DAVConnection(person: person, calendar: account.calendar, calendarName: account.calendarName, addressBook: account.addressBook, addressBookName: account.addressBookName)
    }

    /// Forgets the person's calendar account; whether there was one.
    public func davDisconnect(person identity: PersonID) async throws -> Bool {
        let person = try await store.read { try $0.linkedPerson(for: identity) } ?? identity
        return try await DAVAccounts(store: store, sealer: try Self.sealer(configuration, exclusive: true)).remove(for: person)
    }
}
