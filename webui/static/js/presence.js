// The agent's presence in the header. The router gives new conversations only to agents who are online;
// this page tells it the person is still here with a heartbeat every 30 s while they have moved, typed or
// clicked in the last few minutes — a closed browser or an idle one stops the heartbeats, and the router
// sets the agent away after its idle setting.
import { api } from "./api.js";

const HEARTBEAT_MS = 30_000;
const ACTIVE_WINDOW_MS = 5 * 60_000;
const COLOURS = { online: "status-green", after_call: "status-yellow", away: "status-orange", offline: "status-secondary" };

const select = document.getElementById("presence-select");
const dot = document.getElementById("presence-dot");
let lastActivity = Date.now();

function show(presence) {
  select.value = presence;
  dot.className = `status-dot status-dot-animated ${COLOURS[presence] || "status-secondary"}`;
}

async function load() {
  try {
    const data = await api("/api/v1/me/presence");
    show(data.presence);
    select.disabled = false;
  } catch {
    select.disabled = true;
  }
}

select.addEventListener("change", async () => {
  select.disabled = true;
  try {
    const data = await api("/api/v1/me/presence", { presence: select.value });
    show(data.presence);
  } catch {
    await load();
  } finally {
    select.disabled = false;
  }
});

for (const name of ["pointermove", "keydown", "click", "focus"]) {
  window.addEventListener(name, () => (lastActivity = Date.now()), { passive: true });
}

setInterval(async () => {
  if (document.visibilityState === "hidden" && Date.now() - lastActivity > ACTIVE_WINDOW_MS) return;
  if (Date.now() - lastActivity > ACTIVE_WINDOW_MS) return;
  try {
    const data = await api("/api/v1/me/heartbeat", {});
    if (data?.presence && data.presence !== select.value) show(data.presence);
  } catch {
    // the next beat tries again
  }
}, HEARTBEAT_MS);

load();
