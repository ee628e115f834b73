// The call list works with a plain GET form; this shows call times in the browser's language and time
// zone (the server writes them in the zone the form last sent, UTC at first), tells the form which time
// zone its dates are in, and sends the listen / whisper / barge buttons of live calls.
import { api } from "./api.js";

const lang = document.documentElement.lang || undefined;
const T = JSON.parse(document.getElementById("calls-strings").textContent);
const status = document.getElementById("calls-status");

for (const time of document.querySelectorAll("time[data-local]")) {
  const date = new Date(time.dateTime);
  if (Number.isNaN(date.getTime())) continue;
  time.title = time.textContent;
  time.textContent = date.toLocaleString(lang, {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

const tz = document.querySelector('#calls-filter input[name="tz"]');
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (tz && zone) tz.value = zone;
const zoneLabel = document.getElementById("calls-zone");
if (zoneLabel && zone) zoneLabel.textContent = `(${zone})`;

function show(kind, text) {
  status.className = `alert alert-${kind}`;
  status.textContent = text;
}

document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-monitor]") : null;
  if (!button) return;
  const group = button.closest(".call-monitor");
  const buttons = group ? [...group.querySelectorAll("button")] : [button];
  buttons.forEach((b) => (b.disabled = true));
  try {
    await api(`/api/v1/calls/${button.dataset.callId}/monitor`, { mode: button.dataset.monitor }, T.error);
    show("success", T.ringing);
  } catch (error) {
    show("danger", error.message || T.error);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
});
