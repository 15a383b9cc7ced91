"""A person with an end-to-end encrypting Matrix client (matrix-nio with its e2e extra),
scripted by the Swift tests one JSON command per line on stdin, one JSON answer per line on
stdout. Logs go to stderr.

Commands (each answers {"ok": true, ...} or {"ok": false, "error": "..."}):
  login        homeserver, user_id, password, store       -> device_id
  create_dm    invite                                     -> room_id (encrypted, direct)
  create_room  invite (list), [rotation_msgs]             -> room_id (encrypted group room)
  join / leave room
  wait_member  room, user, timeout                        (until the user has joined)
  send         room, text, [reply_to]                     -> event_id (encrypted as any client would)
  send_late    room, text, delay                          -> event_id; the room key follows after `delay` s
  send_twice   room, text                                 -> event_ids: one ciphertext sent as two events (a replay)
  send_corrupt room                                       -> event_id: a real session's message with a damaged MAC
  react        room, event, key                           -> event_id
  new_room_key room                                       the next message goes with a new room key
  messages     room, sender, count, timeout               -> bodies of the sender's messages, decrypted, in order;
                                                             undecryptable ones come as null
  session_key  room                                       -> the current outbound room key (to look for on disk)
  olm_garbage  user, device                               a to-device pre-key message that cannot start a session
  unknown_device_key  user, device, room                  a room key from a device nobody published
  keyless_device      homeserver, user_id, password       -> device_id: a device that publishes identity keys and
                                                             no one-time keys at all
  cross_signing user, device                              -> master key, and whether the self-signing key is signed
                                                             by it and the device by the self-signing key (checked here)
  quit
"""

import asyncio
import base64
import json
import sys
import time
import uuid

import vodozemac
from nio import (
    AsyncClient,
    AsyncClientConfig,
    EnableEncryptionBuilder,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessage,
    RoomSendResponse,
)
from nio.api import Api
from nio.responses import ShareGroupSessionResponse


def log(*parts):
    print("person:", *parts, file=sys.stderr, flush=True)


class Person:
    def __init__(self):
        self.client = None
        self.sync_task = None
        # room id -> [(sender, event_id, body or None)], in timeline order
        self.timeline = {}

    async def login(self, homeserver, user_id, password, store):
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
        self.client = AsyncClient(homeserver, user_id, store_path=store, config=config)
        response = await self.client.login(password, device_name="encrypting person")
        if not isinstance(response, LoginResponse):
            raise RuntimeError(f"login failed: {response}")
        self.client.add_event_callback(self.on_message, RoomMessage)
        self.client.add_event_callback(self.on_undecryptable, MegolmEvent)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.sync_task = asyncio.ensure_future(self.client.sync_forever(timeout=1000, full_state=True))
        await self.client.synced.wait()
        return {"device_id": self.client.device_id}

    async def on_message(self, room, event):
        body = getattr(event, "body", None)
        self.timeline.setdefault(room.room_id, []).append((event.sender, event.event_id, body))

    async def on_undecryptable(self, room, event):
        log("could not decrypt", event.event_id, "from", event.sender)
        self.timeline.setdefault(room.room_id, []).append((event.sender, event.event_id, None))

    async def next_sync(self):
        self.client.synced.clear()
        await asyncio.wait_for(self.client.synced.wait(), 30)

    async def create_dm(self, invite):
        response = await self.client.room_create(
            is_direct=True, invite=[invite], initial_state=[EnableEncryptionBuilder().as_dict()]
        )
        if not isinstance(response, RoomCreateResponse):
            raise RuntimeError(f"room_create failed: {response}")
        while response.room_id not in self.client.rooms:
            await self.next_sync()
        return {"room_id": response.room_id}

    async def create_room(self, invite, rotation_msgs=None):
        encryption = EnableEncryptionBuilder().as_dict()
        if rotation_msgs:
            encryption["content"]["rotation_period_msgs"] = rotation_msgs
        response = await self.client.room_create(invite=invite, initial_state=[encryption])
        if not isinstance(response, RoomCreateResponse):
            raise RuntimeError(f"room_create failed: {response}")
        while response.room_id not in self.client.rooms:
            await self.next_sync()
        return {"room_id": response.room_id}

    async def join(self, room):
        response = await self.client.join(room)
        if not hasattr(response, "room_id"):
            raise RuntimeError(f"join failed: {response}")
        while room not in self.client.rooms:
            await self.next_sync()
        return {}

    async def leave(self, room):
        response = await self.client.room_leave(room)
        if response.__class__.__name__ != "RoomLeaveResponse":
            raise RuntimeError(f"leave failed: {response}")
        return {}

    async def wait_member(self, room, user, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = await self.client.joined_members(room)
            if user in [m.user_id for m in getattr(members, "members", [])]:
                # The room's member list (and so who gets room keys) comes from sync.
                while user not in self.client.rooms[room].users:
                    await self.next_sync()
                return {}
            await asyncio.sleep(0.3)
        raise RuntimeError(f"{user} did not join {room} within {timeout} s")

    async def prepare(self, room):
        """Makes sure the client knows every device in the room before it encrypts."""
        await self.next_sync()
        if self.client.should_query_keys:
            await self.client.keys_query()

    async def send(self, room, text, reply_to=None):
        await self.prepare(room)
        content = {"msgtype": "m.text", "body": text}
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        response = await self.client.room_send(room, "m.room.message", content, ignore_unverified_devices=True)
        if not isinstance(response, RoomSendResponse):
            raise RuntimeError(f"room_send failed: {response}")
        return {"event_id": response.event_id}

    async def react(self, room, event, key):
        await self.prepare(room)
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event, "key": key}}
        response = await self.client.room_send(room, "m.reaction", content, ignore_unverified_devices=True)
        if not isinstance(response, RoomSendResponse):
            raise RuntimeError(f"room_send failed: {response}")
        return {"event_id": response.event_id}

    async def fresh_session_unsent(self, room):
        """A new outbound room key, encrypted for every device, with the to-device messages
        held back: (requests to send them later)."""
        await self.prepare(room)
        client = self.client
        client.olm.outbound_group_sessions.pop(room, None)
        missing = client.get_missing_sessions(room)
        if missing:
            await client.keys_claim(missing)
        held = []
        for sharing_with, to_device in client.olm.share_group_session_parallel(
            room, list(client.rooms[room].users.keys()), ignore_unverified_devices=True
        ):
            held.append((sharing_with, to_device))
        client.olm.outbound_group_sessions[room].shared = True
        return held

    async def send_held(self, room, held):
        for sharing_with, to_device in held:
            method, path, data = Api.to_device(self.client.access_token, "m.room.encrypted", to_device, uuid.uuid4())
            await self.client._send(ShareGroupSessionResponse, method, path, data, response_data=(room, sharing_with))

    async def send_late(self, room, text, delay):
        held = await self.fresh_session_unsent(room)
        content = {"msgtype": "m.text", "body": text}
        response = await self.client.room_send(room, "m.room.message", content, ignore_unverified_devices=True)
        if not isinstance(response, RoomSendResponse):
            raise RuntimeError(f"room_send failed: {response}")

        async def later():
            await asyncio.sleep(delay)
            await self.send_held(room, held)
            log("sent the held room key for", room)

        asyncio.ensure_future(later())
        return {"event_id": response.event_id}

    async def encrypted_content(self, room, text):
        await self.prepare(room)
        if self.client.olm.should_share_group_session(room):
            await self.client.share_group_session(room, ignore_unverified_devices=True)
        payload = {"msgtype": "m.text", "body": text}
        return self.client.olm.group_encrypt(room, {"type": "m.room.message", "content": payload})

    async def send_raw(self, room, content):
        """Sends a ready-made m.room.encrypted event as it is (room_send would encrypt it again)."""
        method, path, data = Api.room_send(self.client.access_token, room, "m.room.encrypted", content, uuid.uuid4())
        response = await self.client._send(RoomSendResponse, method, path, data, (room,))
        if not isinstance(response, RoomSendResponse):
            raise RuntimeError(f"sending the raw event failed: {response}")
        return response.event_id

    async def new_room_key(self, room):
        self.client.olm.outbound_group_sessions.pop(room, None)
        return {}

    async def send_twice(self, room, text):
        content = await self.encrypted_content(room, text)
        first = await self.send_raw(room, content)
        second = await self.send_raw(room, dict(content))
        return {"event_ids": [first, second]}

    async def send_corrupt(self, room):
        content = await self.encrypted_content(room, "this will not decrypt")
        ciphertext = content["ciphertext"]
        middle = len(ciphertext) // 2
        flipped = "A" if ciphertext[middle] != "A" else "B"
        content["ciphertext"] = ciphertext[:middle] + flipped + ciphertext[middle + 1:]
        return {"event_id": await self.send_raw(room, content)}

    async def messages(self, room, sender, count, timeout):
        deadline = time.monotonic() + timeout
        while True:
            found = [body for (who, _, body) in self.timeline.get(room, []) if who == sender]
            if len(found) >= count or time.monotonic() >= deadline:
                return {"messages": found}
            await asyncio.sleep(0.2)

    async def session_key(self, room):
        session = self.client.olm.outbound_group_sessions.get(room)
        if session is None:
            raise RuntimeError("no outbound session for the room")
        return {"session_key": session.session_key, "session_id": session.id}

    async def device_keys(self, user, device):
        if self.client.should_query_keys:
            await self.client.keys_query()
        keys = self.client.device_store[user][device]
        return keys.curve25519, keys.ed25519

    async def send_to_device(self, event_type, user, device, content):
        body = {"messages": {user: {device: content}}}
        method, path, data = Api.to_device(self.client.access_token, event_type, body, uuid.uuid4())
        response = await self.client._send(ShareGroupSessionResponse, method, path, data, response_data=("", set()))
        if not isinstance(response, ShareGroupSessionResponse):
            raise RuntimeError(f"sendToDevice failed: {response}")

    async def olm_garbage(self, user, device):
        curve, _ = await self.device_keys(user, device)
        content = {
            "algorithm": "m.olm.v1.curve25519-aes-sha2",
            "sender_key": vodozemac.Account().curve25519_key.to_base64(),
            "ciphertext": {curve: {"type": 0, "body": "Awogbm90IGEgcmVhbCBwcmUta2V5IG1lc3NhZ2U"}},
        }
        await self.send_to_device("m.room.encrypted", user, device, content)
        return {}

    async def unknown_device_key(self, user, device, room):
        """An Olm session from a made-up device to the bot, carrying a room key."""
        curve, ed = await self.device_keys(user, device)
        # Claimed over plain HTTP: nio's own keys_claim would start a session of its own with
        # the same one-time key.
        reply = await self.client.send(
            "POST", "/_matrix/client/v3/keys/claim",
            json.dumps({"one_time_keys": {user: {device: "signed_curve25519"}}}),
            headers={"Authorization": f"Bearer {self.client.access_token}", "Content-Type": "application/json"},
        )
        claimed = (await reply.json())["one_time_keys"][user][device]
        one_time = list(claimed.values())[0]["key"]
        stranger = vodozemac.Account()
        session = stranger.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(curve), vodozemac.Curve25519PublicKey.from_base64(one_time)
        )
        group = vodozemac.GroupSession()
        payload = {
            "type": "m.room_key",
            "content": {
                "algorithm": "m.megolm.v1.aes-sha2", "room_id": room,
                "session_id": group.session_id, "session_key": group.session_key.to_base64(),
            },
            "sender": self.client.user_id, "sender_device": "NOSUCHDEVICE",
            "keys": {"ed25519": stranger.ed25519_key.to_base64()},
            "recipient": user, "recipient_keys": {"ed25519": ed},
        }
        message = session.encrypt(json.dumps(payload).encode())
        message_type, body = message.to_parts()
        content = {
            "algorithm": "m.olm.v1.curve25519-aes-sha2",
            "sender_key": stranger.curve25519_key.to_base64(),
            "ciphertext": {curve: {"type": message_type, "body": base64.b64encode(body).decode().rstrip("=")}},
        }
        await self.send_to_device("m.room.encrypted", user, device, content)
        return {"session_id": group.session_id}

    async def keyless_device(self, homeserver, user_id, password):
        """Logs a second device in over plain HTTP and publishes its identity keys, signed, but
        no one-time key and no fallback key."""
        other = AsyncClient(homeserver, user_id)
        response = await other.login(password, device_name="keyless device")
        if not isinstance(response, LoginResponse):
            raise RuntimeError(f"login failed: {response}")
        account = vodozemac.Account()
        device_keys = {
            "user_id": user_id, "device_id": other.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                f"curve25519:{other.device_id}": account.curve25519_key.to_base64(),
                f"ed25519:{other.device_id}": account.ed25519_key.to_base64(),
            },
        }
        canonical = json.dumps(device_keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        device_keys["signatures"] = {user_id: {f"ed25519:{other.device_id}": account.sign(canonical.encode()).to_base64()}}
        method, path = "POST", f"/_matrix/client/v3/keys/upload"
        reply = await other.send(method, path, json.dumps({"device_keys": device_keys}),
                                 headers={"Authorization": f"Bearer {other.access_token}", "Content-Type": "application/json"})
        if reply.status != 200:
            raise RuntimeError(f"keys/upload failed: {reply.status} {await reply.text()}")
        await other.close()
        return {"device_id": other.device_id}

    async def cross_signing(self, user, device):
        reply = await self.client.send(
            "POST", "/_matrix/client/v3/keys/query", json.dumps({"device_keys": {user: []}}),
            headers={"Authorization": f"Bearer {self.client.access_token}", "Content-Type": "application/json"},
        )
        keys = await reply.json()

        def verify(obj, key_id, public_key):
            signature = obj.get("signatures", {}).get(user, {}).get(key_id)
            if signature is None:
                return False
            unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
            canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            try:
                vodozemac.Ed25519PublicKey.from_base64(public_key).verify_signature(
                    canonical, vodozemac.Ed25519Signature.from_base64(signature)
                )
                return True
            except Exception as error:
                log("signature check failed:", repr(error))
                return False

        master = keys.get("master_keys", {}).get(user)
        self_signing = keys.get("self_signing_keys", {}).get(user)
        if not master or not self_signing:
            return {"master": None, "self_signing_valid": False, "device_signed": False}
        master_key = list(master["keys"].values())[0]
        ssk = list(self_signing["keys"].values())[0]
        device_keys = keys["device_keys"][user][device]
        return {
            "master": master_key,
            "self_signing_valid": verify(self_signing, f"ed25519:{master_key}", master_key),
            "device_signed": verify(device_keys, f"ed25519:{ssk}", ssk),
            "master_signed_by_device": verify(master, f"ed25519:{device}", device_keys["keys"][f"ed25519:{device}"]),
        }

    async def quit(self):
        if self.sync_task:
            self.sync_task.cancel()
        if self.client:
            await self.client.close()
        return {}


async def main():
    person = Person()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        request = json.loads(line)
        command = request.pop("cmd")
        try:
            result = await getattr(person, command)(**request)
            answer = {"ok": True, **result}
        except Exception as error:  # every failure goes back to the test as text
            log("command", command, "failed:", repr(error))
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)
        if command == "quit":
            break


if __name__ == "__main__":
    asyncio.run(main())
