public import Foundation
public import SwitchboardModel

/// How one instance shares the work with others on one database (PostgreSQL): its name in
/// leases, and how long a lease lasts unless renewed.
///
/// Without it (one SQLite instance) nothing is leased: that instance does all the work.
/// Leases compare times from each instance's own clock, so instances need synchronised clocks
/// (NTP); a skew shortens or lengthens a lease by as much.
public struct WorkSharing: Sendable, Equatable {
    /// This instance's name in leases: unique among the instances.
    public var instance: String
    /// How long a lease lasts: the longest another instance waits to take over dead work.
    public var lease: TimeInterval

    public init(instance: String, lease: TimeInterval) {
        self.instance = instance
        self.lease = lease
    }

    /// A name for this process: host, process id and a random part (a restarted process is a
    /// new instance, so it never mistakes its predecessor's leases for its own).
    public static func instanceName() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// The lease name of a conversation's inbound work (what `claimInbound` takes).
    public static func inboxLease(_ conversation: ConversationKey) -> String { "inbox:" + conversation.storageKey }
    /// The lease name of a conversation's outbound delivery.
    public static func outboxLease(_ conversation: ConversationKey) -> String { "outbox:" + conversation.storageKey }
}
