"""Many simultaneous calls made from the real Asterisk 20 recordings: each copy of a recorded scenario gets
its own Uniqueids / Linkedids, channel names, bridge ids, click-to-call and ChanSpy ids, customer numbers and
customer names (Latin, Romanian and Cyrillic), and the copies' event blocks are merged in time order.

Why: one recording holds one call (or ten); the hub must follow dozens at once without mixing their events
up. The copies start at random offsets within `window` seconds, so many of them share an epoch second in
their Uniqueids (what panoramisk's `CallManager` collides on), several start at the very same instant, and
the merged stream interleaves their blocks at a millisecond grain (each block also gets a little `jitter`,
never reordering a call's own events).
Everything is seeded: the same arguments give the same bytes, in this process or another one.

`build_mix(...).fixture()` is an `AmiFixture` that `FakeAmi.replay` sends; `messages()` is what a
`CallTracker` is fed directly. With `timestamps=True` every block carries the `Timestamp` header Asterisk
adds with `timestampevents = yes` (seconds since the epoch, `epoch` + the block's mix time), so a reader that
receives the stream faster than recorded can still tell when each event happened.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from tests.fakes.ami_server import SCENARIOS, AmiFixture, Block, load_fixture

EPOCH = 1_800_000_000  # 2027-01-15 08:00 UTC: mix time 0, and the epoch second of the first Uniqueids
_ID_KEY = re.compile(r"^[A-Za-z-]*(?:uniqueid|linkedid)$", re.IGNORECASE)
_NUMERIC_ID = re.compile(r"^(\d{9,11})\.(\d+)$")
_CHANNEL = r"\b[A-Z][A-Za-z0-9]*/[A-Za-z0-9_]+-[0-9a-f]{8}\b"
_BRIDGE = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
_CUSTOMER_NUMBER = r"(?<!\d)7916\d{7}(?!\d)"  # every recorded customer is +7 916 …; the DIDs are 7495 …

# 75 distinct customer names: Cyrillic, Romanian (with ș ț ă â î) and other accented Latin ones.
_NAME_POOLS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("Алексей", "Дмитрий", "Сергей", "Андрей", "Михаил"),
        ("Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов"),
    ),
    (
        ("Ion", "Mihai", "Ștefan", "Andrei", "Vasile"),
        ("Rusu", "Munteanu", "Țurcanu", "Cebotari", "Brânzan"),
    ),
    (
        ("José", "Zoë", "Łukasz", "Søren", "Ana-Maria"),
        ("Núñez", "Müller", "Öztürk", "Dvořák", "Lăcătuș"),
    ),
)


def customer_name(n: int) -> str:
    """The `n`-th made-up customer name (75 distinct ones, then they repeat)."""
    firsts, lasts = _NAME_POOLS[n % len(_NAME_POOLS)]
    k = (n // len(_NAME_POOLS)) % (len(firsts) * len(lasts))
    return f"{firsts[k % len(firsts)]} {lasts[k // len(firsts)]}"


def customer_number(n: int) -> str:
    """The `n`-th made-up customer number, as the trunk presents it (international, no `+`)."""
    return f"7916{1_000_000 + n:07d}"


@dataclass(frozen=True)
class _Recording:
    """What is rewritten in one recording, found once."""

    fixture: AmiFixture
    ids: tuple[str, ...]  # every Uniqueid / Linkedid value, numeric or ChannelId
    first_epoch: int
    calls: tuple[str, ...]  # Linkedids of the customer calls (ChanSpy's own channel is not one)
    names: tuple[str, ...]  # customer names (CallerIDName of an inbound call's first leg)
    texts: tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...]  # per event: text, (kind, token)


@cache
def _recording(name: str) -> _Recording:
    fixture = load_fixture(name)
    ids: dict[str, None] = {}
    calls: dict[str, None] = {}
    names: dict[str, None] = {}
    for block in fixture.events:
        headers = block.headers
        for key, value in headers.items():
            if _ID_KEY.match(key) and value.strip() and key.lower() != "bridgeuniqueid":
                ids[value.strip()] = None
        if block.name == "Newchannel" and headers.get("Uniqueid") == headers.get("Linkedid"):
            linkedid = headers["Linkedid"]
            if not linkedid.startswith("spy-"):
                calls[linkedid] = None
            caller_name = headers.get("CallerIDName", "")
            if headers.get("Channel", "").startswith("PJSIP/trunk-") and caller_name not in ("", "<unknown>"):
                names[caller_name] = None
    epochs = [int(m.group(1)) for i in ids if (m := _NUMERIC_ID.match(i))]
    literals = sorted(ids, key=len, reverse=True)
    pattern = re.compile(
        "|".join(
            [
                r"(?P<id>(?<![\w.-])(?:" + "|".join(map(re.escape, literals)) + r")(?![\w]))",
                r"(?P<name>" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + ")"
                if names
                else r"(?P<name>(?!))",
                f"(?P<channel>{_CHANNEL})",
                f"(?P<bridge>{_BRIDGE})",
                f"(?P<number>{_CUSTOMER_NUMBER})",
            ]
        )
    )
    texts = []
    for block in fixture.events:
        text = block.data.decode("utf-8")
        pieces, tokens, at = [], [], 0
        for match in pattern.finditer(text):
            pieces.append(text[at : match.start()])
            tokens.append((match.lastgroup or "", match.group(0)))
            at = match.end()
        pieces.append(text[at:])
        texts.append((tuple(pieces), tuple(tokens)))
    return _Recording(fixture, tuple(ids), min(epochs, default=0), tuple(calls), tuple(names), tuple(texts))


def calls_in(scenario: str) -> int:
    """How many customer calls one copy of `scenario` holds (10 for `concurrent_10`)."""
    return len(_recording(scenario).calls)


@dataclass(frozen=True)
class CallCopy:
    """One copy of a recorded scenario inside a mix: its calls, what was renamed, its blocks at mix times."""

    scenario: str
    index: int
    start: float  # seconds into the mix at which its first event is sent
    linkedids: tuple[str, ...]  # its customer calls, renamed
    renamed: dict[str, str]  # every rewritten value: recorded -> in this copy
    blocks: tuple[Block, ...]

    def messages(self) -> list[tuple[float, dict[str, str]]]:
        """This copy alone, at the same mix times: what the mixed calls are compared with."""
        return [(block.t, block.headers) for block in self.blocks]


@dataclass(frozen=True)
class Mix:
    copies: tuple[CallCopy, ...]
    blocks: tuple[Block, ...]  # every copy's blocks, merged in time order
    epoch: int = EPOCH  # Unix time of mix time 0

    @property
    def linkedids(self) -> list[str]:
        return [linkedid for copy in self.copies for linkedid in copy.linkedids]

    def fixture(self) -> AmiFixture:
        """The merged stream as a recording `FakeAmi.replay` can send (all of it is events)."""
        return AmiFixture("mix", self.blocks)

    def messages(self) -> list[tuple[float, dict[str, str]]]:
        return [(block.t, block.headers) for block in self.blocks]

    def data(self) -> bytes:
        return b"".join(block.data for block in self.blocks)


class _Counters:
    """Asterisk's process-wide counters (Uniqueid sequence numbers, channel name suffixes) and the made-up
    customers'."""

    def __init__(self) -> None:
        self.sequence = itertools.count(1000)
        self.channel = itertools.count(0x1000)
        self.number = itertools.count(0)
        self.name = itertools.count(0)


def _copy(
    scenario: str,
    index: int,
    start: float,
    *,
    rng: random.Random,
    counters: _Counters,
    jitter: float,
    timestamps: bool,
    epoch: int,
) -> CallCopy:
    recording = _recording(scenario)
    base_epoch = epoch + int(start)
    renamed: dict[str, str] = {}
    numeric = sorted(
        ((int(m.group(1)), int(m.group(2)), i) for i in recording.ids if (m := _NUMERIC_ID.match(i))),
        key=lambda item: (item[1], item[0]),
    )
    for old_epoch, _, old in numeric:  # in recorded order, so sequence numbers keep rising with time
        renamed[old] = f"{old_epoch - recording.first_epoch + base_epoch}.{next(counters.sequence)}"
    for old in recording.ids:
        if old not in renamed:  # a ChannelId the hub chose: c2c-…, spy-…
            prefix = old.split("-", 1)[0] + "-" if "-" in old else ""
            renamed[old] = prefix + f"{rng.getrandbits(48):012x}"
    for old in recording.names:
        renamed[old] = customer_name(next(counters.name))

    def rename(kind: str, old: str) -> str:
        new = renamed.get(old)
        if new is None:
            if kind == "channel":
                new = f"{old.rsplit('-', 1)[0]}-{next(counters.channel):08x}"
            elif kind == "bridge":
                new = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            elif kind == "number":
                new = customer_number(next(counters.number))
            else:  # pragma: no cover - every id and name was given a new value above
                raise AssertionError(old)
            renamed[old] = new
        return new

    events = recording.fixture.events
    first = events[0].t
    blocks: list[Block] = []
    t_previous = 0.0
    for block, (pieces, tokens) in zip(events, recording.texts, strict=True):
        t = max(t_previous, start + (block.t - first) + rng.uniform(0, jitter))
        t_previous = t
        parts = [pieces[0]]
        for (kind, old), piece in zip(tokens, pieces[1:], strict=True):
            parts += (rename(kind, old), piece)
        text = "".join(parts)
        if timestamps:
            text = _stamp(text, epoch + t)
        blocks.append(Block(t, block.kind, block.name, text.encode("utf-8")))
    linkedids = tuple(renamed[linkedid] for linkedid in recording.calls)
    return CallCopy(scenario, index, start, linkedids, renamed, tuple(blocks))


def _stamp(text: str, at: float) -> str:
    """Add `Timestamp:` after `Privilege:`, where Asterisk puts it."""
    head, sep, rest = text.partition("\r\nPrivilege: ")
    if not sep:
        line, _, rest = text.partition("\r\n")
        return f"{line}\r\nTimestamp: {at:.6f}\r\n{rest}"
    privilege, _, rest = rest.partition("\r\n")
    return f"{head}\r\nPrivilege: {privilege}\r\nTimestamp: {at:.6f}\r\n{rest}"


def _choose(calls: int, scenarios: Sequence[str]) -> Iterator[str]:
    """Scenarios in turn until exactly `calls` calls (a scenario holding more than what is left is
    skipped)."""
    left = calls
    if calls < 1 or not scenarios:
        return
    if left < min(calls_in(name) for name in scenarios):
        raise ValueError(f"no scenario fits in {calls} call(s)")
    for name in itertools.cycle(scenarios):
        if calls_in(name) <= left:
            left -= calls_in(name)
            yield name
            if left == 0:
                return


def build_mix(
    calls: int = 50,
    *,
    seed: int = 0,
    window: float = 2.0,
    grid: float | None = 0.1,
    jitter: float = 0.005,
    scenarios: Sequence[str] = SCENARIOS,
    timestamps: bool = False,
    epoch: int = EPOCH,
) -> Mix:
    """`calls` simultaneous calls from copies of `scenarios` (taken in turn: every recorded outcome is in
    there), each copy starting at a random offset within `window` seconds, rounded to `grid` (so that
    several copies start at the very same instant and their bursts of events interleave); each block is
    then moved later by up to `jitter` seconds, never past a later block of its own copy. Blocks are merged
    by time."""
    rng = random.Random(seed)
    counters = _Counters()
    copies = []
    for index, scenario in enumerate(_choose(calls, scenarios)):
        start = rng.uniform(0, window)
        if grid:
            start = round(start / grid) * grid
        copies.append(
            _copy(
                scenario,
                index,
                start,
                rng=rng,
                counters=counters,
                jitter=jitter,
                timestamps=timestamps,
                epoch=epoch,
            )
        )
    order = sorted(
        (
            (block.t, copy.index, position, block)
            for copy in copies
            for position, block in enumerate(copy.blocks)
        ),
        key=lambda item: item[:3],
    )
    return Mix(tuple(copies), tuple(item[3] for item in order), epoch)
