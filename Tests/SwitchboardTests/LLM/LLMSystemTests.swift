// The `switchboard` binary configured with a model, against a scripted provider: what an
// operator gets from `llm.models` in the configuration file.

import Foundation
import SwitchboardModel
import Testing

@Suite("System: the binary with a language model", .serialized)
struct LLMSystemTests {
    @Test("switchboard chat plans with the configured model, runs its calls through the gate, and never logs the key")
    func chatWithModel() async throws {
        let server = try await ScriptedModelServer(path: "/v1/chat/completions")
        defer { Task { await server.stop() } }
        server.enqueue(
            OpenAIScript.toolCalls([("call_1", "notes_add", #"{"text":"plumber comes Thursday"}"#)]),
            OpenAIScript.text("I've noted that the plumber comes Thursday.")
        )
        let dir = try TemporaryDirectory()
        let config = dir.path + "/switchboard.yaml"
        try """
            log:
              level: debug
            llm:
              models:
                - name: scripted
                  provider: openai
                  base_url: \(server.url)/v1
                  model: test-model
                  tier: 1
                  context_window: 16000
                  cost_per_1k_input: 0.1
                  cost_per_1k_output: 0.2
              intent_confidence: 1.0
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let secret = TestSecrets.register("sk-test-\(UUID().uuidString)")
        // The binary blocks a thread while it runs; keep it off the cooperative pool that the
        // scripted server answers on.
        let result = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    try Binary.chat("sam", ["could you remember for me that the plumber comes thursday"], dataDir: dir.path, environment: [
                        "SWITCHBOARD_CONFIG": config, "SWITCHBOARD_LLM_MODELS_0_API_KEY": secret,
                    ])
                })
            }
        }
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("I've noted that the plumber comes Thursday."), "\(result.stdout)")
        #expect(server.headers.first?["authorization"] == "Bearer \(secret)")
        #expect(!result.stderr.contains(secret) && !result.stdout.contains(secret), "the API key reached the output")
        #expect(result.stderr.contains("model call"), "each model call is logged: \(result.stderr)")
        let audit = try Binary.auditJSON(dataDir: dir.path)
        #expect(audit.contains { ($0["tool"] as? String) == "notes.add" && ($0["status"] as? String) == "executed" })
        #expect(!audit.contains { "\($0)".contains(secret) })
    }
}
