// Scripted `switchboard chat` sessions with the built-in tools, in plain English, through the
// intent engine: what a person sees, and what undo brings back.

import Foundation
import Testing

@Suite("System: tools in plain English", .serialized)
struct ToolSessionTests {
    @Test("Tasks: add with a due date, list, complete, undo, reopen, delete, undo")
    func tasks() throws {
        let dir = try TemporaryDirectory()
        let session = try Binary.chat("sam", [
            "add task renew passport by Friday",
            "add a task: book the venue",
            "what's on my to-do list",
            "done with task 2",
            "undo",
            "mark task 2 as done",
            "reopen task 2",
            "delete task 1",
            "undo",
            "show all my tasks",
        ], dataDir: dir.path)
        #expect(session.status == 0, "stderr: \(session.stderr)")
        let out = session.stdout
        #expect(out.contains("Added task 1: renew passport (due Fri"), "\(out)")
        #expect(out.contains("Added task 2: book the venue"), "\(out)")
        #expect(out.contains("You have 2 open tasks:"), "\(out)")
        #expect(out.contains("Done: task 2, book the venue"), "\(out)")
        #expect(out.contains("Undone: put back task 2 as it was."), "\(out)")
        #expect(out.contains("Reopened task 2: book the venue"), "\(out)")
        #expect(out.contains("Deleted task 1: renew passport"), "\(out)")
        #expect(out.contains("Undone: restored task 1."), "\(out)")
        #expect(out.contains("You have 2 tasks:"), "\(out)")
    }

    @Test("A reminder set in one session fires after a restart, in the same conversation")
    func reminderAfterRestart() throws {
        let dir = try TemporaryDirectory()
        // Due a few seconds after the first session ends (it exits once it has answered).
        let first = try Binary.chat("sam", ["remind me in 5 seconds to stretch"], dataDir: dir.path)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        #expect(first.stdout.contains("OK, I'll remind you"), "\(first.stdout)")
        #expect(!first.stdout.contains("⏰"), "the first session lived long enough to fire it; the test proves nothing: \(first.stdout)")
        Thread.sleep(forTimeInterval: 6)
        let second = try Binary.chat("sam", ["what reminders do I have"], dataDir: dir.path)
        #expect(second.stdout.contains("⏰ Reminder: stretch"), "\(second.stdout)")
        #expect(second.stdout.contains("You have no upcoming reminders."), "\(second.stdout)")
        let third = try Binary.chat("sam", ["list my reminders"], dataDir: dir.path)
        #expect(!third.stdout.contains("⏰"), "a reminder fired twice: \(third.stdout)")
    }

    @Test("Calendar, contacts, time, arithmetic and preferences answer in plain English")
    func everydayTools() throws {
        let dir = try TemporaryDirectory()
        let session = try Binary.chat("sam", [
            "my timezone is Europe/Berlin",
            "schedule a meeting with Alice on 12 March at 3pm for an hour",
            "put dentist on 12 March at 3:30pm in the calendar",
            "yes",
            "add contact Alice Smith, alice@example.com",
            "log call with Alice: discussed renewal",
            "what's 17% of 240",
            "convert 5 miles to km",
            "what do you know about me",
            "remind me on 31 February to pay rent",
            "remind me 3/4 to call mum",
        ], dataDir: dir.path)
        #expect(session.status == 0, "stderr: \(session.stderr)")
        let out = session.stdout
        #expect(out.contains("Got it. Your time zone: Europe/Berlin"), "\(out)")
        #expect(out.contains("15:00–16:00 meeting with Alice"), "\(out)")
        // A booking over another event waits for a yes, naming it.
        #expect(out.contains("You already have") && out.contains("15:00–16:00 meeting with Alice (with Alice) then; book it anyway?"), "\(out)")
        #expect(out.contains("15:30–16:30 dentist") && !out.contains("Heads up"), "\(out)")
        #expect(out.contains("Added contact"), "\(out)")
        #expect(out.contains("Logged for Alice Smith: discussed renewal"), "\(out)")
        #expect(out.contains("= 40.8"), "\(out)")
        #expect(out.contains("5 km") == false && out.contains("8.04672 km"), "\(out)")
        #expect(out.contains("Here's what I know about you:"), "\(out)")
        #expect(out.contains("isn't a date that exists"), "\(out)")
        #expect(out.contains("could mean"), "\(out)")
    }

    @Test("Every other tool in one session: notes, reminders, calendar, contacts, sending, time, history, undo, preferences, help")
    func everyTool() throws {
        let dir = try TemporaryDirectory()
        // A day some weeks ahead, named as a person would ("12 March"), and as the replies show it.
        let day = Date().addingTimeInterval(45 * 86400)
        func format(_ pattern: String) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = .current
            formatter.dateFormat = pattern
            return formatter.string(from: day)
        }
        let said = format("d MMMM")
        let shown = format("EEE d MMM")
        let month = format("MMMM")
        let session = try Binary.chat("sam", [
            "add a note: the wifi password is on the fridge",
            "search my notes for wifi",
            "delete note 1",
            "undo",
            "remind me on \(said) at 9 to call Bob",
            "what reminders do I have",
            "cancel reminder 1",
            "undo",
            "meeting with Alice on \(said) at 3pm",
            "what's on my calendar on \(said)",
            "move event 2 to \(said) at 4pm",
            "export my calendar for \(month)",
            "cancel event 2",
            "add contact Bob Jones, bob@example.com",
            "add contact Robert Jones, rob@example.org",
            "update Bob's company to Initech",
            "find contact jones",
            "merge contacts 3 and 4",
            "delete contact Bob",
            "undo",
            "email bob@example.com that the report is ready",
            "post in !ops:example.org that the deploy is done",
            "what time is it in Tokyo",
            "keep answers short",
            "what did you do today",
            "undo 2",
            "what do you know about me",
            "call me Sam",
            "forget my preferences",
            "help",
        ], dataDir: dir.path)
        #expect(session.status == 0, "stderr: \(session.stderr)")
        let out = session.stdout
        for expected in [
            "Added note 1: the wifi password is on the fridge",
            "1 note contains \"wifi\"",
            "Undone: restored note 1",
            "OK, I'll remind you \(shown)", "call Bob (reminder 1)",
            "You have 1 upcoming reminder:",
            "Cancelled reminder 1:",
            "Undone: put back reminder 1 as it was.",
            "Added event 2: \(shown)", "15:00–16:00 meeting with Alice",
            "1 event from \(shown)",
            "Moved event 2: \(shown)", "16:00–17:00 meeting with Alice",
            "BEGIN:VCALENDAR", "SUMMARY:meeting with Alice",
            "Cancelled event 2:",
            "Added contact 3: Bob Jones · bob@example.com",
            "Updated 3: Bob Jones · bob@example.com · Initech",
            "3: Bob Jones", "4: Robert Jones",
            "Merged Robert Jones (4) into 3: Bob Jones · bob@example.com, rob@example.org · Initech",
            "Deleted contact 3: Bob Jones.",
            "Undone: restored contact 3.",
            "I can't send email: no email account is configured for me.",
            "I can't post to Matrix rooms: no Matrix account is configured for me.",
            "in Asia/Tokyo (UTC+09:00)",
            "Got it. Answers: short",
            "contacts.merge: merged contact 4 into 3",
            "…and", "more lines (you asked for short answers",
            "Undone: forgot reply_length.",
            "Got it. I call you: Sam",
            "I've forgotten your 1 preference",
            "Here's what I can do",
        ] {
            #expect(out.contains(expected), "missing \"\(expected)\" in:\n\(out)")
        }
        // Nothing was sent anywhere: no channel for it.
        let audit = try Binary.auditJSON(dataDir: dir.path)
        #expect(!audit.contains { ($0["tool"] as? String)?.hasPrefix("email.") == true && $0["status"] as? String == "executed" })
    }
}
