-- wrk script for scripts/bench/api.sh: every request is a new message (its own idempotency
-- key) to POST /v1/messages?wait=..., spread over many conversations, so the engine answers
-- each one before the response comes back. Counts 200 (answered) and 202 (not in time).

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    counter = 0
    answered = 0
    late = 0
    other = 0
    wait = os.getenv("BENCH_WAIT") or "5"
    if wait == "0" then path = "/v1/messages" else path = "/v1/messages?wait=" .. wait end
    conversations = tonumber(os.getenv("BENCH_CONVERSATIONS") or "256")
    run = os.getenv("BENCH_RUN") or "run"
    headers = {
        ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
        ["Content-Type"] = "application/json",
    }
end

function request()
    counter = counter + 1
    local conversation = (counter * 7 + id) % conversations
    local body = string.format(
        '{"sender":"p%d","conversation":"c%d","text":"add a note: bench %d","idempotency_key":"%s-%d-%d"}',
        conversation, conversation, counter, run, id, counter)
    return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
    if status == 200 then
        answered = answered + 1
    elseif status == 202 then
        late = late + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local a, l, o = 0, 0, 0
    for _, thread in ipairs(threads) do
        a = a + thread:get("answered")
        l = l + thread:get("late")
        o = o + thread:get("other")
    end
    io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f answered=%d late=%d other=%d socket_errors=%d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        a, l, o, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
