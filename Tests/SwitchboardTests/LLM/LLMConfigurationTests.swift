// The `llm.*` and `escalation.*` keys from YAML, the environment and secret files.

import Foundation
import SwitchboardApp
import SwitchboardEngine
import SwitchboardLLM
import SwitchboardModel
import Testing

@Suite("LLM configuration")
struct LLMConfigurationTests {
    @Test("A list of models in YAML, a key from a file, an override from the environment, budgets and escalation")
    func models() throws {
        let dir = try TemporaryDirectory()
        let keyFile = dir.path + "/anthropic.key"
        try "sk-ant-from-file\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let file = dir.path + "/switchboard.yaml"
        try """
            llm:
              models:
                - name: local
                  provider: openai
                  base_url: http://127.0.0.1:11434/v1
                  model: llama3.1:8b
                  tier: 1
                  context_window: 8192
                  cost_per_1k_input: 0
                  cost_per_1k_output: 0
                - name: claude
                  provider: anthropic
                  model: claude-sonnet-4-5
                  api_key_file: \(keyFile)
                  tier: 2
                  context_window: 200000
                  cost_per_1k_input: 0.003
                  cost_per_1k_output: 0.015
                  max_output_tokens: 2048
              budget:
                daily_tokens_per_person: 100000
                daily_cost: 5
            escalation:
              matrix_room: "!ops:example.org"
              email: Ops@Example.org
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let configuration = try AppConfiguration(file: file, environment: ["HOME": dir.path, "SWITCHBOARD_LLM_MODELS_0_API_KEY": "sk-local-env"])
        let models = configuration.llm.models
        #expect(models.map(\.name) == ["local", "claude"])
        #expect(models[0].apiKey?.revealed == "sk-local-env" && models[0].provider == .openai && models[0].tier == 1)
        #expect(models[1].apiKey?.revealed == "sk-ant-from-file" && models[1].baseURL == "https://api.anthropic.com")
        #expect(models[1].maxOutputTokens == 2048 && models[1].contextWindow == 200000)
        #expect(configuration.llm.budget == LLMBudget(tokensPerPerson: 100000, cost: 5))
        #expect(configuration.engine.escalation.map(\.conversation.channel.rawValue) == ["matrix", "email"])
        #expect(configuration.engine.escalation[1].recipient == PersonID("email:ops@example.org"))
        // The key never shows in a description of the configuration.
        #expect(!"\(models)".contains("sk-ant-from-file") && !"\(models)".contains("sk-local-env"))
    }

    @Test("Bad model entries are all reported, each with its key and environment variable")
    func badModels() throws {
        let dir = try TemporaryDirectory()
        let file = dir.path + "/switchboard.yaml"
        try """
            llm:
              models:
                - name: a
                  provider: gemini
                  base_url: ftp://example.org
                  model: x
                - name: a
                  provider: openai
                  base_url: http://localhost:8000/v1
                  context_window: 1024
                  max_output_tokens: 1000
                  colour: blue
            escalation:
              matrix_room: ops
            """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect {
            try AppConfiguration(file: file, environment: ["HOME": dir.path])
        } throws: { error in
            let text = "\(error)"
            return text.contains("llm.models.0.provider") && text.contains("gemini")
                && text.contains("llm.models.0.base_url") && text.contains("llm.models.1.name") && text.contains("another model is called")
                && text.contains("llm.models.1.model") && text.contains("llm.models.1.max_output_tokens")
                && text.contains("llm.models.1.colour") && text.contains("unknown key")
                && text.contains("escalation.matrix_room") && text.contains("SWITCHBOARD_LLM_MODELS_0_PROVIDER")
        }
    }
}
