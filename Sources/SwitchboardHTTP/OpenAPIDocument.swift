// The OpenAPI 3.1 description of the API, served at /openapi.json. A test checks that it
// names exactly the routes the server has; keep the two together.

import Foundation

enum OpenAPIDocument {
    /// The document with this server's limits filled in.
    static func text(_ configuration: HTTPConfiguration) -> String {
        template
            .replacingOccurrences(of: "__MAX_WAIT__", with: String(Int(configuration.maxWaitSeconds)))
            // A code point is at most 4 bytes of UTF-8: this many always fit.
            .replacingOccurrences(of: "__MAX_TEXT__", with: String(max(1, configuration.maxTextBytes / 4)))
    }

    static let template = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Switchboard HTTP API",
            "version": "1.0.0",
            "description": "Send messages to the assistant from any system, and operate it: conversations, the audit trail, pending confirmations, tools, preferences, health and metrics. Every error is {\"error\": {\"code\", \"message\"}}."
          },
          "servers": [{"url": "http://127.0.0.1:8080"}],
          "security": [{"bearer": []}],
          "tags": [
            {"name": "messages", "description": "The generic channel (scope send)"},
            {"name": "operators", "description": "Reading (scope read) and deciding (scope admin)"},
            {"name": "monitoring", "description": "Health, readiness and metrics (open unless configured otherwise)"}
          ],
          "paths": {
            "/v1/messages": {
              "post": {
                "tags": ["messages"],
                "operationId": "sendMessage",
                "summary": "Send a message to the assistant",
                "description": "Stores the message durably, then answers 202 at once, or with ?wait=SECONDS answers 200 with the reply as soon as it is ready (202 if it was not ready in time). The same idempotency_key never runs anything twice: a repeat returns the first request's message and replies with Idempotent-Replayed: true; a different message under a used key is refused with 409. With callback_url, each reply is also POSTed there, signed (Switchboard-Signature: t=UNIX,v1=HEX of HMAC-SHA256(http.callback_secret, \"t.body\")), and retried with backoff until the receiver answers 2xx.",
                "security": [{"bearer": ["send"]}],
                "parameters": [{"$ref": "#/components/parameters/wait"}],
                "requestBody": {
                  "required": true,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageRequest"}}}
                },
                "responses": {
                  "200": {"description": "The message and its reply", "headers": {"Location": {"$ref": "#/components/headers/Location"}, "Correlation-ID": {"$ref": "#/components/headers/CorrelationID"}, "Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageWithReplies"}}}},
                  "202": {"description": "Stored; the reply is not ready yet", "headers": {"Location": {"$ref": "#/components/headers/Location"}, "Correlation-ID": {"$ref": "#/components/headers/CorrelationID"}, "Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageWithReplies"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "408": {"$ref": "#/components/responses/Timeout"},
                  "409": {"$ref": "#/components/responses/Conflict"},
                  "413": {"$ref": "#/components/responses/TooLarge"},
                  "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                  "422": {"$ref": "#/components/responses/Invalid"},
                  "503": {"$ref": "#/components/responses/Busy"}
                }
              }
            },
            "/v1/messages/{id}": {
              "get": {
                "tags": ["messages"],
                "operationId": "getMessage",
                "summary": "A message sent through the API, with its replies",
                "security": [{"bearer": ["send"]}, {"bearer": ["read"]}],
                "parameters": [
                  {"name": "id", "in": "path", "required": true, "description": "The message's idempotency key", "schema": {"type": "string", "minLength": 1}},
                  {"$ref": "#/components/parameters/wait"}
                ],
                "responses": {
                  "200": {"description": "The message and its replies", "headers": {"Location": {"$ref": "#/components/headers/Location"}, "Correlation-ID": {"$ref": "#/components/headers/CorrelationID"}, "Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageWithReplies"}}}},
                  "202": {"description": "No reply yet", "headers": {"Location": {"$ref": "#/components/headers/Location"}, "Correlation-ID": {"$ref": "#/components/headers/CorrelationID"}, "Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageWithReplies"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/v1/conversations/{id}": {
              "get": {
                "tags": ["operators"],
                "operationId": "getConversation",
                "summary": "A conversation's messages, both ways, oldest first",
                "security": [{"bearer": ["read"]}],
                "parameters": [
                  {"name": "id", "in": "path", "required": true, "description": "The conversation (for Matrix, the room id)", "schema": {"type": "string", "minLength": 1}},
                  {"name": "channel", "in": "query", "description": "The channel (default api)", "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
                  {"name": "limit", "in": "query", "description": "How many messages (default 50)", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                  {"name": "before", "in": "query", "description": "Only messages before this time (the next_before of the previous page)", "schema": {"type": "string", "format": "date-time"}}
                ],
                "responses": {
                  "200": {"description": "The messages", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Conversation"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/v1/audit": {
              "get": {
                "tags": ["operators"],
                "operationId": "getAudit",
                "summary": "The audit trail, filtered and paged, or exported as JSON lines",
                "security": [{"bearer": ["read"]}],
                "parameters": [
                  {"name": "person", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 512}},
                  {"name": "tool", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 128}},
                  {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/AuditStatus"}},
                  {"name": "channel", "in": "query", "description": "With conversation: its channel (default api)", "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
                  {"name": "conversation", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 512}},
                  {"name": "correlation_id", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 128}},
                  {"name": "since", "in": "query", "description": "Records at or after this time", "schema": {"type": "string", "format": "date-time"}},
                  {"name": "until", "in": "query", "description": "Records before this time", "schema": {"type": "string", "format": "date-time"}},
                  {"name": "after", "in": "query", "description": "Records after this sequence number (the next_after of the previous page)", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}},
                  {"name": "limit", "in": "query", "description": "json: records per page (default 100; above 1000 gives 1000); jsonl: at most this many in all", "schema": {"type": "integer", "minimum": 1, "maximum": 1000000000}},
                  {"name": "format", "in": "query", "description": "json (a page) or jsonl (everything selected, one record per line)", "schema": {"type": "string", "enum": ["json", "jsonl"]}}
                ],
                "responses": {
                  "200": {
                    "description": "Records in sequence order",
                    "content": {
                      "application/json": {"schema": {"$ref": "#/components/schemas/AuditPage"}},
                      "application/x-ndjson": {"schema": {"type": "string"}}
                    }
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/v1/confirmations": {
              "get": {
                "tags": ["operators"],
                "operationId": "listConfirmations",
                "summary": "Pending confirmations, oldest first",
                "security": [{"bearer": ["read"]}],
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {
                  "200": {"description": "Pending confirmations", "content": {"application/json": {"schema": {"type": "object", "required": ["confirmations"], "properties": {"confirmations": {"type": "array", "items": {"$ref": "#/components/schemas/Confirmation"}}}}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/v1/confirmations/{id}": {
              "get": {
                "tags": ["operators"],
                "operationId": "getConfirmation",
                "summary": "One confirmation, pending or decided",
                "security": [{"bearer": ["read"]}],
                "parameters": [{"$ref": "#/components/parameters/confirmationID"}],
                "responses": {
                  "200": {"description": "The confirmation", "content": {"application/json": {"schema": {"type": "object", "required": ["confirmation"], "properties": {"confirmation": {"$ref": "#/components/schemas/Confirmation"}}}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/v1/confirmations/{id}/approve": {
              "post": {
                "tags": ["operators"],
                "operationId": "approveConfirmation",
                "summary": "Approve for the requester, where policy allows (confirmations.operator_may_approve)",
                "description": "Runs the call through the tool gate, audited as approved by the operator (the key's name and id), and tells the requester in their conversation.",
                "security": [{"bearer": ["admin"]}],
                "parameters": [{"$ref": "#/components/parameters/confirmationID"}],
                "responses": {
                  "200": {"$ref": "#/components/responses/Decision"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"$ref": "#/components/responses/Conflict"}
                }
              }
            },
            "/v1/confirmations/{id}/decline": {
              "post": {
                "tags": ["operators"],
                "operationId": "declineConfirmation",
                "summary": "Decline for the requester, where policy allows (confirmations.operator_may_decline)",
                "security": [{"bearer": ["admin"]}],
                "parameters": [{"$ref": "#/components/parameters/confirmationID"}],
                "responses": {
                  "200": {"$ref": "#/components/responses/Decision"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"$ref": "#/components/responses/Conflict"}
                }
              }
            },
            "/v1/tools": {
              "get": {
                "tags": ["operators"],
                "operationId": "listTools",
                "summary": "The tools, with their JSON Schema parameters and risk",
                "security": [{"bearer": ["read"]}],
                "responses": {
                  "200": {"description": "Tools", "content": {"application/json": {"schema": {"type": "object", "required": ["tools"], "properties": {"tools": {"type": "array", "items": {"$ref": "#/components/schemas/Tool"}}}}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/v1/people/{id}/preferences": {
              "get": {
                "tags": ["operators"],
                "operationId": "getPreferences",
                "summary": "A person's preferences",
                "security": [{"bearer": ["read"]}],
                "parameters": [{"$ref": "#/components/parameters/personID"}],
                "responses": {
                  "200": {"description": "The preferences (empty when none are known)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Preferences"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              },
              "delete": {
                "tags": ["operators"],
                "operationId": "forgetPreferences",
                "summary": "Forget a person's preferences (audited)",
                "security": [{"bearer": ["admin"]}],
                "parameters": [{"$ref": "#/components/parameters/personID"}],
                "responses": {
                  "200": {"description": "Forgotten", "content": {"application/json": {"schema": {"type": "object", "required": ["person", "forgotten"], "properties": {"person": {"type": "string"}, "forgotten": {"type": "integer", "minimum": 0}}}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/healthz": {
              "get": {
                "tags": ["monitoring"],
                "operationId": "health",
                "summary": "The process is up",
                "security": [{}, {"bearer": ["read"]}],
                "responses": {
                  "200": {"description": "Up", "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/readyz": {
              "get": {
                "tags": ["monitoring"],
                "operationId": "ready",
                "summary": "The database answers and every channel is connected, retrying, or standing by for another instance",
                "security": [{}, {"bearer": ["read"]}],
                "responses": {
                  "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "503": {"description": "Not ready, with the details", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
                }
              }
            },
            "/metrics": {
              "get": {
                "tags": ["monitoring"],
                "operationId": "metrics",
                "summary": "Prometheus text exposition",
                "security": [{}, {"bearer": ["read"]}],
                "responses": {
                  "200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"}
                }
              }
            },
            "/openapi.json": {
              "get": {
                "tags": ["monitoring"],
                "operationId": "openapi",
                "summary": "This document",
                "security": [{}],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
              }
            }
          },
          "components": {
            "securitySchemes": {
              "bearer": {"type": "http", "scheme": "bearer", "description": "An API key from `switchboard keys create --scope send|read|admin`; admin may do everything. A send key speaks only as the sender (or sender prefix) it was made for."}
            },
            "parameters": {
              "wait": {"name": "wait", "in": "query", "description": "Seconds to wait for the reply (0 to http.max_wait_seconds, default 0)", "schema": {"type": "number", "minimum": 0, "maximum": __MAX_WAIT__}},
              "confirmationID": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}},
              "personID": {"name": "id", "in": "path", "required": true, "description": "The person (API senders are api:SENDER)", "schema": {"type": "string", "minLength": 1}}
            },
            "headers": {
              "Location": {"description": "Where to fetch the message and its replies", "schema": {"type": "string"}},
              "CorrelationID": {"description": "The correlation id of the message, in logs, traces and the audit trail", "schema": {"type": "string"}},
              "IdempotentReplayed": {"description": "true when the idempotency key was used before and this is the first request's answer", "schema": {"type": "string", "enum": ["true"]}}
            },
            "responses": {
              "BadRequest": {"description": "Malformed JSON or a bad query parameter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unauthorized": {"description": "No key, or an unknown or revoked one", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Forbidden": {"description": "The key lacks the scope, may not speak as this sender (sender_not_allowed), or policy forbids it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "NotFound": {"description": "No such thing", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Conflict": {"description": "Already decided, or an idempotency key reused for a different message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Timeout": {"description": "The request took longer than http.request_timeout_seconds", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "TooLarge": {"description": "The body is larger than http.max_body_bytes", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "UnsupportedMediaType": {"description": "The body is not application/json", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Invalid": {"description": "Well-formed JSON with a wrong field, or a callback URL naming an internal address", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Busy": {"description": "The database is busy (busy) or unavailable (database_unavailable), or the server is shutting down (shutting_down); nothing was stored: try again after Retry-After", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Decision": {"description": "Decided", "content": {"application/json": {"schema": {"type": "object", "required": ["outcome", "reply"], "properties": {"outcome": {"type": "string", "enum": ["confirmed", "declined", "expired"]}, "reply": {"type": "string"}, "confirmation": {"$ref": "#/components/schemas/Confirmation"}}}}}}
            },
            "schemas": {
              "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}
              },
              "MessageRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": ["sender", "conversation", "text"],
                "properties": {
                  "sender": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$", "description": "Who speaks; the person is api:SENDER"},
                  "sender_name": {"type": ["string", "null"], "maxLength": 256, "pattern": "^[^\\u0000]*$"},
                  "conversation": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$"},
                  "text": {"type": "string", "minLength": 1, "maxLength": __MAX_TEXT__, "pattern": "^[^\\u0000]*$", "description": "At most engine.max_message_bytes bytes of UTF-8"},
                  "idempotency_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$", "description": "Also the message's id; one is made up when missing"},
                  "reply_to": {"type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$", "description": "The id of an earlier message or reply this answers"},
                  "callback_url": {"type": ["string", "null"], "format": "uri", "maxLength": 2048, "description": "http(s) URL that receives each reply; needs http.callback_secret"},
                  "untrusted_content": {"type": ["boolean", "null"], "description": "The text carries third-party content: every change then needs confirmation"}
                }
              },
              "Message": {
                "type": "object",
                "required": ["id", "channel", "conversation", "person", "text", "received_at", "status", "correlation_id"],
                "properties": {
                  "id": {"type": "string"},
                  "channel": {"type": "string"},
                  "conversation": {"type": "string"},
                  "person": {"type": "string"},
                  "sender_name": {"type": "string"},
                  "text": {"type": "string"},
                  "received_at": {"type": "string", "format": "date-time"},
                  "status": {"type": "string", "enum": ["pending", "answered"]},
                  "answered_at": {"type": "string", "format": "date-time"},
                  "reply_to": {"type": "string"},
                  "thread": {"type": "string"},
                  "correlation_id": {"type": "string"},
                  "direction": {"const": "in"}
                }
              },
              "Reply": {
                "type": "object",
                "required": ["id", "channel", "conversation", "text", "kind", "created_at", "delivery"],
                "properties": {
                  "id": {"type": "string"},
                  "channel": {"type": "string"},
                  "conversation": {"type": "string"},
                  "text": {"type": "string"},
                  "kind": {"type": "string", "enum": ["reply", "confirmation_request", "notice", "relayed"]},
                  "created_at": {"type": "string", "format": "date-time"},
                  "delivery": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                  "delivered_at": {"type": "string", "format": "date-time"},
                  "last_error": {"type": "string"},
                  "in_reply_to": {"type": "string"},
                  "correlation_id": {"type": "string"},
                  "recipient": {"type": "string"},
                  "direction": {"const": "out"}
                }
              },
              "MessageWithReplies": {
                "type": "object",
                "required": ["message", "replies"],
                "properties": {"message": {"$ref": "#/components/schemas/Message"}, "replies": {"type": "array", "items": {"$ref": "#/components/schemas/Reply"}}}
              },
              "Conversation": {
                "type": "object",
                "required": ["channel", "conversation", "messages"],
                "properties": {
                  "channel": {"type": "string"},
                  "conversation": {"type": "string"},
                  "messages": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/Message"}, {"$ref": "#/components/schemas/Reply"}]}},
                  "next_before": {"type": "string", "format": "date-time"}
                }
              },
              "AuditStatus": {"type": "string", "enum": ["proposed", "awaiting_confirmation", "confirmed", "declined", "expired", "rate_limited", "denied", "executed", "failed", "undone", "answer_ignored"]},
              "AuditRecord": {
                "type": "object",
                "required": ["sequence", "at", "call_id", "person", "channel", "conversation", "tool", "risk", "status", "arguments", "summary", "previous_hash", "hash"],
                "properties": {
                  "sequence": {"type": "integer", "minimum": 1},
                  "at": {"type": "string", "format": "date-time"},
                  "call_id": {"type": "string"},
                  "person": {"type": "string"},
                  "channel": {"type": "string"},
                  "conversation": {"type": "string"},
                  "tool": {"type": "string"},
                  "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                  "status": {"$ref": "#/components/schemas/AuditStatus"},
                  "arguments": {},
                  "summary": {"type": "string"},
                  "correlation_id": {"type": "string"},
                  "previous_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                  "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}
                }
              },
              "AuditPage": {
                "type": "object",
                "required": ["records"],
                "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}}, "next_after": {"type": "integer"}}
              },
              "Confirmation": {
                "type": "object",
                "required": ["id", "requester", "channel", "conversation", "tool", "arguments", "preview", "risk", "tainted", "number", "created_at", "expires_at", "status"],
                "properties": {
                  "id": {"type": "string"},
                  "requester": {"type": "string"},
                  "channel": {"type": "string"},
                  "conversation": {"type": "string"},
                  "tool": {"type": "string"},
                  "arguments": {},
                  "preview": {"type": "string"},
                  "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                  "tainted": {"type": "boolean"},
                  "number": {"type": "integer", "minimum": 1},
                  "created_at": {"type": "string", "format": "date-time"},
                  "expires_at": {"type": "string", "format": "date-time"},
                  "status": {"type": "string", "enum": ["pending", "confirmed", "declined", "expired"]},
                  "decided_at": {"type": "string", "format": "date-time"},
                  "correlation_id": {"type": "string"}
                }
              },
              "Tool": {
                "type": "object",
                "required": ["name", "source", "category", "description", "parameters", "risk", "effect", "secret_parameters"],
                "properties": {
                  "name": {"type": "string"},
                  "source": {"type": "string", "description": "built-in, http, or mcp:<server>"},
                  "category": {"type": "string"},
                  "description": {"type": "string"},
                  "parameters": {"type": "object", "description": "JSON Schema of the arguments"},
                  "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                  "effect": {"type": "string", "enum": ["read_only", "reversible", "irreversible"]},
                  "secret_parameters": {"type": "array", "items": {"type": "string"}}
                }
              },
              "Preferences": {
                "type": "object",
                "required": ["person", "preferences"],
                "properties": {
                  "person": {"type": "string"},
                  "preferences": {"type": "object", "additionalProperties": {"type": "object", "required": ["value", "updated_at"], "properties": {"value": {}, "updated_at": {"type": "string", "format": "date-time"}}}}
                }
              },
              "Readiness": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {"status": {"type": "string", "enum": ["ready", "not_ready"]}, "checks": {"type": "object"}}
              }
            }
          }
        }
        """#
}
