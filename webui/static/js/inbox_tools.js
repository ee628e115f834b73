// The inbox's tools beside js/inbox.js: `/shortcut` canned replies in the reply box, the label bar of the
// open conversation and the transfer menu. inbox.js tells us which conversation is open with an
// `inbox:thread` event (its detail is the conversation object the page keeps, so updates are shared).
//
// Everything from the server (reply texts, labels, names) reaches the page as textContent only.

import { api as callApi } from "./api.js";
const T = readJson("inbox-tools-strings");
const tools = readJson("inbox-tools-config");
const inbox = readJson("inbox-config");
const TOKEN = /(?:^|\s)\/([a-z0-9_-]{0,30})$/;

let current = null; // the open conversation ({id, status, assignee_id, branch_id, labels})
const knownLabels = new Set();
let targets = null; // {people, branches} for the transfer menu, fetched once

function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

function $(selector) {
  return document.querySelector(selector);
}

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

const api = (path, body) => callApi(path, body, T.error);

function showError(error) {
  console.error(error);
  const box = $("#reply-error");
  if (box) box.textContent = error.message || T.error;
}

// --- labels -------------------------------------------------------------------------------------

function renderLabels() {
  const bar = $("#thread-labels");
  if (!current) {
    bar.replaceChildren();
    return;
  }
  const chips = (current.labels || []).map((label) => {
    knownLabels.add(label);
    const chip = node("span", "badge bg-blue-lt label-chip d-inline-flex align-items-center", label);
    chip.dataset.label = label;
    const remove = node("button", "btn-close");
    remove.type = "button";
    remove.title = T.remove_label;
    remove.setAttribute("aria-label", `${T.remove_label}: ${label}`);
    remove.addEventListener("click", () => changeLabels([], [label]));
    chip.append(remove);
    return chip;
  });
  const input = node("input", "form-control form-control-sm");
  input.id = "label-add";
  input.maxLength = 30;
  input.placeholder = T.add_label;
  input.setAttribute("aria-label", T.add_label);
  input.setAttribute("list", "label-choices");
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const label = input.value.trim().toLowerCase();
    if (label) changeLabels([label], []);
  });
  bar.replaceChildren(...chips, input);
  $("#label-choices").replaceChildren(...[...knownLabels].sort().map((l) => Object.assign(node("option"), { value: l })));
}

async function changeLabels(add, remove) {
  if (!current) return;
  const conversation = current;
  try {
    const data = await api(`/api/v1/conversations/${conversation.id}/labels`, { add, remove });
    conversation.labels = data.conversation.labels;
    if (current === conversation) {
      renderLabels();
      $("#label-add")?.focus();
    }
    $("#reply-error").textContent = "";
  } catch (error) {
    showError(error);
  }
}

// --- transfer -----------------------------------------------------------------------------------

function mayTransfer(conversation) {
  return inbox.role === "admin" || inbox.role === "supervisor" || conversation.assignee_id === inbox.user_id;
}

async function renderTransfer() {
  const select = $("#transfer-select");
  if (!current || !mayTransfer(current)) {
    select.hidden = true;
    return;
  }
  if (targets === null) {
    targets = await api("/api/v1/transfer-targets");
  }
  const options = [Object.assign(node("option", "", T.transfer), { value: "" })];
  const people = node("optgroup");
  people.label = T.to_person;
  for (const p of targets.people) {
    if (p.id === current.assignee_id) continue;
    people.append(Object.assign(node("option", "", p.name), { value: `user:${p.id}` }));
  }
  const branches = node("optgroup");
  branches.label = T.to_branch;
  for (const b of targets.branches) {
    branches.append(Object.assign(node("option", "", b.name), { value: `branch:${b.id}` }));
  }
  select.replaceChildren(...options, people, branches);
  select.value = "";
  select.hidden = false;
}

async function transfer(choice) {
  if (!current || !choice) return;
  const [kind, id] = choice.split(":");
  const body = kind === "user" ? { assignee_id: Number(id) } : { branch_id: Number(id) };
  const data = await api(`/api/v1/conversations/${current.id}/transfer`, body);
  if (current && current.id === data.conversation.id) {
    current.assignee_id = data.conversation.assignee_id;
    current.branch_id = data.conversation.branch_id;
    renderTransfer().catch(showError);
  }
}

// --- canned replies -----------------------------------------------------------------------------

const canned = { items: [], index: 0, seq: 0, timer: null, token: null };

function suggestionBox() {
  return $("#canned-suggestions");
}

function hideSuggestions() {
  canned.items = [];
  canned.token = null;
  suggestionBox().hidden = true;
  suggestionBox().replaceChildren();
}

function tokenAtCaret(box) {
  if (box.selectionStart !== box.selectionEnd) return null;
  const before = box.value.slice(0, box.selectionStart);
  const match = TOKEN.exec(before);
  if (!match) return null;
  return { prefix: match[1], start: box.selectionStart - match[1].length - 1, end: box.selectionStart };
}

function renderSuggestions() {
  const box = suggestionBox();
  if (!canned.items.length) {
    hideSuggestions();
    return;
  }
  const rows = canned.items.map((reply, index) => {
    const row = node("button", `list-group-item list-group-item-action py-1 canned-item${index === canned.index ? " active" : ""}`);
    row.type = "button";
    row.setAttribute("role", "option");
    row.setAttribute("aria-selected", String(index === canned.index));
    row.dataset.shortcut = reply.shortcut;
    const head = node("div", "d-flex gap-2");
    head.append(node("code", "", `/${reply.shortcut}`), node("span", "fw-bold text-truncate", reply.title));
    row.append(head, node("div", "small text-secondary canned-text", reply.body));
    row.addEventListener("mousedown", (event) => {
      event.preventDefault(); // keep the focus in the reply box
      insert(index);
    });
    return row;
  });
  box.replaceChildren(...rows);
  box.hidden = false;
  rows[canned.index]?.scrollIntoView({ block: "nearest" });
}

async function lookUp(token) {
  const seq = ++canned.seq;
  const query = new URLSearchParams({ q: token.prefix });
  if (current) query.set("conversation_id", String(current.id));
  let data;
  try {
    data = await api(`/api/v1/canned?${query}`);
  } catch (error) {
    if (seq === canned.seq) hideSuggestions();
    console.error(error);
    return;
  }
  if (seq !== canned.seq) return;
  canned.items = data.replies;
  canned.index = 0;
  canned.token = token;
  renderSuggestions();
}

function onInput() {
  const token = tokenAtCaret($("#reply-body"));
  clearTimeout(canned.timer);
  if (!token) {
    canned.seq++;
    hideSuggestions();
    return;
  }
  canned.timer = setTimeout(() => lookUp(token), 120);
}

function insert(index) {
  const reply = canned.items[index];
  const token = canned.token;
  const box = $("#reply-body");
  if (!reply || !token) return;
  box.value = box.value.slice(0, token.start) + reply.body + box.value.slice(token.end);
  const caret = token.start + reply.body.length;
  box.setSelectionRange(caret, caret);
  hideSuggestions();
  box.focus();
  box.dispatchEvent(new Event("change"));
}

/** Runs before inbox.js's own Enter-sends handler (capture on the form), and only while the list shows. */
function onKeydown(event) {
  if (event.target.id !== "reply-body" || suggestionBox().hidden || !canned.items.length) return;
  const last = canned.items.length - 1;
  let handled = true;
  if (event.key === "ArrowDown") canned.index = canned.index >= last ? 0 : canned.index + 1;
  else if (event.key === "ArrowUp") canned.index = canned.index <= 0 ? last : canned.index - 1;
  else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) insert(canned.index);
  else if (event.key === "Escape") hideSuggestions();
  else handled = false;
  if (!handled) return;
  event.preventDefault();
  event.stopPropagation();
  if (!suggestionBox().hidden) renderSuggestions();
}

// --- wiring -------------------------------------------------------------------------------------

document.addEventListener("inbox:thread", (event) => {
  if (current?.id !== event.detail.id) hideSuggestions();
  current = event.detail;
  renderLabels();
  renderTransfer().catch(showError);
});
$("#reply-body").addEventListener("input", onInput);
$("#reply-body").addEventListener("blur", () => setTimeout(hideSuggestions, 150));
$("#reply-form").addEventListener("keydown", onKeydown, { capture: true });
$("#transfer-select").addEventListener("change", (event) => {
  const choice = event.target.value;
  event.target.value = "";
  transfer(choice).catch(showError);
});
if (tools.may_manage_canned) {
  const link = node("a", "small ms-2", T.manage_canned);
  link.href = "/inbox/canned";
  link.id = "canned-manage-link";
  $("#reply-form .d-flex")?.insertBefore(link, $("#reply-error"));
}
