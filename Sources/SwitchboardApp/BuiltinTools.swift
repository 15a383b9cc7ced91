import SwitchboardEngine
import SwitchboardTools

/// The tools this build ships.
enum BuiltinTools {
    static var all: [any Tool] { NotesTools.all }
}
