// The screen pop: when the agent's phone rings, a card with the caller (their name, or "New caller"), the
// number, its region and open leads, and one click to their conversation. It goes away when the call is
// answered or ends (on every screen it popped on: a queue rings several agents), or after the ring.
//
// On the inbox page the page's live feed passes `call` frames on as `sb:call` events; elsewhere this module
// opens a personal feed (`/live?only=personal`: only this person's calls and notifications) and passes
// notifications on to the bell as `sb:notification`. Caller names reach the page only as textContent.
import { el, icon } from "./dom.js";

const root = document.getElementById("call-pops");
const T = JSON.parse(document.getElementById("call-pop-strings").textContent);
const RING_MS = 60_000; // longer than any dial timeout: a card whose end we never heard of still goes
const MAX_BACKOFF = 30_000;
const shown = new Map(); // linkedid -> {node, timer}

function hide(linkedid) {
  const entry = shown.get(linkedid);
  if (!entry) return;
  clearTimeout(entry.timer);
  entry.node.remove();
  shown.delete(linkedid);
}

function card(call) {
  const name = call.name || (call.new_caller ? T.newCaller : call.number || T.unknownNumber);
  const open = Number.isInteger(call.conversation_id)
    ? el(
        "a",
        { className: "btn btn-primary btn-sm call-pop-open", href: `/inbox/${call.conversation_id}` },
        icon("message", "me-1"),
        T.open,
      )
    : null;
  const close = el("button", { type: "button", className: "btn-close call-pop-close", "aria-label": T.close, title: T.close });
  close.addEventListener("click", () => hide(call.linkedid));
  return el(
    "div",
    { className: "card card-sm shadow call-pop", role: "alert", dataset: { linkedid: call.linkedid, callId: call.call_id } },
    el(
      "div",
      { className: "card-body" },
      el(
        "div",
        { className: "d-flex align-items-center gap-2 mb-2" },
        el("span", { className: "avatar avatar-sm rounded-circle bg-green-lt call-pop-ring" }, icon(call.direction === "out" ? "phone-outgoing" : "phone-incoming")),
        el("span", { className: "small text-secondary fw-bold text-uppercase", text: call.direction === "out" ? T.outgoing : T.incoming }),
        el("span", { className: "ms-auto" }, close),
      ),
      el(
        "div",
        { className: "d-flex align-items-center gap-2 flex-wrap" },
        el("h3", { className: "m-0 text-break call-pop-name", text: name }),
        call.new_caller && call.name ? el("span", { className: "badge bg-azure-lt call-pop-new", text: T.newCaller }) : null,
      ),
      el("div", { className: "text-secondary call-pop-number", text: call.number || T.unknownNumber }),
      call.region ? el("div", { className: "small text-secondary call-pop-region", title: T.region }, icon("map-pin", "me-1"), call.region) : null,
      call.open_leads > 0 ? el("div", { className: "small call-pop-leads", text: T.leads.replace("{n}", call.open_leads) }) : null,
      open ? el("div", { className: "mt-2" }, open) : null,
    ),
  );
}

function onCall(call) {
  if (!call || typeof call.linkedid !== "string") return;
  if (call.event !== "ringing") {
    hide(call.linkedid); // answered (here or elsewhere) or ended
    return;
  }
  hide(call.linkedid); // ringing again (a transfer back): the newest card
  const node = card(call);
  root.prepend(node);
  shown.set(call.linkedid, { node, timer: setTimeout(() => hide(call.linkedid), RING_MS) });
}

function personalFeed() {
  let backoff = 1000;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/live?only=personal`);
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        backoff = 1000;
        document.body.dataset.callFeed = "connected";
      }
      else if (frame.type === "call") onCall(frame.call);
      else if (frame.type === "notification") {
        document.dispatchEvent(new CustomEvent("sb:notification", { detail: frame.notification }));
      }
    });
    socket.addEventListener("close", () => {
      document.body.dataset.callFeed = "disconnected";
      const delay = backoff * (0.5 + Math.random() / 2);
      backoff = Math.min(MAX_BACKOFF, backoff * 2);
      setTimeout(connect, delay);
    });
  };
  connect();
}

document.addEventListener("sb:call", (event) => onCall(event.detail));
if (!document.getElementById("inbox-config")) personalFeed(); // the inbox page has its own feed
document.body.dataset.callPop = "ready";
