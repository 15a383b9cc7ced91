// The everyday words people use for what tools describe in their own terms: "is it sunny in
// Lisbon" is about a weather forecast, "dim the lamp" about a light, "who hasn't paid" about
// overdue invoices. The tool retriever adds the related terms to a request at half weight,
// so that a request finds its tool without sharing a word with it, while a tool that uses
// the request's own word still ranks first.
//
// The groups cover the kinds of systems people connect through MCP and HTTP tools (wikis,
// issue trackers, code hosting, files, CRM, helpdesk, chat, home automation, billing, HR,
// operations, weather, travel, news, music). A word that means different things in different
// systems ("ticket") is related to none of them. Words on the left are written as people
// type them and stemmed as the index stems; the right side says what a tool would call it.

extension ToolRetriever {
    static let vocabulary: [(words: String, means: String)] = [
        // Weather.
        ("umbrella sunny sunshine rainy raining drizzle snowing snowy cold hot warm chilly freezing jacket coat cloudy humid degrees celsius fahrenheit windy thunder thunderstorm hail frost heatwave", "weather forecast temperature rain"),
        ("pollen hayfever allergy allergies smog pollution asthma", "air quality pollen"),
        ("hurricane tornado flood flooding blizzard typhoon", "severe weather warning storm"),
        // A home's devices.
        ("lamp lamps bulb bulbs dim dimmer brighten brighter darker", "light brightness"),
        ("heating heater warmer cooler aircon radiator", "thermostat temperature heat"),
        ("garage deadbolt frontdoor", "door lock sensor"),
        ("curtain curtains shades shutters", "blinds cover"),
        ("hoover roomba mop", "vacuum clean"),
        ("cctv doorbell porch driveway", "camera snapshot"),
        ("electricity kwh kilowatt", "energy power"),
        // Music and speakers.
        ("louder quieter mute loud quiet", "volume"),
        ("song songs track tune tunes spotify sonos podcast", "music play"),
        ("next", "skip track"),
        // Team chat.
        ("slack dm ping announce", "message send channel"),
        ("said discussed conversation chatter", "message history channel"),
        ("invite", "add channel"),
        ("away afk lunch", "status"),
        // Issue trackers.
        ("jira bug bugs story epic", "issue ticket"),
        ("blocker blocks blocked depends duplicate", "link issue"),
        ("give hand reassign owner", "assign"),
        ("answer respond", "reply"),
        ("anything somewhere whether", "search find"),
        ("close reopen", "transition status"),
        // Code hosting and CI.
        ("pr prs", "pull request"),
        ("codebase grep source", "code search repository"),
        ("repo repos", "repository"),
        ("ci pipeline build builds actions", "workflow run"),
        ("ship rollout", "deploy release"),
        ("revert undeploy", "rollback"),
        // Files.
        ("pdf pdfs doc docs spreadsheet spreadsheets sheet sheets slides deck presentation", "file document"),
        ("disk space", "storage quota"),
        // Customers and sales.
        ("client clients prospect prospects", "customer contact lead"),
        ("opportunity opportunities", "deal pipeline"),
        // Customer support.
        ("complaint complaints complain complaining helpdesk zendesk", "support ticket customer"),
        ("csat nps satisfied unhappy happy rating ratings survey feedback", "satisfaction score"),
        ("canned template templates", "macro response"),
        // Billing.
        ("bill billed charge", "invoice"),
        ("paid unpaid owe owes late overdue", "payment invoice overdue"),
        ("reimburse chargeback", "refund payment"),
        ("mrr arr churn income earnings", "revenue"),
        ("upgrade downgrade seats", "plan subscription"),
        // People and HR.
        ("pto vacation holiday holidays sick ooo absence absent", "leave time off"),
        ("salary paycheck paystub wage wages", "payslip"),
        ("colleague colleagues coworker coworkers staff", "employee directory"),
        ("reports manager manages boss", "org chart"),
        // Operations.
        ("alarm alarms paging pager", "alert"),
        ("outage down broken sev1 sev2", "incident service status"),
        ("snooze mute", "silence alert"),
        ("oncall", "call"),
        ("latency uptime healthy errors", "service status"),
        ("cpu memory graph dashboard promql", "metric query"),
        // Travel.
        ("fly plane airline airport", "flight"),
        ("stay accommodation airbnb room", "hotel"),
        ("itinerary trip", "trip booking"),
        ("receipts reimbursement expenses", "expense report"),
        // News.
        ("happening headline", "news headlines"),
        ("summary summarise summarize tldr", "summarize article"),
        // Documentation.
        ("documentation docs handbook runbook guide howto policy policies confluence", "wiki page"),
    ]

    /// Each stemmed word's related terms.
    static let expansions: [String: [String]] = {
        var expansions: [String: [String]] = [:]
        for (words, means) in vocabulary {
            let related = terms(means)
            for word in words.split(separator: " ") { expansions[stem(String(word)), default: []] += related }
        }
        return expansions
    }()
}
