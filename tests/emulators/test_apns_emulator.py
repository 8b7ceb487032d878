"""The APNs emulator answers like APNs: driven by raw HTTP/2 clients and by aioapns."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsDevelopmentClientProtocol, APNsProductionClientProtocol
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes

from clarion.clock import FakeClock, SystemClock
from clarion.emulators.apns import ApnsEmulator
from clarion.emulators.recording import Fault

TOKEN = "a1" * 32
TEAM = "TEAM000001"
KID = "KEY0000001"
BUNDLE = "com.example.app"


def sign(private_pem: str, iat: float, *, team: str = TEAM, kid: str = KID) -> str:
    return jwt.encode({"iss": team, "iat": int(iat)}, private_pem, "ES256", headers={"kid": kid})


def client(ca_file: Path | None) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(ca_file))
    return httpx.AsyncClient(http2=True, verify=context)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[ApnsEmulator]:
    async with ApnsEmulator(topics=[BUNDLE], clock=clock, environment="sandbox") as emu:
        yield emu


@pytest.fixture
def key(emulator: ApnsEmulator) -> str:
    return emulator.new_signing_key(TEAM, KID)


@pytest.fixture
async def http(emulator: ApnsEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client(emulator.ca_file) as http_client:
        yield http_client


def headers_for(key: str, clock: FakeClock, **extra: str) -> dict[str, str]:
    headers = {
        "authorization": f"bearer {sign(key, clock.now().timestamp())}",
        "apns-topic": BUNDLE,
        "apns-push-type": "alert",
    }
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


async def push(
    http: httpx.AsyncClient,
    emulator: ApnsEmulator,
    headers: dict[str, str],
    payload: Any = None,
    *,
    token: str = TOKEN,
    body: bytes | None = None,
) -> httpx.Response:
    content = body if body is not None else json.dumps(payload or {"aps": {"alert": "hi"}}).encode()
    return await http.post(f"{emulator.url}/3/device/{token}", headers=headers, content=content)


def reason(response: httpx.Response) -> str:
    return str(response.json()["reason"])


async def test_valid_push_gets_200_with_its_apns_id_and_a_sandbox_unique_id(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    apns_id = str(uuid.uuid4())
    response = await push(http, emulator, headers_for(key, clock, apns_id=apns_id))
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert response.headers["apns-id"] == apns_id
    assert uuid.UUID(response.headers["apns-unique-id"])
    assert response.content == b""
    assert emulator.delivered(TOKEN) == [{"aps": {"alert": "hi"}}]


async def test_apns_id_is_generated_when_the_request_has_none(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await push(http, emulator, headers_for(key, clock))
    assert uuid.UUID(response.headers["apns-id"])


async def test_missing_bad_and_unknown_provider_tokens_are_refused(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    now = clock.now().timestamp()
    other_key = ApnsEmulator().new_signing_key(TEAM, KID)
    cases = {
        "MissingProviderToken": {"apns-topic": BUNDLE},
        "InvalidProviderToken": {"authorization": f"bearer {sign(other_key, now)}"},
    }
    for expected, headers in cases.items():
        response = await push(http, emulator, headers)
        assert (response.status_code, reason(response)) == (403, expected)
    for bad in (sign(key, now, kid="KEY9999999"), sign(key, now, team="TEAM999999"), "x.y.z"):
        response = await push(http, emulator, {"authorization": f"bearer {bad}"})
        assert (response.status_code, reason(response)) == (403, "InvalidProviderToken")


async def test_token_older_than_an_hour_is_expired_by_the_emulator_clock(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = headers_for(key, clock)
    assert (await push(http, emulator, headers)).status_code == 200
    clock.advance(3601)
    response = await push(http, emulator, headers)
    assert (response.status_code, reason(response)) == (403, "ExpiredProviderToken")


async def test_new_token_on_a_connection_within_20_minutes_is_too_many_updates(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    first = headers_for(key, clock)
    assert (await push(http, emulator, first)).status_code == 200
    clock.advance(60)
    second = headers_for(key, clock)
    response = await push(http, emulator, second)
    assert (response.status_code, reason(response)) == (429, "TooManyProviderTokenUpdates")
    assert (await push(http, emulator, first)).status_code == 200
    async with client(emulator.ca_file) as fresh_connection:
        assert (await push(fresh_connection, emulator, second)).status_code == 200
    clock.advance(20 * 60)
    assert (await push(http, emulator, headers_for(key, clock))).status_code == 200


async def test_another_teams_token_on_a_bound_connection_is_unrelated(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    other = emulator.new_signing_key("TEAM000002", "KEY0000002")
    assert (await push(http, emulator, headers_for(key, clock))).status_code == 200
    clock.advance(30 * 60)
    headers = headers_for(key, clock)
    headers["authorization"] = (
        f"bearer {sign(other, clock.now().timestamp(), team='TEAM000002', kid='KEY0000002')}"
    )
    response = await push(http, emulator, headers)
    assert (response.status_code, reason(response)) == (403, "UnrelatedKeyIdInToken")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"apns-topic": ""}, "MissingTopic"),
        ({"apns-topic": "com.other.app"}, "TopicDisallowed"),
        ({"apns-push-type": "voip"}, "BadTopic"),
        ({"apns-topic": BUNDLE + ".voip"}, "BadTopic"),
        ({"apns-push-type": "banner"}, "InvalidPushType"),
        ({"apns-priority": "7"}, "BadPriority"),
        ({"apns-push-type": "background", "apns-priority": "10"}, "BadPriority"),
        ({"apns-expiration": "tomorrow"}, "BadExpirationDate"),
        ({"apns-collapse-id": "c" * 65}, "BadCollapseId"),
        ({"apns-id": str(uuid.uuid4()).upper()}, "BadMessageId"),
        ({"apns-id": "not-a-uuid"}, "BadMessageId"),
    ],
)
async def test_malformed_headers_get_apples_400_reasons(
    emulator: ApnsEmulator,
    key: str,
    http: httpx.AsyncClient,
    clock: FakeClock,
    extra: dict[str, str],
    expected: str,
) -> None:
    headers = headers_for(key, clock)
    headers.update(extra)
    if headers["apns-topic"] == "":
        del headers["apns-topic"]
    response = await push(http, emulator, headers)
    assert (response.status_code, reason(response)) == (400, expected)


@pytest.mark.parametrize(
    ("push_type", "topic"),
    [
        ("voip", BUNDLE + ".voip"),
        ("complication", BUNDLE + ".complication"),
        ("fileprovider", BUNDLE + ".pushkit.fileprovider"),
        ("liveactivity", BUNDLE + ".push-type.liveactivity"),
        ("location", BUNDLE + ".location-query"),
        ("pushtotalk", BUNDLE + ".voip-ptt"),
    ],
)
async def test_push_types_are_accepted_on_their_suffixed_topics(
    emulator: ApnsEmulator,
    key: str,
    http: httpx.AsyncClient,
    clock: FakeClock,
    push_type: str,
    topic: str,
) -> None:
    headers = headers_for(key, clock, apns_push_type=push_type, apns_topic=topic)
    assert (await push(http, emulator, headers)).status_code == 200


async def test_repeated_header_is_duplicate_headers(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = [*headers_for(key, clock).items(), ("apns-priority", "10"), ("apns-priority", "5")]
    response = await http.post(
        f"{emulator.url}/3/device/{TOKEN}", headers=headers, content=b'{"aps":{}}'
    )
    assert (response.status_code, reason(response)) == (400, "DuplicateHeaders")


@pytest.mark.parametrize(
    ("body", "push_type", "status", "expected"),
    [
        (b"", "alert", 400, "PayloadEmpty"),
        (b"{not json", "alert", 400, "BadPayload"),
        (b'{"data": 1}', "alert", 400, "BadPayload"),
        (b'{"aps":{},"x":"' + b"y" * 4090 + b'"}', "alert", 413, "PayloadTooLarge"),
        (b'{"aps":{},"x":"' + b"y" * 5110 + b'"}', "voip", 413, "PayloadTooLarge"),
    ],
)
async def test_bodies_are_checked_for_presence_size_and_shape(
    emulator: ApnsEmulator,
    key: str,
    http: httpx.AsyncClient,
    clock: FakeClock,
    body: bytes,
    push_type: str,
    status: int,
    expected: str,
) -> None:
    topic = BUNDLE + (".voip" if push_type == "voip" else "")
    headers = headers_for(key, clock, apns_push_type=push_type, apns_topic=topic)
    response = await push(http, emulator, headers, body=body)
    assert (response.status_code, reason(response)) == (status, expected)


async def test_voip_payload_may_be_up_to_5120_bytes(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = b'{"aps":{},"x":"' + b"y" * (5120 - 17) + b'"}'
    assert len(body) == 5120
    headers = headers_for(key, clock, apns_push_type="voip", apns_topic=BUNDLE + ".voip")
    assert (await push(http, emulator, headers, body=body)).status_code == 200


async def test_paths_methods_and_token_formats_are_checked(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = headers_for(key, clock)
    got = await http.get(f"{emulator.url}/3/device/{TOKEN}", headers=headers)
    assert (got.status_code, reason(got)) == (405, "MethodNotAllowed")
    wrong = await http.post(f"{emulator.url}/2/device/{TOKEN}", headers=headers, content=b"{}")
    assert (wrong.status_code, reason(wrong)) == (404, "BadPath")
    empty = await push(http, emulator, headers, token="")
    assert (empty.status_code, reason(empty)) == (400, "MissingDeviceToken")
    short = await push(http, emulator, headers, token="abc123")
    assert (short.status_code, reason(short)) == (400, "BadDeviceToken")


async def test_unregistered_token_answers_410_with_a_millisecond_timestamp(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = headers_for(key, clock)
    emulator.unregister(TOKEN, at=datetime(2025, 12, 24, 18, 0, 0, 250000, tzinfo=UTC))
    response = await push(http, emulator, headers)
    assert response.status_code == 410
    assert response.json() == {"reason": "Unregistered", "timestamp": 1766599200250}
    emulator.expire(TOKEN)
    assert reason(await push(http, emulator, headers)) == "ExpiredToken"


async def test_token_bound_to_another_app_is_not_for_topic(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    emulator.topics.add("com.example.other")
    emulator.bind(TOKEN, "com.example.other")
    response = await push(http, emulator, headers_for(key, clock))
    assert (response.status_code, reason(response)) == (400, "DeviceTokenNotForTopic")


async def test_token_state_can_be_set_over_http_for_outside_clients(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    control = await http.put(
        f"{emulator.url}/_emulator/apns/tokens/{TOKEN}", json={"state": "unregistered"}
    )
    assert control.status_code == 204
    assert (await push(http, emulator, headers_for(key, clock))).status_code == 410


async def test_faults_replace_the_answer_with_status_reason_and_retry_after(
    emulator: ApnsEmulator, key: str, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    emulator.state.faults.set(
        TOKEN, Fault(status=503, headers={"retry-after": "7"}, delay=0.05, times=1)
    )
    emulator.state.faults.set_all(Fault(status=429, body={"reason": "TooManyRequests"}, times=1))
    headers = headers_for(key, clock)
    first = await push(http, emulator, headers)
    assert (first.status_code, reason(first), first.headers["retry-after"]) == (
        503,
        "ServiceUnavailable",
        "7",
    )
    second = await push(http, emulator, headers)
    assert (second.status_code, reason(second)) == (429, "TooManyRequests")
    assert (await push(http, emulator, headers)).status_code == 200
    assert [r.status for r in emulator.state.requests] == [503, 429, 200]


async def test_certificate_mode_requires_a_client_certificate_from_its_ca(tmp_path: Path) -> None:
    async with ApnsEmulator(topics=[BUNDLE], certificate_auth=True) as emulator:
        cert, key = emulator.issue_certificate(BUNDLE)
        (tmp_path / "c.pem").write_text(cert)
        (tmp_path / "k.pem").write_text(key)
        context = ssl.create_default_context(cafile=str(emulator.ca_file))
        context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        async with httpx.AsyncClient(http2=True, verify=context) as http:
            response = await http.post(
                f"{emulator.url}/3/device/{TOKEN}", content=b'{"aps":{"alert":"hi"}}'
            )
        assert response.status_code == 200
        async with client(emulator.ca_file) as anonymous:
            with pytest.raises(httpx.HTTPError):
                await anonymous.post(f"{emulator.url}/3/device/{TOKEN}", content=b"{}")


# --- aioapns, a third-party client, keeps the emulator honest ---------------------------


def aioapns_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_alpn_protocols(["h2"])
    return context


def point_aioapns_at(monkeypatch: pytest.MonkeyPatch, emulator: ApnsEmulator) -> None:
    for protocol in (APNsProductionClientProtocol, APNsDevelopmentClientProtocol):
        monkeypatch.setattr(protocol, "APNS_SERVER", "127.0.0.1")
        monkeypatch.setattr(protocol, "APNS_PORT", emulator.server.port)


async def test_aioapns_with_a_signing_key_delivers_and_sees_unregistered_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ApnsEmulator(topics=[BUNDLE], clock=SystemClock(), raw_h2=True) as emulator:
        point_aioapns_at(monkeypatch, emulator)
        apns = APNs(
            key=emulator.new_signing_key(TEAM, KID),
            key_id=KID,
            team_id=TEAM,
            topic=BUNDLE,
            ssl_context=aioapns_context(emulator.ca_file),
        )
        burst = await asyncio.gather(
            *(
                apns.send_notification(
                    NotificationRequest(
                        device_token=TOKEN,
                        message={"aps": {"alert": {"title": "Hello", "body": "from aioapns"}}},
                        push_type=PushType.ALERT,
                        collapse_key="greeting",
                        priority=10,
                    )
                )
                for _ in range(10)
            )
        )
        emulator.unregister(TOKEN, at=datetime(2026, 1, 2, tzinfo=UTC))
        gone = await apns.send_notification(
            NotificationRequest(device_token=TOKEN, message={"aps": {"badge": 1}})
        )
        apns.pool.close()
    assert all(sent.is_successful for sent in burst), [sent.description for sent in burst]
    assert (gone.status, gone.description, gone.timestamp) == ("410", "Unregistered", 1767312000000)
    first = emulator.state.requests[0]
    assert first.headers["apns-collapse-id"] == "greeting"
    assert first.http_version == "2"


async def test_aioapns_with_a_client_certificate_delivers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with ApnsEmulator(topics=[BUNDLE], certificate_auth=True, raw_h2=True) as emulator:
        point_aioapns_at(monkeypatch, emulator)
        cert, key = emulator.issue_certificate(BUNDLE)
        bundle = tmp_path / "push.pem"
        bundle.write_text(cert + key)
        apns = APNs(
            client_cert=str(bundle),
            topic=BUNDLE,
            use_sandbox=True,
            ssl_context=aioapns_context(emulator.ca_file),
        )
        result = await apns.send_notification(
            NotificationRequest(device_token=TOKEN, message={"aps": {"alert": "cert"}})
        )
        apns.pool.close()
    assert result.is_successful, result.description
    assert "authorization" not in emulator.state.requests[0].headers


# --- the raw HTTP/2 server: connection-level behaviour ----------------------------------


class H2Client:
    """A bare h2 client, to see frames an HTTP library would hide."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.events: list[Any] = []

    @classmethod
    async def connect(cls, emulator: ApnsEmulator) -> H2Client:
        context = ssl.create_default_context(cafile=str(emulator.ca_file))
        context.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", emulator.server.port, ssl=context
        )
        client = cls(reader, writer)
        client.flush()
        return client

    def flush(self) -> None:
        self.writer.write(self.h2.data_to_send())

    def post(self, headers: dict[str, str], body: bytes = b'{"aps":{"alert":"hi"}}') -> int:
        stream_id = self.h2.get_next_available_stream_id()
        request = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "127.0.0.1"),
            (":path", f"/3/device/{TOKEN}"),
            *headers.items(),
        ]
        self.h2.send_headers(stream_id, request)
        self.h2.send_data(stream_id, body, end_stream=True)
        self.flush()
        return stream_id

    async def until(self, predicate: Any) -> Any:
        async with asyncio.timeout(5):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                self.events.extend(self.h2.receive_data(data))
                self.flush()

    def close(self) -> None:
        self.writer.close()


def max_streams(event: Any) -> int | None:
    if isinstance(event, RemoteSettingsChanged):
        changed = event.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
        return changed.new_value if changed else None
    return None


@pytest.fixture
async def raw(clock: FakeClock) -> AsyncIterator[ApnsEmulator]:
    async with ApnsEmulator(topics=[BUNDLE], clock=clock, raw_h2=True) as emu:
        yield emu


async def test_raw_server_allows_one_stream_until_a_valid_jwt_succeeds(
    raw: ApnsEmulator, clock: FakeClock
) -> None:
    key = raw.new_signing_key(TEAM, KID)
    h2 = await H2Client.connect(raw)
    try:
        headers = headers_for(key, clock)
        first, second = h2.post(headers), h2.post(headers)  # before the server's SETTINGS
        limit = await h2.until(lambda e: max_streams(e) is not None)
        assert max_streams(limit) == 1
        refused = await h2.until(lambda e: isinstance(e, StreamReset))
        assert (refused.stream_id, refused.error_code) == (second, ErrorCodes.REFUSED_STREAM)
        await h2.until(lambda e: isinstance(e, StreamEnded) and e.stream_id == first)
        assert await h2.until(lambda e: max_streams(e) == 1000)
        streams = [h2.post(headers) for _ in range(5)]
        for stream_id in streams:
            await h2.until(lambda e, s=stream_id: isinstance(e, StreamEnded) and e.stream_id == s)
    finally:
        h2.close()
    answered = [e for e in h2.events if isinstance(e, ResponseReceived)]
    assert [dict(e.headers)[":status"] for e in answered] == ["200"] * 6
    assert not [e for e in h2.events if isinstance(e, DataReceived)]  # 200 is headers only
    assert raw.server.refused_streams == 1


async def test_raw_server_closes_connections_with_a_json_goaway_reason(
    raw: ApnsEmulator, clock: FakeClock
) -> None:
    key = raw.new_signing_key(TEAM, KID)
    h2 = await H2Client.connect(raw)
    try:
        stream_id = h2.post(headers_for(key, clock))
        await h2.until(lambda e: isinstance(e, StreamEnded) and e.stream_id == stream_id)
        raw.goaway("Shutdown")
        goaway = await h2.until(lambda e: isinstance(e, ConnectionTerminated))
    finally:
        h2.close()
    assert goaway.error_code == ErrorCodes.NO_ERROR
    assert json.loads(goaway.additional_data) == {"reason": "Shutdown"}
    assert goaway.last_stream_id == stream_id


async def test_raw_server_answers_errors_with_a_json_body(
    raw: ApnsEmulator, clock: FakeClock
) -> None:
    h2 = await H2Client.connect(raw)
    try:
        stream_id = h2.post({"apns-topic": BUNDLE})
        await h2.until(lambda e: isinstance(e, StreamEnded) and e.stream_id == stream_id)
    finally:
        h2.close()
    response = next(e for e in h2.events if isinstance(e, ResponseReceived))
    data = b"".join(e.data for e in h2.events if isinstance(e, DataReceived))
    assert dict(response.headers)[":status"] == "403"
    assert json.loads(data) == {"reason": "MissingProviderToken"}
