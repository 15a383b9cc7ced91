package import SwitchboardEngine
package import SwitchboardIntent
package import SwitchboardTools

/// The tools this build ships, and the intent engine trained on their examples.
package enum BuiltinTools {
    package static var all: [any Tool] { all(dav: nil) }

    /// The tools, with the calendar and contacts ones working on each person's own CalDAV and
    /// CardDAV server where they linked one (`dav.enabled`). The descriptors are the same either way.
    package static func all(dav: DAVAccounts?) -> [any Tool] {
        let calendar = dav.map { CalDAVTools.all(accounts: $0) } ?? CalendarTools.all
        let contacts = dav.map { CardDAVTools.all(accounts: $0) } ?? ContactsTools.all
        let tools: [any Tool] = NotesTools.all + TasksTools.all + RemindersTools.all + calendar + contacts
            + UtilityTools.all + SendingTools.all + IdentityTools.all
        return tools + PreferencesTools.all(tools: tools.map(\.descriptor))
    }

    /// Trained once per process: the examples never change while it runs.
    package static let intentEngine = IntentEngine(
        tools: all.map(\.descriptor),
        extraIntents: ["help": ToolExamples.examples("help"), "history": ToolExamples.examples("history"), "undo": ToolExamples.examples("undo")]
    )
}
