import SwitchboardEngine
import SwitchboardTools

/// The tools this build ships.
enum BuiltinTools {
    static var all: [any Tool] {
        let tools: [any Tool] = NotesTools.all + TasksTools.all + RemindersTools.all + CalendarTools.all + ContactsTools.all
            + UtilityTools.all + SendingTools.all
        return tools + PreferencesTools.all(tools: tools.map(\.descriptor))
    }
}
