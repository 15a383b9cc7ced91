package import SwitchboardEngine
package import SwitchboardIntent
import SwitchboardTools

/// The tools this build ships, and the intent engine trained on their examples.
package enum BuiltinTools {
    package static var all: [any Tool] {
        let tools: [any Tool] = NotesTools.all + TasksTools.all + RemindersTools.all + CalendarTools.all + ContactsTools.all
            + UtilityTools.all + SendingTools.all + IdentityTools.all
        return tools + PreferencesTools.all(tools: tools.map(\.descriptor))
    }

    /// Trained once per process: the examples never change while it runs.
    package static let intentEngine = IntentEngine(
        tools: all.map(\.descriptor),
        extraIntents: ["help": ToolExamples.examples("help"), "history": ToolExamples.examples("history"), "undo": ToolExamples.examples("undo")]
    )
}
