#!/usr/bin/env python3
"""An independent CardDAV client for the DAV tests (PyPI vobject over plain HTTP), to check what
an address book holds and to change it the way a phone would.

    card_check.py URL USER PASSWORD list              every card in the address book at URL, as JSON lines
    card_check.py URL USER PASSWORD phone-card UID    puts a card as a phone writes one: photo, birthday,
                                                      address, a grouped email with its label, X- fields
    card_check.py URL USER PASSWORD retitle UID NOTE  changes one card's NOTE (a new ETag)
"""
import base64
import json
import sys
import urllib.request
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import vobject

url, user, password, command = sys.argv[1:5]
if not url.endswith("/"):
    url += "/"
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(method, target, body=None, headers=None):
    req = urllib.request.Request(target, data=body.encode() if isinstance(body, str) else body, method=method)
    req.add_header("Authorization", auth)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.read().decode(), response.headers


def cards():
    """(href, etag, text) of every .vcf in the collection."""
    body, _ = request("PROPFIND", url, '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>',
                      {"Depth": "1", "Content-Type": "application/xml"})
    found = []
    for response in ET.fromstring(body).findall("{DAV:}response"):
        href = response.findtext("{DAV:}href")
        if not href or href.rstrip("/") == urllib.parse.urlparse(url).path.rstrip("/"):
            continue
        target = urljoin(url, href)
        text, headers = request("GET", target)
        found.append((target, headers.get("ETag"), text))
    return found


def by_uid(uid):
    for target, etag, text in cards():
        card = vobject.readOne(text)
        if card.uid.value == uid:
            return target, etag, card
    sys.exit("no card with UID " + uid)


if command == "list":
    for target, etag, text in cards():
        card = vobject.readOne(text)  # raises on a card vobject cannot read
        lines = list(card.lines())
        print(json.dumps({
            "href": target,
            "uid": card.uid.value if hasattr(card, "uid") else None,
            "version": card.version.value if hasattr(card, "version") else None,
            "fn": card.fn.value if hasattr(card, "fn") else None,
            "emails": [e.value for e in card.contents.get("email", [])],
            "tels": [t.value for t in card.contents.get("tel", [])],
            "org": list(card.org.value) if hasattr(card, "org") else None,
            "note": card.note.value if hasattr(card, "note") else None,
            "categories": list(card.categories.value) if hasattr(card, "categories") else [],
            "bday": card.bday.value if hasattr(card, "bday") else None,
            "adr_city": card.adr.value.city if hasattr(card, "adr") else None,
            "photo": hasattr(card, "photo"),
            "groups": sorted({f"{line.group}.{line.name}" for line in lines if line.group}),
            "x": sorted({line.name for line in lines if line.name.startswith("X-")}),
        }))
elif command == "phone-card":
    uid = sys.argv[5]
    card = vobject.vCard()
    card.add("version").value = "3.0"
    card.add("uid").value = uid
    card.add("fn").value = "Carol Danvers"
    card.add("n").value = vobject.vcard.Name(family="Danvers", given="Carol")
    tel = card.add("tel")
    tel.value = "+1 555 0100"
    tel.type_param = "CELL"
    email = card.add("email")
    email.value = "carol@example.org"
    email.group = "item1"
    label = card.add("x-ablabel")
    label.value = "_$!<Other>!$_"
    label.group = "item1"
    card.add("bday").value = "1980-03-14"
    card.add("adr").value = vobject.vcard.Address(street="1 Main St", city="Springfield", code="12345", country="USA")
    photo = card.add("photo")
    photo.value = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    photo.encoding_param = "b"
    photo.type_param = "PNG"
    card.add("x-phonetic-first-name").value = "KAR-ol"
    request("PUT", urljoin(url, uid + ".vcf"), card.serialize(), {"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"})
elif command == "retitle":
    uid, note = sys.argv[5:7]
    target, etag, card = by_uid(uid)
    if hasattr(card, "note"):
        card.note.value = note
    else:
        card.add("note").value = note
    request("PUT", target, card.serialize(), {"Content-Type": "text/vcard; charset=utf-8", "If-Match": etag})
else:
    sys.exit("unknown command " + command)
