"""The sample Asterisk configs in `docker/asterisk/` agree with what the hub expects by default: the AMI
port and user with the classes the hub reads and writes, the FastAGI address and script, the channel
variables, the MixMonitor file name, the click-to-call context, the Cdr Linkedid mapping — and carry no
real secret."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from channels.asterisk.agi import SCRIPT
from switchboard.settings import Settings
from webui.views.calls import TASK_VARIABLE

SAMPLES = Path(__file__).resolve().parents[2] / "docker" / "asterisk"
RECORDED = Path(__file__).resolve().parents[1] / "channels" / "asterisk" / "fixtures" / "configs"


@dataclass
class Section:
    name: str
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return next((value for name, value in self.options if name == key), None)

    def all(self, key: str) -> list[str]:
        return [value for name, value in self.options if name == key]


def parse(path: Path) -> list[Section]:
    """Asterisk's config syntax, as much as these files use: `[name](template)`, `key = value`,
    `key => value`, `;` comments (also after a value)."""
    sections: list[Section] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            sections.append(Section(header.group(1)))
            continue
        key, sep, value = line.partition("=")
        assert sep and sections, f"{path.name}: cannot read {raw!r}"
        sections[-1].options.append((key.strip(), value.lstrip(">").strip()))
    return sections


def section(sections: list[Section], name: str) -> Section:
    found = [s for s in sections if s.name == name]
    assert found, f"no [{name}]"
    return found[0]


@pytest.fixture(scope="module")
def defaults() -> Settings:
    return Settings(_env_file=None)


def test_every_sample_config_is_there_with_a_readme() -> None:
    names = {p.name for p in SAMPLES.iterdir()}
    assert {"manager.conf", "pjsip.conf", "extensions.conf", "cdr_manager.conf", "README.md"} <= names


def test_the_ami_user_matches_the_hubs_defaults_and_may_do_what_the_hub_needs(defaults: Settings) -> None:
    conf = parse(SAMPLES / "manager.conf")
    general = section(conf, "general")
    assert general.get("enabled") == "yes"
    assert int(general.get("port") or 0) == defaults.ami_port
    user = section(conf, defaults.ami_username)
    read = set((user.get("read") or "").split(","))
    write = set((user.get("write") or "").split(","))
    # call: the call events; agent: queue events; dialplan: VarSet (target, DIALSTATUS, MIXMONITOR_FILENAME);
    # cdr: Cdr; system: FullyBooted / Shutdown; reporting: CoreShowChannels after a reconnect.
    assert {"call", "agent", "dialplan", "cdr", "originate", "system", "reporting"} <= read
    assert {"originate", "call"} <= write
    assert "all" not in read | write and "command" not in write  # no shell through AMI
    recorded = section(parse(RECORDED / "manager.conf"), "hub")
    assert read >= set((recorded.get("read") or "").split(","))  # at least what the recordings were made with


def test_no_real_secret_is_shipped() -> None:
    manager = section(parse(SAMPLES / "manager.conf"), "hub")
    assert "CHANGE-ME" in (manager.get("secret") or "")
    passwords = [s.get("password") for s in parse(SAMPLES / "pjsip.conf") if s.get("password")]
    assert passwords and all("CHANGE-ME" in (p or "") for p in passwords)
    assert "hubsecret" not in (SAMPLES / "manager.conf").read_text()


def test_inbound_calls_ask_the_hubs_fastagi_route_and_fall_back_without_an_answer(defaults: Settings) -> None:
    text = (SAMPLES / "extensions.conf").read_text()
    inbound = section(parse(SAMPLES / "extensions.conf"), "from-trunk")
    steps = inbound.all("exten") + inbound.all("same")
    assert any(f"AGI(agi://hub:{defaults.agi_port}/{SCRIPT})" in step for step in steps)
    agi = next(i for i, step in enumerate(steps) if "AGI(" in step)
    guard = next(i for i, step in enumerate(steps) if '"${SWITCHBOARD_TARGET}" = ""' in step)
    dial = next(i for i, step in enumerate(steps) if "Dial(${SWITCHBOARD_TARGET}" in step)
    assert agi < guard < dial  # an empty target (or no hub) never reaches Dial
    assert any("Goto(switchboard-fallback" in step for step in steps)
    assert "${SWITCHBOARD_REASON}" in text
    fallback = section(parse(SAMPLES / "extensions.conf"), "switchboard-fallback")
    assert any("Hangup()" in step for step in fallback.all("same"))


def test_every_call_is_recorded_under_the_name_the_hub_expects() -> None:
    conf = parse(SAMPLES / "extensions.conf")
    for context in ("from-trunk", "outbound"):
        steps = section(conf, context).all("same")
        assert any(step.endswith("MixMonitor(${UNIQUEID}.wav)") for step in steps), context
    assert "SWITCHBOARD_RECORDINGS_DIR" in (SAMPLES / "extensions.conf").read_text()


def test_click_to_call_has_the_context_the_hub_originates_into(defaults: Settings) -> None:
    conf = parse(SAMPLES / "extensions.conf")
    outbound = section(conf, defaults.ami_originate_context)
    # The hub sends the customer's E.164 digits without "+": a `_X.` pattern matches them.
    assert outbound.all("exten")[0].startswith("_X.,1,")
    steps = outbound.all("same")
    assert any("Dial(PJSIP/${EXTEN}@trunk" in step for step in steps)
    assert TASK_VARIABLE in outbound.all("exten")[0]
    trunk_sections = [s for s in parse(SAMPLES / "pjsip.conf") if s.name == "trunk"]
    assert {s.get("type") for s in trunk_sections} >= {"aor", None}  # the endpoint (from a template) and aor
    assert section(parse(SAMPLES / "pjsip.conf"), "trunk-identify").get("endpoint") == "trunk"


def test_cdr_events_carry_the_linkedid() -> None:
    conf = parse(SAMPLES / "cdr_manager.conf")
    assert section(conf, "general").get("enabled") == "yes"
    assert ("linkedid", "LinkedID") in section(conf, "mappings").options


def test_phones_keep_media_through_asterisk_for_recording_and_chanspy() -> None:
    conf = parse(SAMPLES / "pjsip.conf")
    assert section(conf, "endpoint-common").get("direct_media") == "no"
    endpoints = {s.name for s in conf if s.get("context") == "from-agents"}
    assert {"1001", "1002", "9001"} <= endpoints
