"""The script editor's form, read into the model's JSON shape and back: one posted form holds the whole
draft (`steps-{i}-{field}`, options `steps-{i}-opt-{j}-…`, rules `steps-{i}-rule-{j}-…`), so adding,
removing or moving a step never loses what was typed. The page renders from the same plain dicts, which
lets a form the model refuses come back as it was typed, with the reason.

Literals (a rule's value, a capture's value or map) are read as JSON scalars when they are one (`3000`,
`true`) and as text otherwise (`yes`); `"3000"` in quotes stays text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping
from pydantic import ValidationError

from scripts_engine.model import MAX_OPTIONS, MAX_RULES, MAX_STEPS, ScriptDraft
from switchboard.errors import N_, Invalid

MAX_ERRORS = 5
MAX_CONDITION_TEXT = 4000
STEP_FIELDS = ("id", "kind", "title")
KINDS = ("say", "ask", "branch", "capture", "action", "end")
ACTIONS = ("create_task", "move_deal", "send_template", "handover")
APPLIES = ("channels", "segments", "products", "deal_stages", "languages")


Form = MultiMapping[object]  # a posted form (`await request.post()`)


def _text(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _count(form: Form, name: str, limit: int) -> int:
    raw = _text(form, name)
    return min(int(raw), limit) if raw.isdigit() and len(raw) < 6 else 0


def literal(text: str) -> Any:
    """`3000` → 3000, `true` → True, `"x"` → "x", anything else → the text itself."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def show_literal(value: Any) -> str:
    """How the form shows a literal so that `literal` reads it back the same."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if literal(value) != value else value
    if isinstance(value, list):
        return ", ".join(show_literal(v) for v in value)
    return "" if value is None else json.dumps(value)


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value not in ("", None):
        out[name] = value


def _options(form: Form, p: str) -> list[dict[str, Any]]:
    out = []
    for j in range(_count(form, f"{p}opts", MAX_OPTIONS + 1)):
        option: dict[str, Any] = {}
        for name in ("value", "label", "next"):
            _put(option, name, _text(form, f"{p}opt-{j}-{name}").strip())
        if option.get("value") or option.get("label"):
            option.setdefault("label", "")
            out.append(option)
    return out


def _condition(form: Form, q: str) -> dict[str, Any] | None:
    """A rule's condition: the JSON of a compound one (`all` / `any`), or one comparison's three inputs."""
    compound = _text(form, f"{q}when").strip()
    if compound:
        if len(compound) > MAX_CONDITION_TEXT:
            raise Invalid(N_("At most %(n)s characters."), field=f"{q}when", n=MAX_CONDITION_TEXT)
        try:
            value = json.loads(compound)
        except (ValueError, RecursionError):
            raise Invalid(N_("The condition is not valid JSON."), field=f"{q}when") from None
        return value if isinstance(value, dict) else {"field": compound}
    field, op = _text(form, f"{q}field").strip(), _text(form, f"{q}op").strip()
    if not field:
        return None
    condition: dict[str, Any] = {"field": field, "op": op or "eq"}
    raw = _text(form, f"{q}value")
    if op in ("in", "not_in"):
        condition["value"] = [literal(v) for v in raw.split(",") if v.strip()]
    elif raw.strip():
        condition["value"] = literal(raw)
    return condition


def _rules(form: Form, p: str) -> list[dict[str, Any]]:
    out = []
    for j in range(_count(form, f"{p}rules", MAX_RULES + 1)):
        q = f"{p}rule-{j}-"
        when = _condition(form, q)
        if when is not None:
            rule: dict[str, Any] = {"when": when}
            _put(rule, "next", _text(form, f"{q}next").strip())
            out.append(rule)
    return out


def _map(text: str) -> dict[str, Any] | None:
    """`answer = value` lines → a capture's value map."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            out[key.strip()] = literal(value)
    return out or None


def _action(form: Form, p: str) -> dict[str, Any]:
    kind = _text(form, f"{p}do-type")
    do: dict[str, Any] = {"type": kind}
    if kind == "create_task":
        do["title"] = _text(form, f"{p}do-title")
        _put(do, "task_kind", _text(form, f"{p}do-task_kind").strip())
        hours = _text(form, f"{p}do-due_in_hours").strip()
        _put(do, "due_in_hours", literal(hours) if hours else None)
        _put(do, "note", _text(form, f"{p}do-note"))
    elif kind == "move_deal":
        do["stage"] = _text(form, f"{p}do-stage").strip()
    elif kind == "send_template":
        do["template"] = _text(form, f"{p}do-template").strip()
    elif kind == "handover":
        do["script"] = _text(form, f"{p}do-script").strip()
    return do


def _step(form: Form, i: int) -> dict[str, Any]:
    p = f"steps-{i}-"
    kind = _text(form, f"{p}kind")
    step: dict[str, Any] = {"id": _text(form, f"{p}id").strip(), "kind": kind}
    _put(step, "title", _text(form, f"{p}title").strip())
    if kind in ("say", "ask", "end"):
        _put(step, "text", _text(form, f"{p}text"))
    if kind == "ask":
        answer_type = _text(form, f"{p}answer-type")
        if answer_type:
            answer: dict[str, Any] = {"type": answer_type}
            _put(answer, "options", _options(form, p))
            if _text(form, f"{p}answer-integer"):
                answer["integer"] = True
            for bound in ("min", "max"):
                _put(answer, bound, _text(form, f"{p}answer-{bound}").strip())
            step["answer"] = answer
    elif kind == "branch":
        _put(step, "rules", _rules(form, p))
        _put(step, "default", _text(form, f"{p}default").strip())
    elif kind == "capture":
        for name in ("entity", "field", "answer"):
            _put(step, name, _text(form, f"{p}{name}").strip())
        value = _text(form, f"{p}value")
        _put(step, "value", literal(value) if value.strip() else None)
        _put(step, "map", _map(_text(form, f"{p}map")))
    elif kind == "action":
        step["do"] = _action(form, p)
    elif kind == "end":
        _put(step, "outcome", _text(form, f"{p}outcome"))
        _put(step, "reason", _text(form, f"{p}reason").strip())
    if kind in ("say", "ask", "capture", "action"):
        _put(step, "next", _text(form, f"{p}next").strip())
    return step


def read(form: Form, key: str) -> dict[str, Any]:
    """The posted editor as a script in the model's JSON shape (not validated yet); `key` is the version's
    own — a draft cannot move to another script."""
    data: dict[str, Any] = {"key": key, "name": _text(form, "name").strip()}
    _put(data, "description", _text(form, "description").strip())
    applies = {}
    for name in APPLIES:
        values = [v.strip() for v in form.getall(f"applies-{name}", []) if isinstance(v, str) and v.strip()]
        extra = _text(form, f"applies-{name}-other")
        values += [v.strip() for v in extra.split(",") if v.strip() and v.strip() not in values]
        if values:
            applies[name] = list(dict.fromkeys(values))
    _put(data, "applies", applies)
    _put(data, "start", _text(form, "start").strip())
    data["steps"] = [_step(form, i) for i in range(_count(form, "steps-count", MAX_STEPS + 1))]
    return data


def apply(data: dict[str, Any], op: str, new_kind: str = "say") -> None:
    """The editor's buttons: `add`, `remove-<i>`, `up-<i>`, `down-<i>` (anything else: just save)."""
    steps: list[dict[str, Any]] = data["steps"]
    if op == "add":
        taken = {s.get("id") for s in steps}
        n = len(steps) + 1
        while f"step_{n}" in taken:
            n += 1
        kind = new_kind if new_kind in KINDS else "say"
        step: dict[str, Any] = {"id": f"step_{n}", "kind": kind}
        if kind == "end":
            step["outcome"] = "success"
        elif kind == "action":
            step["do"] = {"type": "create_task", "title": "…"}
        elif kind == "capture":
            step |= {"entity": "lead", "field": "amount"}
        steps.append(step)
        if not data.get("start"):
            data["start"] = step["id"]
        return
    how, _, index = op.partition("-")
    if not index.isdigit() or not 0 <= int(index) < len(steps):
        return
    i = int(index)
    if how == "remove":
        steps.pop(i)
    elif how == "up" and i > 0:
        steps[i - 1], steps[i] = steps[i], steps[i - 1]
    elif how == "down" and i < len(steps) - 1:
        steps[i + 1], steps[i] = steps[i], steps[i + 1]


def validated(data: Mapping[str, Any]) -> ScriptDraft:
    """The model, or `Invalid` naming the first few inputs it refuses (by step and field)."""
    try:
        return ScriptDraft.from_data(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        steps = data.get("steps", [])
        parts = []
        for error in errors[:MAX_ERRORS]:
            loc = list(error.get("loc", ()))
            if len(loc) > 1 and loc[0] == "steps" and isinstance(loc[1], int) and loc[1] < len(steps):
                loc[1] = steps[loc[1]].get("id") or f"#{loc[1] + 1}"
                loc = [part for part in loc if part not in KINDS]  # pydantic names the union's member
            parts.append(f"{'.'.join(str(x) for x in loc) or 'script'}: {error['msg']}")
        more = len(errors) - MAX_ERRORS
        detail = "; ".join(parts) + (f"; … ({more} more)" if more > 0 else "")
        raise Invalid(N_("The script cannot be saved: %(error)s"), field="script", error=detail) from None


def step_edges(step: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A step's outgoing edges (label, target) from its plain form, as `scripts_engine.model.edges`
    reads them from the model, so a form the model refused still shows its edges."""
    out: list[tuple[str, str]] = []
    kind = step.get("kind")
    if kind == "ask":
        answer = step.get("answer") or {}
        out += [(f"= {o.get('value', '')}", o["next"]) for o in answer.get("options", []) if o.get("next")]
    if kind == "branch":
        out += [(f"#{i + 1}", r["next"]) for i, r in enumerate(step.get("rules", [])) if r.get("next")]
        if step.get("default"):
            out.append(("default", step["default"]))
    elif kind == "action" and (step.get("do") or {}).get("type") == "handover":
        pass
    elif kind != "end" and step.get("next"):
        out.append(("next", step["next"]))
    return out


def condition_json(when: Any) -> str:
    """A compound condition as the editor's JSON text area shows it."""
    return json.dumps(when, ensure_ascii=False)
