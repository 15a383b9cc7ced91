#!/usr/bin/env python3
"""Writes replay.jsonl: four simulated weeks of three people talking to the assistant, for
LearningReplayTests. Deterministic (no randomness); run it again after changing it.

Each line: day (0 = Monday 2 November 2026), time (UTC, HH:MM), person (a sender id), text,
and optionally if_asked: what the person says instead when the assistant asks them to be
clearer (no action taken).

alice (Matrix, and by mail from her linked address) books 45-minute meetings, stating the
length the first week only, and mails bob@example.org, later calling him "bob".
ben keeps a to-do list with "add task ...", later writing just "add milk" or "put milk on the list".
carol's meetings are half 30 and half 60 minutes (nothing to learn), and one afternoon a
loop with another bot sends the same request twenty times.
"""
import json

ALICE, ALICE_MAIL, BEN, CAROL = "@alice:example.org", "email:alice@example.org", "@ben:example.org", "@carol:example.org"
PEOPLE = ["dana", "eli", "fay", "gus", "hal"]
ITEMS = ["milk", "bread", "eggs", "coffee", "apples", "rice", "soap", "tea", "butter", "oranges", "pasta", "cheese"]
MONTHS = ["November", "December"]
lines = []


def date_words(day):
    # Day 0 is 2 November 2026; meetings are booked for the next day.
    import datetime
    d = datetime.date(2026, 11, 2) + datetime.timedelta(days=day + 1)
    return f"{d.day} {MONTHS[d.month - 11]}"


def add(day, time, person, text, if_asked=None):
    line = {"day": day, "time": time, "person": person, "text": text}
    if if_asked:
        line["if_asked"] = if_asked
    lines.append(line)


for day in range(28):
    weekday = day % 7 < 5
    # alice
    if weekday:
        for n, hour in enumerate([9, 14]):
            who = PEOPLE[(day + n) % len(PEOPLE)]
            when = f"on {date_words(day)} at {10 + n * 4}"
            if day < 7:
                add(day, f"{hour:02d}:05", ALICE, f"book a meeting with {who} {when} for 45 minutes")
            else:
                add(day, f"{hour:02d}:05", ALICE, f"book a meeting with {who} {when}")
        subject = ["the slides are ready", "the budget is approved", "I moved our call", "the draft is in the folder"][day % 4]
        sender = ALICE_MAIL if day % 3 == 0 else ALICE
        if day < 7:
            add(day, "11:20", sender, f"email bob@example.org that {subject}")
        else:
            add(day, "11:20", sender, f"email bob that {subject}", if_asked=f"email bob@example.org that {subject}")
        add(day, "16:40", ALICE, "what's on my calendar tomorrow")
        add(day, "18:00", ALICE, "remind me tomorrow at 8 to prepare the day")
        if day == 23:
            add(day, "17:10", ALICE, "email carol@example.org that the report is late")
    # ben, every day
    for n, hour in enumerate([8, 12, 19]):
        item = ITEMS[(day * 3 + n) % len(ITEMS)]
        if day < 10 or n != 1:
            add(day, f"{hour:02d}:15", BEN, f"add task buy {item}")
        else:
            # Written as people do; the intent engine alone cannot tell a task from a note here.
            loose = ["add milk", "add oat milk", "put milk on the list", "put pasta on the list"][day % 4]
            add(day, f"{hour:02d}:15", BEN, loose, if_asked="add task buy " + loose.split(" ", 1)[1].replace(" on the list", ""))
    add(day, "20:30", BEN, "what's on my to-do list")
    # carol
    if weekday:
        length = "for 30 minutes" if day % 2 == 0 else "for an hour"
        if day < 14:
            add(day, "10:00", CAROL, f"book a review with {PEOPLE[day % 5]} on {date_words(day)} at 15 {length}")
        else:
            add(day, "10:00", CAROL, f"book a review with {PEOPLE[day % 5]} on {date_words(day)} at 15")
        add(day, "15:30", CAROL, "add task call the printer people")
        add(day, "17:45", CAROL, "what's on my calendar tomorrow")
        add(day, "18:30", CAROL, f"add a note: printer ticket {day}")
    if day == 16:
        for n in range(20):
            add(day, f"13:{n:02d}", CAROL, f"book a sync with zed on {date_words(day)} at 9 for 15 minutes")

lines.sort(key=lambda l: (l["day"], l["time"]))
with open(__file__.replace("make_replay.py", "replay.jsonl"), "w") as out:
    for line in lines:
        out.write(json.dumps(line) + "\n")
print(len(lines), "lines")
