public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// The tasks tools: a to-do list with optional due times.
public enum TasksTools {
    /// All of them.
    public static var all: [any Tool] { [TasksAdd(), TasksList(), TasksComplete(), TasksReopen(), TasksDelete()] }

    static let kind = "task"

    static func line(_ task: ToolRecord, context: ToolContext) -> String {
        var line = "\(task.id): \(task.title)"
        if let due = task.at { line += " (due \(RecordTools.describe(due, zone: RecordTools.zone(context), now: context.now)))" }
        if task.status == "done" { line += " ✓" }
        return line
    }
}

/// `tasks.add`: adds a task, with an optional due time.
public struct TasksAdd: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "tasks.add",
        category: "tasks",
        summary: "Add a task to your to-do list",
        parameters: [
            "type": "object",
            "properties": [
                "title": ["type": "string", "minLength": 1, "maxLength": 500],
                "due": ["type": "string", "format": "date-time"],
            ],
            "required": ["title"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("tasks.add"),
        usage: ToolExamples.usage["tasks.add"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let title = try RecordTools.text(arguments, "title", required: "What's the task? Try: add task renew passport", maxLength: 500)
        var prepared: [String: JSONValue] = ["title": .string(title)]
        var preview = "Add a task: \(title)"
        if let due = try RecordTools.time(arguments["due"], name: "the due time") {
            prepared["due"] = .string(RecordTools.iso(due))
            preview += " (due \(RecordTools.describe(due, zone: RecordTools.zone(context), now: context.now)))"
        }
        return PreparedCall(arguments: .object(prepared), preview: preview, risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let title = call.arguments["title"]?.stringValue ?? ""
        let due = try RecordTools.time(call.arguments["due"], name: "the due time")
        let task = try context.records.add(
            ToolRecordDraft(kind: TasksTools.kind, owner: context.person, title: title, status: "open", at: due), at: context.now
        )
        return ToolOutput(
            reply: "Added task \(TasksTools.line(task, context: context))",
            summary: "added task \(task.id)", undo: RecordTools.undoCreate([task])
        )
    }
}

/// `tasks.list`: lists open tasks (or done ones, or all).
public struct TasksList: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "tasks.list",
        category: "tasks",
        summary: "List your tasks",
        parameters: [
            "type": "object",
            "properties": ["status": ["type": "string", "enum": ["open", "done", "all"]]],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("tasks.list"),
        usage: ToolExamples.usage["tasks.list"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let status = arguments["status"]?.stringValue ?? "open"
        guard ["open", "done", "all"].contains(status) else { throw ToolFailure("I can list open, done or all tasks.") }
        return PreparedCall(arguments: ["status": .string(status)], preview: "List your \(status == "all" ? "" : status + " ")tasks", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let status = call.arguments["status"]?.stringValue ?? "open"
        let tasks = try context.records.list(
            owner: context.person, kind: TasksTools.kind, statuses: status == "all" ? nil : [status], from: nil, to: nil
        )
        let adjective = status == "all" ? "" : "\(status) "
        guard !tasks.isEmpty else { return ToolOutput(reply: "You have no \(adjective)tasks.", summary: "0 tasks") }
        let header = tasks.count == 1 ? "You have 1 \(adjective)task:" : "You have \(tasks.count) \(adjective)tasks:"
        return ToolOutput(
            reply: ([header] + tasks.map { TasksTools.line($0, context: context) }).joined(separator: "\n"),
            summary: "\(tasks.count) tasks"
        )
    }
}

/// Sets a task's status: `tasks.complete` and `tasks.reopen`.
struct TaskStatusChange {
    let to: String
    let from: String
    let verb: String

    func prepare(_ arguments: JSONValue, context: ToolContext, risk: Risk) throws -> PreparedCall {
        let task = try RecordTools.one(arguments, kind: TasksTools.kind, noun: "task", statuses: [from], context: context)
        guard task.status == from else {
            throw ToolFailure(to == "done" ? "Task \(task.id) (\(task.title)) is already done." : "Task \(task.id) (\(task.title)) isn't done, so there's nothing to reopen.")
        }
        return PreparedCall(arguments: ["id": .int(task.id)], preview: "\(verb) task \(task.id): \(task.title)", risk: risk)
    }

    func execute(_ call: PreparedCall, context: ToolContext) throws -> ToolOutput {
        guard let id = call.arguments["id"]?.intValue,
              let task = try context.records.records(owner: context.person, kind: TasksTools.kind, ids: [id]).first
        else { throw ToolFailure("That task is gone.") }
        var changed = task
        changed.status = to
        changed.updatedAt = context.now
        try context.records.update(changed)
        let reply = to == "done" ? "Done: task \(task.id), \(task.title). ✓" : "Reopened task \(task.id): \(task.title)"
        return ToolOutput(reply: reply, summary: "\(to == "done" ? "completed" : "reopened") task \(id)", undo: RecordTools.undoRestore([task]))
    }
}

/// `tasks.complete`: marks a task done.
public struct TasksComplete: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "tasks.complete",
        category: "tasks",
        summary: "Mark a task done",
        parameters: RecordTools.pickOne,
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("tasks.complete"),
        usage: ToolExamples.usage["tasks.complete"]
    )

    private let change = TaskStatusChange(to: "done", from: "open", verb: "Complete")

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        try change.prepare(arguments, context: context, risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        try change.execute(call, context: context)
    }
}

/// `tasks.reopen`: marks a done task open again.
public struct TasksReopen: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "tasks.reopen",
        category: "tasks",
        summary: "Reopen a finished task",
        parameters: RecordTools.pickOne,
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("tasks.reopen"),
        usage: ToolExamples.usage["tasks.reopen"]
    )

    private let change = TaskStatusChange(to: "open", from: "done", verb: "Reopen")

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        try change.prepare(arguments, context: context, risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        try change.execute(call, context: context)
    }
}

/// `tasks.delete`: deletes one task (medium risk), or every done task (high risk: asks first).
public struct TasksDelete: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "tasks.delete",
        category: "tasks",
        summary: "Delete a task (or all finished ones, after you confirm)",
        parameters: [
            "type": "object",
            "properties": [
                "id": ["type": "integer"], "query": ["type": "string", "minLength": 1],
                "done": ["type": "boolean", "description": "delete every finished task"],
            ],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("tasks.delete"),
        usage: ToolExamples.usage["tasks.delete"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let tasks: [ToolRecord]
        if arguments["done"] == .bool(true) {
            tasks = try context.records.list(owner: context.person, kind: TasksTools.kind, statuses: ["done"], from: nil, to: nil)
            guard !tasks.isEmpty else { throw ToolFailure("You have no finished tasks, so there's nothing to delete.") }
        } else {
            tasks = [try RecordTools.one(arguments, kind: TasksTools.kind, noun: "task", context: context)]
        }
        let preview = tasks.count == 1
            ? "This will delete task \(tasks[0].id): \(tasks[0].title)"
            : (["This will delete \(tasks.count) finished tasks:"] + tasks.map { "• \($0.id): \($0.title)" }).joined(separator: "\n")
        return PreparedCall(arguments: ["ids": .array(tasks.map { .int($0.id) })], preview: preview, risk: tasks.count > 1 ? .high : descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let ids = call.arguments["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        let tasks = try context.records.records(owner: context.person, kind: TasksTools.kind, ids: ids)
        guard !tasks.isEmpty else { throw ToolFailure("Those tasks are already gone; nothing was deleted.") }
        let deleted = try context.records.delete(owner: context.person, kind: TasksTools.kind, ids: tasks.map(\.id))
        let reply = deleted == 1 ? "Deleted task \(tasks[0].id): \(tasks[0].title). Say \"undo\" to bring it back." : "Deleted \(deleted) tasks. Say \"undo\" to bring them back."
        return ToolOutput(reply: reply, summary: "deleted tasks \(tasks.map { String($0.id) }.joined(separator: ", "))", undo: RecordTools.undoRestore(tasks))
    }
}
