// The notification bell in the header: the unread count, a dropdown of the latest notifications (each a
// link to its conversation) and "mark read". On /inbox the page's live feed passes new notifications on as
// `sb:notification` events; elsewhere the count is as of the page load.
//
// Notification texts quote what colleagues wrote: they reach the page only as textContent.

import { api as callApi } from "./api.js";
const root = document.getElementById("notifications");
const T = JSON.parse(document.getElementById("notifications-strings").textContent);
const toggle = document.getElementById("notifications-toggle");
const menu = document.getElementById("notifications-menu");
const list = document.getElementById("notifications-list");
const badge = document.getElementById("notifications-count");

const state = { items: [], unread: 0 };

const call = (path, body) => callApi(path, body);

function renderCount() {
  badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
  badge.hidden = state.unread === 0;
  root.dataset.unread = String(state.unread);
}

function formatTime(iso) {
  return new Date(iso).toLocaleString(document.documentElement.lang || undefined, {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

function itemNode(n) {
  const link = document.createElement("a");
  link.className = `list-group-item list-group-item-action notification-item${n.read_at ? "" : " fw-bold"}`;
  link.href = n.conversation_id ? `/inbox/${n.conversation_id}` : "/inbox";
  link.dataset.id = String(n.id);
  const head = document.createElement("div");
  head.className = "small text-secondary d-flex gap-2";
  const kind = document.createElement("span");
  kind.textContent = T[n.kind] || n.kind;
  const time = document.createElement("time");
  time.className = "ms-auto";
  time.dateTime = n.created_at;
  time.textContent = formatTime(n.created_at);
  head.append(kind, time);
  const text = document.createElement("div");
  text.className = "text-truncate";
  text.textContent = n.text;
  link.append(head, text);
  link.addEventListener("click", (event) => {
    if (n.read_at) return;
    event.preventDefault();
    call("/api/v1/notifications/read", { ids: [n.id] })
      .catch(() => {})
      .finally(() => location.assign(link.href));
  });
  return link;
}

function renderList() {
  if (!state.items.length) {
    const empty = document.createElement("div");
    empty.className = "list-group-item text-secondary small";
    empty.textContent = T.empty;
    list.replaceChildren(empty);
    return;
  }
  list.replaceChildren(...state.items.map(itemNode));
}

async function load() {
  const data = await call("/api/v1/notifications");
  state.items = data.notifications;
  state.unread = data.unread;
  renderCount();
  renderList();
}

function setOpen(open) {
  menu.classList.toggle("show", open);
  toggle.setAttribute("aria-expanded", String(open));
  if (open) load().catch(console.error);
}

toggle.addEventListener("click", (event) => {
  event.stopPropagation();
  setOpen(!menu.classList.contains("show"));
});
document.addEventListener("click", (event) => {
  if (menu.classList.contains("show") && !root.contains(event.target)) setOpen(false);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && menu.classList.contains("show")) setOpen(false);
});
document.getElementById("notifications-read-all").addEventListener("click", async () => {
  try {
    const data = await call("/api/v1/notifications/read", {});
    state.unread = data.unread;
    const now = new Date().toISOString();
    for (const n of state.items) n.read_at = n.read_at || now;
    renderCount();
    renderList();
  } catch (error) {
    console.error(error);
  }
});
document.addEventListener("sb:notification", (event) => {
  const n = event.detail;
  if (!n || state.items.some((x) => x.id === n.id)) return;
  state.items.unshift(n);
  state.items = state.items.slice(0, 20);
  state.unread += 1;
  renderCount();
  if (menu.classList.contains("show")) renderList();
});

load().catch(console.error);
