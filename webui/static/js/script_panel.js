// The sales-script side panel of the inbox: for the open conversation, the running script's current step
// (what to say, the question with its answer buttons or a typed answer, back and leave), or the published
// scripts that fit it to start one. "Put in the reply box" copies a step's text into the reply box.
// inbox.js says which conversation is open with an `inbox:thread` event. While the agent is on a call with
// the customer (the call screen's "Open conversation" lands here), the server suggests the scripts for
// the phone and links the run to the call; the panel shows a phone badge. A call of this conversation
// answered or ended while the panel offers scripts (inbox.js passes the live `call` frames on as `sb:call`)
// asks the server again, so the suggestions follow the call; a running script is left as it is.
//
// Everything from the server (script texts, options, names) reaches the page as textContent only.

import { api as callApi } from "./api.js";

const T = JSON.parse(document.getElementById("script-panel-strings").textContent);
const panel = document.getElementById("script-panel");
const api = (path, body) => callApi(path, body, T.error);
const INPUT_TYPES = { date: "date", phone: "tel", number: "text", money: "text", text: "text" };

let conversationId = null;
let busy = false;

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = text;
  return element;
}

function button(label, className, onClick) {
  const element = node("button", `btn btn-sm ${className}`, label);
  element.type = "button";
  element.addEventListener("click", onClick);
  return element;
}

function toReplyBox(text) {
  const box = document.getElementById("reply-body");
  if (!box) return;
  box.value = text;
  box.dispatchEvent(new Event("input", { bubbles: true })); // SMS counters, typing
  box.focus();
}

function path(suffix = "") {
  return `/api/v1/conversations/${conversationId}/script${suffix}`;
}

async function act(suffix, body) {
  if (busy) return; // one click at a time: the server refuses a second answer to the same step anyway
  busy = true;
  try {
    const data = await api(path(suffix), body);
    render(data.run, null);
  } catch (error) {
    showError(error);
  } finally {
    busy = false;
  }
}

function showError(error) {
  const box = panel.querySelector(".script-error");
  if (box) box.textContent = error.message || T.error;
}

let onCall = false; // the agent is on a call with this customer: the panel follows the call

function card(title, ...children) {
  const header = node("div", "card-header py-2");
  header.append(node("h3", "card-title small", title));
  if (onCall) {
    const badge = node("span", "badge bg-green-lt ms-auto script-on-call");
    badge.title = T.onCall;
    badge.setAttribute("aria-label", T.onCall);
    badge.append(node("i", "ti ti-phone-call"));
    header.append(badge);
  }
  const body = node("div", "card-body p-2");
  body.append(...children, node("div", "small text-danger script-error"));
  const wrapper = node("div", "card");
  wrapper.append(header, body);
  return wrapper;
}

function renderChooser(suggestions) {
  if (!suggestions || !suggestions.length) {
    panel.replaceChildren(card(T.script, node("div", "small text-secondary", T.none)));
    return;
  }
  const select = node("select", "form-select form-select-sm mb-2");
  select.id = "script-choice";
  select.setAttribute("aria-label", T.choose);
  for (const s of suggestions) {
    const option = node("option", null, `${s.name} · v${s.version}`);
    option.value = String(s.version_id);
    select.append(option);
  }
  const start = button(T.start, "btn-primary w-100", () =>
    act("", { version_id: Number(select.value) }),
  );
  start.id = "script-start";
  panel.replaceChildren(card(onCall ? T.suggestedCall : T.suggested, select, start));
}

function typedAnswer(run) {
  const wrap = node("form", "d-flex gap-1");
  const input = node("input", "form-control form-control-sm");
  input.id = "script-input";
  input.type = INPUT_TYPES[run.answer_type] || "text";
  if (run.answer_type === "number" || run.answer_type === "money") input.inputMode = "decimal";
  input.required = true;
  input.setAttribute("aria-label", run.title || T.answer);
  const go = node("button", "btn btn-sm btn-primary", T.next);
  go.type = "submit";
  wrap.append(input, go);
  wrap.addEventListener("submit", (event) => {
    event.preventDefault();
    act("/answer", { step_id: run.step_id, answer: input.value });
  });
  return wrap;
}

function renderRun(run) {
  const parts = [];
  if (run.status !== "running") {
    const outcome = T.outcomes[run.outcome] || run.outcome || T.left;
    parts.push(node("div", "mb-2", `${T.ended}: ${outcome}`));
    if (run.reason) parts.push(node("div", "small text-secondary mb-2", run.reason));
    parts.push(button(T.another, "btn-outline-primary w-100", () => load(conversationId)));
  } else {
    if (run.title) parts.push(node("div", "fw-bold mb-1 script-title", run.title));
    if (run.text) {
      const text = node("div", "mb-2 script-text", run.text);
      text.style.whiteSpace = "pre-wrap";
      parts.push(text, button(T.toReply, "btn-outline-secondary mb-2 script-to-reply", () => toReplyBox(run.text)));
    }
    for (const queued of run.outbox || []) {
      const line = node("div", "small border rounded p-1 mb-1 script-outbox", queued);
      line.append(button(T.toReply, "btn-link p-0 ms-1", () => toReplyBox(queued)));
      parts.push(line);
    }
    if (run.kind === "ask" && run.options && run.options.length) {
      const list = node("div", "d-grid gap-1 mb-2 script-options");
      for (const option of run.options) {
        const choice = button(option.label, "btn-outline-primary text-start script-option", () =>
          act("/answer", { step_id: run.step_id, answer: option.value }),
        );
        choice.dataset.value = option.value;
        list.append(choice);
      }
      parts.push(list);
    } else if (run.kind === "ask") {
      parts.push(typedAnswer(run));
    } else {
      const next = button(T.next, "btn-primary w-100 mb-2", () => act("/answer", { step_id: run.step_id, answer: null }));
      next.id = "script-next";
      parts.push(next);
    }
    const row = node("div", "d-flex gap-1 mt-2");
    if (run.can_go_back) {
      const back = button(T.back, "btn-outline-secondary", () => act("/back", { step_id: run.step_id }));
      back.id = "script-back";
      row.append(back);
    }
    const leave = button(T.leave, "btn-outline-danger ms-auto", () => act("/leave", { reason: "" }));
    leave.id = "script-leave";
    row.append(leave);
    parts.push(row);
  }
  const view = card(`${run.script_name} · v${run.version_number}`, ...parts);
  view.dataset.step = run.step_id || "";
  view.dataset.status = run.status;
  view.id = "script-run";
  panel.replaceChildren(view);
}

let running = false; // a run is on screen: a call's start or end does not redraw it

function render(run, suggestions, callId) {
  panel.hidden = false;
  panel.dataset.conversation = String(conversationId); // settled: what it shows is this conversation's
  running = Boolean(run) && run.status === "running";
  if (callId !== undefined) onCall = Number.isInteger(callId);
  if (run) onCall = onCall || Number.isInteger(run.call_id);
  if (run) renderRun(run);
  else renderChooser(suggestions);
}

async function load(id) {
  conversationId = id;
  try {
    const data = await api(path());
    if (conversationId === id) render(data.run, data.suggestions, data.call_id);
  } catch (error) {
    panel.hidden = true; // e.g. the conversation is no longer ours to see
    console.error(error);
  }
}

document.addEventListener("sb:call", (event) => {
  const call = event.detail;
  if (!call || call.conversation_id !== conversationId || running || busy) return;
  if (call.event === "answered" || call.event === "ended") load(conversationId);
});

/** The panel's place, held while the conversation's script is fetched: the customer's card below it is
 * drawn at once, and does not jump down under the agent's pointer when the script arrives. */
function placeholder() {
  const line = node("div", "placeholder-glow");
  line.append(node("span", "placeholder col-9"));
  panel.hidden = false;
  onCall = false;
  delete panel.dataset.conversation;
  panel.replaceChildren(card(T.script, line));
}

document.addEventListener("inbox:thread", (event) => {
  const id = event.detail?.id;
  if (!id || id === conversationId) return;
  placeholder();
  load(id);
});
