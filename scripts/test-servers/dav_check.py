#!/usr/bin/env python3
"""An independent CalDAV client for the DAV tests (PyPI caldav and icalendar), to check what a
server holds and to change it the way a phone would.

    dav_check.py URL USER PASSWORD list                 every event in the calendar at URL, as JSON lines
    dav_check.py URL USER PASSWORD retitle UID TITLE    changes one event's SUMMARY (a new ETag)
    dav_check.py URL USER PASSWORD skip UID N           cancels the Nth occurrence (0 = the first) of a
                                                        series the way a phone does: an EXDATE
"""
import datetime
import json
import sys

import caldav

url, user, password, command = sys.argv[1:5]
client = caldav.DAVClient(url=url, username=user, password=password)
calendar = client.calendar(url=url)

if command == "list":
    for event in calendar.events():
        component = event.icalendar_component
        start = component.get("dtstart")
        print(json.dumps({
            "uid": str(component.get("uid")),
            "summary": str(component.get("summary")),
            "start": start.dt.isoformat(),
            "tzid": start.params.get("TZID"),
            "rrule": component.get("rrule").to_ical().decode() if component.get("rrule") else None,
        }))
elif command == "retitle":
    uid, title = sys.argv[5:7]
    event = calendar.event_by_uid(uid)
    event.icalendar_component["summary"] = title
    event.save()
elif command == "skip":
    uid, index = sys.argv[5], int(sys.argv[6])
    event = calendar.event_by_uid(uid)
    component = event.icalendar_component
    start = component.get("dtstart").dt
    rule = component.get("rrule")
    freq = rule.get("FREQ")[0]
    interval = int(rule.get("INTERVAL", [1])[0])
    step = {"DAILY": datetime.timedelta(days=1), "WEEKLY": datetime.timedelta(weeks=1)}[freq] * interval
    component.add("exdate", start + step * index)
    event.save()
else:
    sys.exit("unknown command " + command)
