// The agent workspace: renders the inbox from /api/v1 and keeps it current from the /live WebSocket.
//
// Everything a customer wrote reaches the page only through textContent and DOM APIs (the `el` helper),
// never as HTML, so a message that looks like markup stays text.

import { api as callApi, csrf } from "./api.js";
import { contactEditor, isEditing, stopEditing } from "./contact_edit.js";
import { contactMerger } from "./contact_merge.js";
import { replyWindow } from "./reply_window.js";
import { el, icon } from "./dom.js";

const config = readJson("inbox-config");
const T = readJson("inbox-strings");
const people = new Map(config.people.map((p) => [p.id, p.name]));

const CHANNEL_ICONS = {
  webchat: "message-circle",
  telegram: "brand-telegram",
  viber: "message-dots",
  whatsapp: "brand-whatsapp",
  sms: "message-2",
  messenger: "brand-messenger",
  instagram: "brand-instagram",
  email: "mail",
  phone: "phone",
};
const STATUS_BADGES = {
  open: "bg-green-lt",
  pending: "bg-yellow-lt",
  snoozed: "bg-azure-lt",
  resolved: "bg-secondary-lt",
};
const OPEN_STATUSES = ["open", "pending", "snoozed"];
const STATUS_RANK = { queued: 0, sent: 1, delivered: 2, read: 3, failed: 4 };
const MAX_BACKOFF = 30000;
const RECENT_MAX = 300;
const TYPING_SHOWN_MS = 4000; // how long a customer's "typing…" stays up without another frame
const TYPING_EVERY_MS = 2000; // at most one "I am typing" frame to the customer this often

const state = {
  scope: "all",
  status: "open",
  channel: "",
  label: "", // only conversations carrying this label
  items: [], // the list pane, in the server's order
  unread: { mine: 0, unassigned: 0, all: 0 },
  openId: config.open_id,
  thread: null, // {conversation, contact, messages: Map<id, message>}
  cursor: 0, // the highest message id the live feed has delivered: `?after=` on reconnect
  socket: null,
  backoff: 1000,
  listSeq: 0,
  threadSeq: 0,
  sending: false,
  recent: new Map(), // the last messages the feed delivered, for threads whose fetch they overtook
  typing: new Map(), // conversation id -> timer ending the customer's "typing…"
  typingSentAt: 0, // when the last "typing" frame went to the feed (the agent typing a reply)
  typingSentFor: null, // … and for which conversation
  replyPick: null, // {conversationId, key}: the identity the agent picked to reply on, "channel|account"
};

// --- small helpers -------------------------------------------------------------------------------

function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

function $(selector) {
  return document.querySelector(selector);
}

/** Build an element; `text` and children become text nodes, never markup. */
function channelLabel(channel) {
  return T[channel] || channel;
}

function channelBadge(channel) {
  if (!channel) return null;
  return el(
    "span",
    { className: "badge bg-secondary-lt channel-badge", dataset: { channel }, title: channelLabel(channel) },
    icon(CHANNEL_ICONS[channel] || "message", "me-1"),
    channelLabel(channel),
  );
}

function personName(id) {
  if (id === null || id === undefined) return T.unassigned;
  if (id === config.user_id) return T.you;
  return people.get(id) || T.someone_else;
}

function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const options = today
    ? { hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString(document.documentElement.lang || undefined, options);
}

function formatWaiting(iso) {
  const minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
  if (minutes < 1) return T.now;
  if (minutes < 60) return T.minutes.replace("{n}", minutes);
  if (minutes < 48 * 60) return T.hours.replace("{n}", Math.floor(minutes / 60));
  return T.days.replace("{n}", Math.floor(minutes / 1440));
}

function setError(text) {
  $("#reply-error").textContent = text || "";
}

const api = (path, body) => callApi(path, body, T.error);

function report(error) {
  console.error(error);
  setError(error.message || T.error);
}

// --- the list pane ------------------------------------------------------------------------------

let listTimer = null;
let listDue = Infinity;

async function loadList() {
  const query = new URLSearchParams({ scope: state.scope, status: state.status });
  if (state.channel) query.set("channel", state.channel);
  if (state.label) query.set("label", state.label);
  const seq = ++state.listSeq;
  const data = await api(`/api/v1/conversations?${query}`);
  if (seq !== state.listSeq) return; // a newer filter has been asked for meanwhile
  state.items = data.conversations;
  state.unread = data.unread;
  renderList();
  renderCounts();
}

/** Reload the list at most once per burst of events, but no later than `delay` from now. */
function refreshListSoon(delay = 1000) {
  const due = Date.now() + delay;
  if (listTimer !== null && listDue <= due) return;
  clearTimeout(listTimer);
  listDue = due;
  listTimer = setTimeout(() => {
    listTimer = null;
    listDue = Infinity;
    loadList().catch(report);
  }, delay);
}

function renderCounts() {
  for (const scope of ["mine", "unassigned", "all"]) {
    const badge = document.getElementById(`unread-${scope}`);
    const count = state.unread[scope] || 0;
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }
  for (const button of document.querySelectorAll("#scope-filter [data-scope]")) {
    const on = button.dataset.scope === state.scope;
    button.classList.toggle("btn-primary", on);
    button.classList.toggle("btn-outline-secondary", !on);
    button.setAttribute("aria-pressed", String(on));
  }
}

function renderList() {
  const list = $("#conversation-list");
  if (!state.items.length) {
    list.replaceChildren(el("div", { className: "p-3 text-secondary small", text: T.empty_list }));
    return;
  }
  list.replaceChildren(...state.items.map(conversationNode));
}

function conversationNode(c) {
  const active = c.id === state.openId;
  const unread = active ? 0 : c.unread;
  const name = c.contact.name || c.contact.phone || `#${c.contact.id}`;
  const classes = ["list-group-item", "list-group-item-action", "conversation-item"];
  if (active) classes.push("active");
  if (unread) classes.push("has-unread");
  return el(
    "a",
    {
      href: `/inbox/${c.id}`,
      className: classes.join(" "),
      dataset: { id: c.id },
      role: "option",
      "aria-selected": String(active),
    },
    el(
      "div",
      { className: "d-flex align-items-center gap-2" },
      c.channel ? icon(CHANNEL_ICONS[c.channel] || "message", "text-secondary") : null,
      el("span", { className: "conversation-name text-truncate flex-fill", text: name }),
      unread ? el("span", { className: "badge bg-red text-red-fg conversation-unread", text: String(unread) }) : null,
    ),
    state.typing.has(c.id)
      ? el("div", { className: "conversation-snippet conversation-typing small text-green", text: T.typing })
      : el("div", { className: "conversation-snippet small text-secondary", text: c.last_message || "" }),
    c.labels?.length
      ? el(
          "div",
          { className: "conversation-labels d-flex flex-wrap gap-1" },
          c.labels.map((label) => el("span", { className: "badge bg-blue-lt label-chip", text: label })),
        )
      : null,
    el(
      "div",
      { className: "d-flex gap-2 small text-secondary" },
      c.waiting_since
        ? el(
            "span",
            { className: "conversation-waiting text-orange", dataset: { since: c.waiting_since }, title: T.waiting },
            icon("clock", "me-1"),
            formatWaiting(c.waiting_since),
          )
        : null,
      c.status !== "open" ? el("span", { text: T[c.status] || c.status }) : null,
      el("span", { className: "ms-auto text-truncate", text: personName(c.assignee_id) }),
    ),
  );
}

function replaceItem(item) {
  const old = document.querySelector(`.conversation-item[data-id="${item.id}"]`);
  if (old) old.replaceWith(conversationNode(item));
}

function matchesFilters(c) {
  if (state.scope === "mine" && c.assignee_id !== config.user_id) return false;
  if (state.scope === "unassigned" && c.assignee_id !== null) return false;
  if (state.label && !(c.labels || []).includes(state.label)) return false;
  if (state.status === "open") return OPEN_STATUSES.includes(c.status);
  return state.status === "any" || c.status === state.status;
}

function removeItem(id) {
  state.items = state.items.filter((c) => c.id !== id);
  renderList();
}

function markActive() {
  for (const node of document.querySelectorAll(".conversation-item")) {
    const on = Number(node.dataset.id) === state.openId;
    node.classList.toggle("active", on);
    node.setAttribute("aria-selected", String(on));
  }
}

// --- the thread ---------------------------------------------------------------------------------

async function openConversation(id, { push = true, focus = false, quiet = false } = {}) {
  state.openId = id;
  markActive();
  const seq = ++state.threadSeq;
  let data;
  try {
    data = await api(`/api/v1/conversations/${id}`);
  } catch (error) {
    if (seq === state.threadSeq && error.status === 404) closeThread(error.message);
    throw error;
  }
  if (seq !== state.threadSeq) return;
  const keepScroll = quiet && !nearBottom();
  const scrollTop = $("#thread").scrollTop;
  state.thread = {
    conversation: data.conversation,
    contact: data.contact,
    messages: mergeRecent(data.conversation.id, data.messages),
  };
  const item = state.items.find((c) => c.id === id);
  if (item && item.unread) {
    item.unread = 0;
    replaceItem(item);
    refreshListSoon(500); // the tabs' unread badges
  }
  if (push && location.pathname !== `/inbox/${id}`) history.pushState({ id }, "", `/inbox/${id}`);
  $("#thread-empty").hidden = true;
  $("#thread-view").hidden = false;
  renderHeader();
  renderThread();
  renderContact();
  renderReplyChannel();
  renderTyping();
  if (keepScroll) $("#thread").scrollTop = scrollTop;
  if (!quiet) setError("");
  if (focus) $("#reply-body").focus();
}

/** A thread as fetched, plus what the feed delivered while the fetch was under way (its answer may have
 * been read from the database just before those messages were stored, or their status moved on). */
function mergeRecent(conversationId, fetched) {
  const messages = new Map(fetched.map((m) => [m.id, m]));
  const conversations = new Set([conversationId, ...fetched.map((m) => m.conversation_id)]);
  for (const m of state.recent.values()) {
    if (!conversations.has(m.conversation_id)) continue;
    const known = messages.get(m.id);
    if (!known || movesOn(known, m)) messages.set(m.id, m);
  }
  return messages;
}

/** Delivery statuses only move forward, whatever order their events arrive in; a failed send that a
 * retry got through may move back to sent. */
function movesOn(current, next) {
  if (next.kind === "call") return JSON.stringify(next.meta) !== JSON.stringify(current.meta); // the call went on
  if (current.status === "failed") return next.status !== current.status || next.error !== current.error;
  return (STATUS_RANK[next.status] ?? 0) > (STATUS_RANK[current.status] ?? 0);
}

function remember(message) {
  state.recent.delete(message.id);
  state.recent.set(message.id, message);
  if (state.recent.size > RECENT_MAX) state.recent.delete(state.recent.keys().next().value);
}

function closeThread(notice) {
  state.openId = null;
  state.thread = null;
  state.threadSeq++;
  markActive();
  renderTyping();
  $("#thread-view").hidden = true;
  $("#thread-empty").hidden = false;
  $("#contact-panel").replaceChildren(
    el("div", { className: "p-3 text-secondary small", text: notice || "" }),
  );
  if (location.pathname !== "/inbox") history.pushState({}, "", "/inbox");
}

function nearBottom() {
  const box = $("#thread");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function renderHeader() {
  const { conversation, contact } = state.thread;
  $("#thread-title").textContent = contact ? contact.name || contact.phone || `#${contact.id}` : `#${conversation.id}`;
  const status = $("#thread-status");
  status.textContent = T[conversation.status] || conversation.status;
  status.className = `badge ${STATUS_BADGES[conversation.status] || "bg-secondary-lt"}`;
  $("#thread-assignee").textContent = `${T.assigned_to}: ${personName(conversation.assignee_id)}`;
  $("#take-button").hidden = conversation.assignee_id === config.user_id;
  $("#resolve-button").hidden = conversation.status === "resolved";
  $("#reopen-button").hidden = conversation.status !== "resolved";
  $("#snooze-select").hidden = conversation.status === "resolved";
  const select = $("#assign-select");
  const options = [el("option", { value: "", text: `${T.assigned_to}…` })];
  for (const [id, name] of people) options.push(el("option", { value: String(id), text: name }));
  options.push(el("option", { value: "none", text: T.nobody }));
  if (config.can_pin) {
    // pinning: the conversation waits for this person alone, and reaches them as soon as they have room
    const group = el("optgroup", { label: T.pin_to });
    for (const [id, name] of people) group.append(el("option", { value: `pin:${id}`, text: name }));
    group.append(el("option", { value: "unpin", text: T.unpin }));
    options.push(group);
  }
  select.replaceChildren(...options);
  select.value = "";
  document.dispatchEvent(new CustomEvent("inbox:thread", { detail: conversation })); // labels, transfer
}

function renderThread() {
  const box = $("#thread");
  const messages = [...state.thread.messages.values()].sort((a, b) => a.id - b.id);
  if (!messages.length) {
    box.replaceChildren(el("div", { className: "text-secondary small", text: T.no_messages }));
    return;
  }
  box.replaceChildren(...messages.map(messageNode));
  box.scrollTop = box.scrollHeight;
}

function belongsToThread(message) {
  if (!state.thread) return false;
  if (message.conversation_id === state.thread.conversation.id) return true;
  for (const m of state.thread.messages.values()) if (m.conversation_id === message.conversation_id) return true;
  return false;
}

/** Add a message to the open thread, or replace it (a delivery status moved on); each id appears once. */
function upsertThreadMessage(message) {
  const box = $("#thread");
  const stick = nearBottom() || message.direction === "out";
  const current = state.thread.messages.get(message.id);
  if (current && !movesOn(current, message)) return;
  const known = current !== undefined;
  state.thread.messages.set(message.id, message);
  if (!known && message.direction === "in") refreshWindow(true); // the customer wrote: a window reopens
  const node = messageNode(message);
  const existing = box.querySelector(`.message[data-id="${message.id}"]`);
  if (existing) {
    existing.replaceWith(node);
    return;
  }
  if (!known && box.querySelector(".message") === null) box.replaceChildren();
  const later = [...box.querySelectorAll(".message")].find((n) => Number(n.dataset.id) > message.id);
  box.insertBefore(node, later || null);
  if (stick) box.scrollTop = box.scrollHeight;
}

function messageKind(m) {
  if (m.kind === "note") return "note";
  if (m.kind === "call") return "call";
  if (m.kind === "system") return "system";
  return m.direction === "in" ? "in" : "out";
}

function ticks(status) {
  switch (status) {
    case "queued":
      return el("span", { className: "ticks ticks-queued", title: T.queued }, icon("clock"));
    case "sent":
      return el("span", { className: "ticks ticks-sent", title: T.sent, text: "✓" });
    case "delivered":
      return el("span", { className: "ticks ticks-delivered", title: T.delivered, text: "✓✓" });
    case "read":
      return el("span", { className: "ticks ticks-read", title: T.read, text: "✓✓" });
    case "failed":
      return el("span", { className: "ticks ticks-failed", title: T.failed }, icon("alert-circle"));
    default:
      return null;
  }
}

const FILE_ID = /^[A-Za-z0-9_-]{16,64}$/;
const FILE_ICONS = { image: "photo", video: "movie", audio: "music", file: "file" };

/** An attachment: a thumbnail for pictures, a player for audio, a download link otherwise (names as text). */
function attachmentNode(a) {
  const name = a.filename || a.content_type || T.attachment;
  const type = String(a.content_type || "");
  const kind = a.kind || "file";
  if (typeof a.id !== "string" || !FILE_ID.test(a.id)) {
    return el("div", { className: "small text-secondary message-attachment" }, icon("paperclip", "me-1"), name);
  }
  const url = `/files/${a.id}`;
  const link = el(
    "a",
    { href: url, target: "_blank", rel: "noopener", className: "small message-attachment-link", title: T.download },
    icon(FILE_ICONS[kind] || "paperclip", "me-1"),
    name,
  );
  if (type.startsWith("image/")) {
    return el(
      "a",
      { href: url, target: "_blank", rel: "noopener", className: "d-block message-attachment", title: name, dataset: { fileId: a.id } },
      el("img", { src: url, alt: name, loading: "lazy", className: "message-image" }),
    );
  }
  if (type.startsWith("audio/")) {
    return el("div", { className: "message-attachment", dataset: { fileId: a.id } }, el("audio", { src: url, controls: true, preload: "none" }), el("div", {}, link));
  }
  return el("div", { className: "message-attachment", dataset: { fileId: a.id } }, link);
}

/** An e-mail's formatted version: already sanitised by the hub, and still shown in a sandboxed frame
 * (no scripts, no same-origin access, no forms), opened on request. */
function htmlMailNode(html) {
  const details = el("details", { className: "small message-html" }, el("summary", { text: T.formatted }));
  details.addEventListener(
    "toggle",
    () => {
      if (!details.open || details.querySelector("iframe")) return;
      const frame = el("iframe", { sandbox: "", referrerpolicy: "no-referrer", className: "w-100 border rounded bg-white", title: T.formatted });
      frame.srcdoc = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">${html}`;
      details.append(frame);
    },
  );
  return details;
}

const E164 = /^\+[1-9]\d{5,14}$/;
const CALL_RESULT_BADGES = {
  answered: "bg-green-lt",
  missed: "bg-red-lt",
  busy: "bg-orange-lt",
  unreachable: "bg-orange-lt",
  failed: "bg-red-lt",
  no_agent: "bg-red-lt",
  abandoned: "bg-red-lt",
};

const CALL_FACT_ICONS = { number: "phone", region: "map-pin", agent: "headset", wait: "hourglass", talk: "clock" };

/** A customer's number as a link the click-to-call script (calls-desk) picks up; other text stays text. */
function telLink(number, text = number) {
  if (!E164.test(number)) return text;
  return el("a", { href: `tel:${number}`, className: "tel-link", title: T.callNumber }, text);
}

function formatSeconds(seconds) {
  const total = Math.round(Number(seconds) || 0);
  const minutes = Math.floor(total / 60);
  return `${minutes}:${String(total % 60).padStart(2, "0")}`;
}

/** Supervisors, admins and the call's own agent may listen to its recording (the server checks again). */
function mayListen(call) {
  return config.role === "admin" || config.role === "supervisor" || (call.agent_id !== null && call.agent_id === config.user_id);
}

/** The call item: direction, result, number and region, the agent, wait and talk time, the recording. */
function callNodes(m) {
  const call = m.meta.call;
  const out = (call.direction || m.direction) === "out";
  const result = call.result || (call.ended ? "failed" : null);
  const missed = result && result !== "answered";
  const head = el(
    "div",
    { className: "d-flex align-items-center gap-2 flex-wrap small fw-bold message-label call-head" },
    icon(missed ? "phone-x" : out ? "phone-outgoing" : "phone-incoming", missed ? "text-danger" : ""),
    el("span", { text: out ? T.callOut : T.callIn }),
    el("span", {
      className: `badge ${CALL_RESULT_BADGES[result] || "bg-azure-lt"} call-result`,
      dataset: { result: result || "live" },
      text: result ? T.callResults[result] || result : T.callLive,
    }),
  );
  const facts = el("div", { className: "small text-secondary d-flex flex-wrap gap-3 call-facts" });
  const add = (name, title, ...children) =>
    facts.append(el("span", { className: `call-${name}`, title }, icon(CALL_FACT_ICONS[name], "me-1"), ...children));
  if (call.customer_number) add("number", T.phone, telLink(call.customer_number));
  if (call.region) add("region", T.callRegion, call.region);
  if (call.agent_name || call.agent_id) add("agent", T.agent, call.agent_name || personName(call.agent_id));
  if (call.wait_seconds !== null && call.wait_seconds !== undefined) add("wait", T.callWait, `${T.callWait}: ${formatSeconds(call.wait_seconds)}`);
  if (result === "answered") add("talk", T.callTalk, `${T.callTalk}: ${formatSeconds(call.talk_seconds)}`);
  const nodes = [head, facts];
  if (call.has_recording && Number.isInteger(call.call_id) && mayListen(call)) {
    nodes.push(
      el("audio", {
        className: "d-block mt-2 call-recording",
        controls: true,
        preload: "none",
        src: `/api/v1/calls/${call.call_id}/recording`,
        title: T.callRecording,
      }),
    );
  }
  return nodes;
}

function messageNode(m) {
  const kind = messageKind(m);
  const classes = ["message", `message-${kind}`];
  if (m.status === "failed") classes.push("message-failed");
  const bubble = el("div", { className: "message-bubble" });
  if (kind === "note") {
    bubble.append(el("div", { className: "small fw-bold text-warning message-label" }, icon("lock", "me-1"), T.note));
  } else if (kind === "call" && m.meta?.call) {
    bubble.append(...callNodes(m)); // a phone call the hub followed (inbox/calls.py)
  } else if (kind === "call") {
    bubble.append(el("div", { className: "small fw-bold message-label" }, icon("phone", "me-1"), T.call)); // a channel's call notice
  }
  if (m.meta?.subject) bubble.append(el("div", { className: "small fw-bold message-subject", text: m.meta.subject }));
  if (m.body) bubble.append(el("div", { className: "message-body", text: m.body }));
  if (m.meta?.html) bubble.append(htmlMailNode(m.meta.html));
  for (const a of m.attachments || []) bubble.append(attachmentNode(a));
  const author = m.direction === "out" ? personName(m.author_user_id) : null;
  bubble.append(
    el(
      "div",
      { className: "message-meta" },
      kind !== "note" ? channelBadge(m.channel) : null,
      author && m.author_user_id !== null && kind !== "call" ? el("span", { text: author }) : null,
      el("time", { datetime: m.created_at, text: formatTime(m.created_at) }),
      m.direction === "out" && kind !== "note" && kind !== "call" ? ticks(m.status) : null,
    ),
  );
  if (m.status === "failed") {
    bubble.append(
      el(
        "div",
        { className: "message-error small text-danger" },
        el("span", { text: m.error || T.failed }),
        m.direction === "out" && kind !== "note"
          ? el("button", { type: "button", className: "btn btn-sm btn-link p-0 ms-2 message-retry", dataset: { id: m.id }, text: T.retry })
          : null,
      ),
    );
  }
  return el(
    "div",
    { className: classes.join(" "), dataset: { id: m.id, status: m.status, kind: m.kind, direction: m.direction } },
    bubble,
  );
}

// --- the contact panel --------------------------------------------------------------------------

function renderContact() {
  const panel = $("#contact-panel");
  const contact = state.thread?.contact;
  if (!contact) {
    panel.replaceChildren();
    return;
  }
  if (isEditing(contact.id) && $("#contact-edit-form")) return; // the agent is typing: leave the form be
  if (!isEditing(contact.id)) stopEditing();
  const editor = contactEditor({ contact, el, T, api, onSaved: contactSaved, redraw: renderContact });
  const name = contact.name || contact.phone || `#${contact.id}`;
  const facts = el("dl", { className: "row mb-3 small" });
  for (const [label, value] of [
    [T.phone, contact.phone],
    [T.email, contact.email],
  ]) {
    if (!value) continue;
    const shown = value === contact.phone ? telLink(value) : value;
    facts.append(el("dt", { className: "col-4", text: label }), el("dd", { className: "col-8 mb-1 text-break" }, shown));
  }
  const identities = el(
    "ul",
    { className: "list-unstyled mb-3", id: "contact-identities" },
    contact.identities.map((i) =>
      el(
        "li",
        { className: "d-flex align-items-center gap-2 mb-1", dataset: { channel: i.channel } },
        channelBadge(i.channel),
        i.channel === "phone" && E164.test(i.external_id)
          ? el("span", { className: "small text-truncate", title: i.external_id }, telLink(i.external_id, i.display_name || i.external_id))
          : el("span", { className: "small text-truncate", text: i.display_name || i.external_id, title: i.external_id }),
      ),
    ),
  );
  const leads = contact.leads.length
    ? contact.leads.map(leadNode)
    : [el("div", { className: "small text-secondary", text: T.no_leads })];
  panel.replaceChildren(
    el(
      "div",
      { className: "p-3" },
      el(
        "div",
        { className: "d-flex align-items-center gap-2 mb-3" },
        el("span", { className: "avatar avatar-md rounded-circle bg-primary-lt", text: name.slice(0, 1).toUpperCase() }),
        el("h3", { className: "m-0 text-break", id: "contact-name", text: name }),
        isEditing(contact.id) ? null : editor,
      ),
      isEditing(contact.id) ? editor : facts,
      el(
        "a",
        { href: `/contacts/${contact.id}`, className: "small d-inline-block mb-3", id: "contact-page-link", target: "_blank" },
        icon("address-book", "me-1"),
        T.contact_page,
      ),
      el("h4", { className: "subheader", text: T.identities }),
      identities,
      el("h4", { className: "subheader", text: T.leads }),
      el("div", { id: "contact-leads" }, leads),
      contactMerger({ contact, el, T, api, channelBadge, onMerged: (data) => {
        refreshListSoon(0); // the merged customer's conversation left the list
        return openConversation(data.conversation_id ?? state.openId, { quiet: true });
      } }),
    ),
  );
}

/** The quick edit saved: show the stored values (the server normalised the phone) everywhere. */
function contactSaved(updated) {
  if (state.thread?.contact?.id === updated.id) state.thread.contact = updated;
  if (state.thread) renderHeader();
  renderContact();
  renderReplyChannel();
  refreshListSoon(300);
}

function safeHttpUrl(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function leadNode(lead) {
  const rows = el("dl", { className: "row small mb-0" });
  const add = (label, value) => {
    if (value) rows.append(el("dt", { className: "col-5", text: label }), el("dd", { className: "col-7 mb-1 text-break" }, value));
  };
  add(T.status, lead.status);
  add(T.source, lead.utm_source);
  add(T.campaign, lead.utm_campaign);
  if (lead.page_url) {
    const href = safeHttpUrl(lead.page_url);
    add(
      T.page,
      href
        ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: lead.page_url })
        : lead.page_url,
    );
  }
  return el(
    "div",
    { className: "card card-sm mb-2 lead", dataset: { id: lead.id } },
    el(
      "div",
      { className: "card-body" },
      el(
        "div",
        { className: "d-flex align-items-center gap-2 mb-1" },
        channelBadge(lead.source_channel),
        el("a", { className: "small lead-link", href: `/leads/${encodeURIComponent(lead.id)}`, text: `#${lead.id}` }),
        el("span", { className: "small text-secondary ms-auto", text: formatTime(lead.created_at) }),
      ),
      rows,
    ),
  );
}

// --- the reply channel and "typing…" -------------------------------------------------------------

function identityKey(i) {
  return `${i.channel}|${i.account_id}`;
}

/** The customer's identities a reply can go to, one per channel account (the server picks the latest
 * identity on an account, so two visitors of one widget are one choice). */
function replyTargets() {
  const byKey = new Map();
  for (const i of state.thread?.contact?.identities || []) {
    byKey.delete(identityKey(i));
    byKey.set(identityKey(i), i);
  }
  return [...byKey.values()];
}

function identityLabel(i) {
  const who = i.display_name || (i.channel === "webchat" ? "" : i.external_id);
  return who ? `${channelLabel(i.channel)} · ${who}` : channelLabel(i.channel);
}

/** The identity the reply goes to: the agent's pick for this conversation, else the customer's last
 * channel account. Null when the customer has one identity (the server's default is the only choice). */
function replyTarget() {
  const targets = replyTargets();
  if (targets.length < 2 || !state.thread) return null;
  const { conversation } = state.thread;
  const picked = state.replyPick?.conversationId === conversation.id ? state.replyPick.key : null;
  return (
    targets.find((i) => identityKey(i) === picked) ||
    targets.find((i) => i.channel === conversation.channel && i.account_id === conversation.account_id) ||
    targets.findLast((i) => i.channel === conversation.channel) ||
    targets[targets.length - 1]
  );
}

/** The reply box's channel picker: hidden for a note and for a customer with one identity. */
function renderReplyChannel() {
  refreshWindow();
  const box = $("#reply-channel-box");
  const select = $("#reply-channel");
  const targets = replyTargets();
  const target = replyTarget();
  if (!target || $("#reply-note").checked) {
    box.hidden = true;
    return;
  }
  select.replaceChildren(
    ...targets.map((i) => el("option", { value: identityKey(i), text: identityLabel(i), dataset: { channel: i.channel } })),
  );
  select.value = identityKey(target);
  $("#reply-channel-badge").replaceChildren(channelBadge(target.channel));
  box.hidden = false;
}

/** What a reply sends besides its body: the picked identity, never for a note. */
let windowBar = null;

function refreshWindow(force = false) {
  if (!windowBar) return;
  const note = $("#reply-note").checked;
  windowBar.refresh(state.thread?.conversation.id, replyRoute(note), note, force);
}

async function retryMessage(button) {
  button.disabled = true;
  try {
    const data = await api(`/api/v1/messages/${button.dataset.id}/retry`, {});
    if (state.thread && belongsToThread(data.message)) upsertThreadMessage(data.message);
  } catch (error) {
    report(error);
    refreshWindow(true);
    button.disabled = false;
  }
}

function replyRoute(note) {
  const target = note ? null : replyTarget();
  return target ? { channel: target.channel, account_id: target.account_id } : {};
}

/** The customer is typing: say so in the thread header and the list for a few seconds. */
function showTyping(conversationId) {
  clearTimeout(state.typing.get(conversationId));
  state.typing.set(
    conversationId,
    setTimeout(() => stopTyping(conversationId), TYPING_SHOWN_MS),
  );
  typingChanged(conversationId);
}

function stopTyping(conversationId) {
  if (!state.typing.has(conversationId)) return;
  clearTimeout(state.typing.get(conversationId));
  state.typing.delete(conversationId);
  typingChanged(conversationId);
}

function typingChanged(conversationId) {
  const item = state.items.find((c) => c.id === conversationId);
  if (item) replaceItem(item);
  renderTyping();
}

function renderTyping() {
  const id = state.thread?.conversation.id;
  $("#thread-typing").hidden = !(id !== undefined && state.openId === id && state.typing.has(id));
}

/** The agent is typing a reply: tell the customer (the hub passes it on to a web chat visitor only). */
function sendTyping() {
  if (!state.thread || $("#reply-note").checked || !$("#reply-body").value.trim()) return;
  const id = state.thread.conversation.id;
  const target = replyTarget();
  const channel = target ? target.channel : state.thread.conversation.channel;
  if (channel !== "webchat") return;
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const now = Date.now();
  if (state.typingSentFor === id && now - state.typingSentAt < TYPING_EVERY_MS) return;
  state.typingSentAt = now;
  state.typingSentFor = id;
  socket.send(JSON.stringify({ type: "typing", conversation_id: id }));
}

// --- actions ------------------------------------------------------------------------------------

async function sendReply() {
  const box = $("#reply-body");
  const body = box.value.trim();
  if (!body || state.sending || !state.thread) return;
  state.sending = true;
  $("#reply-send").disabled = true;
  setError("");
  try {
    const id = state.thread.conversation.id;
    const note = $("#reply-note").checked;
    const data = await api(`/api/v1/conversations/${id}/messages`, { body, note, ...replyRoute(note) });
    box.value = "";
    state.typingSentAt = 0; // the reply ends the customer's "typing…": the next keystroke starts a new one
    if (state.thread && belongsToThread(data.message)) upsertThreadMessage(data.message);
  } catch (error) {
    report(error);
    if (error.status === 422) refreshWindow(true); // the window may have closed, or the customer opted out
  } finally {
    state.sending = false;
    $("#reply-send").disabled = false;
  }
}

/** Send the picked file (with the reply box's text as its caption) as a reply or, with Note on, a note. */
async function uploadFile(file) {
  if (!file || state.sending || !state.thread) return;
  const box = $("#reply-body");
  const caption = box.value.trim();
  const form = new FormData();
  if (caption) form.append("body", caption);
  const note = $("#reply-note").checked;
  if (note) form.append("note", "true");
  for (const [key, value] of Object.entries(replyRoute(note))) form.append(key, value);
  form.append("file", file, file.name);
  state.sending = true;
  $("#reply-send").disabled = true;
  $("#attach-button").disabled = true;
  setError(T.uploading);
  try {
    const id = state.thread.conversation.id;
    const response = await fetch(`/api/v1/conversations/${id}/attachments`, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      body: form,
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      // a non-JSON answer: the status says enough
    }
    if (response.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    if (!response.ok) throw new Error(data?.error?.reason || T.error);
    setError("");
    if (caption) box.value = "";
    if (state.thread && belongsToThread(data.message)) upsertThreadMessage(data.message);
  } catch (error) {
    report(error);
  } finally {
    state.sending = false;
    $("#reply-send").disabled = false;
    $("#attach-button").disabled = false;
    $("#attach-input").value = "";
  }
}

async function changeStatus(status, snoozeUntil = null) {
  const id = state.thread.conversation.id;
  await api(`/api/v1/conversations/${id}/status`, { status, snooze_until: snoozeUntil });
  if (state.thread?.conversation.id === id) {
    state.thread.conversation.status = status;
    renderHeader();
  }
  setError("");
  refreshListSoon(100);
}

async function assign(assigneeId) {
  const id = state.thread.conversation.id;
  await api(`/api/v1/conversations/${id}/assign`, { assignee_id: assigneeId });
  if (state.thread?.conversation.id === id) {
    state.thread.conversation.assignee_id = assigneeId;
    renderHeader();
  }
  setError("");
  refreshListSoon(100);
}

async function pin(agentId) {
  const id = state.thread.conversation.id;
  const data = await api(`/api/v1/conversations/${id}/pin`, { agent_id: agentId });
  if (state.thread?.conversation.id === id) {
    state.thread.conversation.assignee_id = data.conversation.assignee_id;
    renderHeader();
  }
  setError("");
  refreshListSoon(100);
}

function snoozeUntil(choice) {
  const when = new Date();
  if (choice === "tomorrow") {
    when.setDate(when.getDate() + 1);
    when.setHours(9, 0, 0, 0);
  } else {
    when.setTime(when.getTime() + Number(choice) * 3600 * 1000);
  }
  return when.toISOString();
}

function move(step) {
  if (!state.items.length) return;
  let index = state.items.findIndex((c) => c.id === state.openId);
  if (index < 0) index = step > 0 ? 0 : state.items.length - 1;
  else index = Math.min(state.items.length - 1, Math.max(0, index + step));
  const id = state.items[index].id;
  document.querySelector(`.conversation-item[data-id="${id}"]`)?.scrollIntoView({ block: "nearest" });
  if (id !== state.openId) openConversation(id).catch(report);
}

// --- the live feed ------------------------------------------------------------------------------

let readTimer = null;

/** The open thread got a customer message while the agent looks at it: reading the thread marks it read. */
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (state.openId !== null) openConversation(state.openId, { push: false, quiet: true }).catch(report);
  }, 1000);
}

function setLive(on) {
  document.body.dataset.live = on ? "connected" : "disconnected";
  const badge = $("#live-status");
  badge.className = `badge ${on ? "bg-green-lt" : "bg-secondary-lt"}`;
  badge.title = on ? T.live : T.offline;
  badge.replaceChildren(icon(on ? "plug-connected" : "plug-connected-x"));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const after = state.cursor > 0 ? `?after=${state.cursor}` : "";
  const socket = new WebSocket(`${scheme}//${location.host}/live${after}`);
  let opened = false;
  state.socket = socket;
  socket.addEventListener("open", () => {
    opened = true;
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket) return;
    setLive(false);
    // Never opened: maybe the login ended. The API answers 401 then, and api() goes to the login page.
    if (!opened) api("/api/v1/me").catch(() => {});
    const delay = state.backoff * (0.5 + Math.random() / 2);
    state.backoff = Math.min(MAX_BACKOFF, state.backoff * 2);
    setTimeout(connect, delay);
  });
}

function onFrame(frame) {
  switch (frame.type) {
    case "ready":
      setLive(true);
      state.backoff = 1000;
      // Whatever happened before the subscription (or while disconnected) comes from the API.
      refreshListSoon(0);
      if (state.openId !== null) openConversation(state.openId, { push: false, quiet: true }).catch(report);
      break;
    case "message":
    case "status":
      onMessage(frame);
      break;
    case "conversation":
      onConversation(frame.conversation);
      break;
    case "typing":
      if (frame.conversation?.id !== undefined) showTyping(frame.conversation.id);
      break;
    case "removed":
      removeItem(frame.conversation_id);
      if (state.openId === frame.conversation_id) closeThread(T.removed);
      break;
    case "notification":
      document.dispatchEvent(new CustomEvent("sb:notification", { detail: frame.notification }));
      break;
    case "call":
      document.dispatchEvent(new CustomEvent("sb:call", { detail: frame.call })); // the screen pop (call_pop.js)
      break;
    case "resync":
      refreshListSoon(0);
      if (state.openId !== null) openConversation(state.openId, { push: false, quiet: true }).catch(report);
      break;
    default:
      break;
  }
}

function onMessage(frame) {
  const { message, conversation } = frame;
  if (frame.type === "message") state.cursor = Math.max(state.cursor, message.id);
  if (frame.type === "message" && message.direction === "in") stopTyping(conversation.id);
  remember(message);
  if (belongsToThread(message)) {
    upsertThreadMessage(message);
    if (frame.type === "message" && message.direction === "in" && document.visibilityState === "visible") {
      markReadSoon();
    }
    if (state.thread.conversation.id === conversation.id) {
      Object.assign(state.thread.conversation, { status: conversation.status, assignee_id: conversation.assignee_id });
      renderHeader();
    }
  }
  if (frame.type !== "message") return;
  const item = state.items.find((c) => c.id === conversation.id);
  if (!item) {
    refreshListSoon(150); // a new conversation (or one new to this filter): its card comes from the API
    return;
  }
  item.last_message = message.body.slice(0, 140);
  item.status = conversation.status;
  item.assignee_id = conversation.assignee_id;
  item.unread = item.id === state.openId ? 0 : conversation.unread;
  if (message.direction === "in" && !item.waiting_since) item.waiting_since = message.created_at;
  if (message.direction === "out" && message.kind !== "note") item.waiting_since = null;
  if (matchesFilters(item)) replaceItem(item);
  else removeItem(item.id);
  refreshListSoon(message.direction === "in" ? 500 : 1500); // order and the tabs' unread counts
}

function onConversation(conversation) {
  const item = state.items.find((c) => c.id === conversation.id);
  if (conversation.labels) {
    if (item) item.labels = conversation.labels;
    if (state.thread?.conversation.id === conversation.id) state.thread.conversation.labels = conversation.labels;
  }
  if (item) {
    Object.assign(item, { status: conversation.status, assignee_id: conversation.assignee_id });
    if (matchesFilters(item)) replaceItem(item);
    else removeItem(item.id);
  }
  refreshListSoon(item ? 1000 : 150);
  if (state.thread && state.thread.conversation.id === conversation.id) {
    Object.assign(state.thread.conversation, { status: conversation.status, assignee_id: conversation.assignee_id });
    renderHeader();
  }
}

// --- wiring -------------------------------------------------------------------------------------

function conversationIdFromPath() {
  const match = /^\/inbox\/(\d+)$/.exec(location.pathname);
  return match ? Number(match[1]) : null;
}

function wire() {
  const channelFilter = $("#channel-filter");
  for (const channel of config.channels) channelFilter.append(el("option", { value: channel, text: channelLabel(channel) }));

  $("#scope-filter").addEventListener("click", (event) => {
    const button = event.target.closest("[data-scope]");
    if (!button) return;
    state.scope = button.dataset.scope;
    renderCounts();
    loadList().catch(report);
  });
  $("#status-filter").addEventListener("change", (event) => {
    state.status = event.target.value;
    loadList().catch(report);
  });
  channelFilter.addEventListener("change", (event) => {
    state.channel = event.target.value;
    loadList().catch(report);
  });
  $("#label-filter").addEventListener("change", (event) => {
    state.label = event.target.value.trim().toLowerCase();
    loadList().catch(report);
  });
  $("#conversation-list").addEventListener("click", (event) => {
    const item = event.target.closest(".conversation-item");
    if (!item || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openConversation(Number(item.dataset.id), { focus: true }).catch(report);
  });

  windowBar = replyWindow({
    api,
    T,
    el,
    box: $("#reply-window"),
    body: $("#reply-body"),
    onSent: (message) => {
      if (state.thread && belongsToThread(message)) upsertThreadMessage(message);
    },
    onError: setError,
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest(".message-retry");
    if (button) retryMessage(button);
  });
  $("#reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  $("#reply-body").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      sendReply();
    }
  });
  $("#attach-button").addEventListener("click", () => $("#attach-input").click());
  $("#attach-input").addEventListener("change", (event) => uploadFile(event.target.files[0]));
  $("#reply-body").addEventListener("input", sendTyping);
  $("#reply-note").addEventListener("change", (event) => {
    $("#reply-form").classList.toggle("reply-note", event.target.checked);
    renderReplyChannel();
  });
  $("#reply-channel").addEventListener("change", (event) => {
    if (!state.thread) return;
    state.replyPick = { conversationId: state.thread.conversation.id, key: event.target.value };
    renderReplyChannel();
  });
  $("#resolve-button").addEventListener("click", () => changeStatus("resolved").catch(report));
  $("#reopen-button").addEventListener("click", () => changeStatus("open").catch(report));
  $("#take-button").addEventListener("click", () => assign(config.user_id).catch(report));
  $("#snooze-select").addEventListener("change", (event) => {
    const choice = event.target.value;
    event.target.value = "";
    if (choice) changeStatus("snoozed", snoozeUntil(choice)).catch(report);
  });
  $("#assign-select").addEventListener("change", (event) => {
    const choice = event.target.value;
    if (choice === "unpin" || choice.startsWith("pin:")) pin(choice === "unpin" ? null : Number(choice.slice(4))).catch(report);
    else if (choice) assign(choice === "none" ? null : Number(choice)).catch(report);
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof Element && event.target.closest("input, textarea, select, [contenteditable]");
    let step = 0;
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      step = event.key === "ArrowDown" ? 1 : -1;
    } else if (!typing && !event.altKey && !event.ctrlKey && !event.metaKey && (event.key === "j" || event.key === "k")) {
      step = event.key === "j" ? 1 : -1;
    }
    if (!step) return;
    event.preventDefault();
    move(step);
  });
  window.addEventListener("popstate", () => {
    const id = conversationIdFromPath();
    if (id === null) closeThread();
    else openConversation(id, { push: false }).catch(report);
  });
  setInterval(() => {
    for (const node of document.querySelectorAll(".conversation-waiting[data-since]")) {
      node.lastChild.textContent = formatWaiting(node.dataset.since);
    }
  }, 30000);
}

wire();
renderCounts();
setLive(false);
loadList().catch(report);
if (state.openId !== null) openConversation(state.openId, { push: false }).catch(report);
connect();
