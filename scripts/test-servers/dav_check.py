#!/usr/bin/env python3
"""An independent CalDAV client for the DAV tests (PyPI caldav and icalendar), to check what a
server holds and to change it the way a phone would.

    dav_check.py URL USER PASSWORD list                 every event in the calendar at URL, as JSON lines
    dav_check.py URL USER PASSWORD retitle UID TITLE    changes one event's SUMMARY (a new ETag)
"""
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
else:
    sys.exit("unknown command " + command)
