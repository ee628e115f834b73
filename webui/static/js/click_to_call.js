// Click-to-call on every page: a click on a phone link (`<a href="tel:…">`) or on any element with
// `data-call-number` rings the person's own phone through the hub; when they answer, the PBX dials the
// customer. `data-task-id` / `data-contact-id` on the element or an ancestor say what the call is for.
// A small status box says what happens ("Calling…", then the hub's answer or its readable error).
import { api } from "./api.js";

const T = JSON.parse(document.getElementById("click-to-call-strings").textContent);
let box = null;
let timer = null;
let busy = false;

function status(kind, text) {
  if (!box) {
    box = document.createElement("div");
    box.id = "click-to-call-status";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    box.className = "alert shadow position-fixed bottom-0 end-0 m-3";
    box.style.zIndex = "1080";
    box.style.maxWidth = "26rem";
    document.body.append(box);
  }
  box.className = `alert alert-${kind} shadow position-fixed bottom-0 end-0 m-3`;
  box.dataset.state = kind;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(timer);
  if (kind !== "info") timer = setTimeout(() => (box.hidden = true), kind === "danger" ? 10000 : 6000);
}

function numberOf(element) {
  if (element.dataset.callNumber) return element.dataset.callNumber.trim();
  const href = element.getAttribute("href") || "";
  try {
    return decodeURIComponent(href.slice(4).split("?")[0]).trim();
  } catch {
    return href.slice(4).trim();
  }
}

function idFrom(element, name) {
  const holder = element.closest(`[data-${name}]`);
  const value = holder ? holder.getAttribute(`data-${name}`) : "";
  return /^[0-9]{1,10}$/.test(value || "") ? Number(value) : undefined;
}

document.addEventListener("click", async (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  const target = event.target instanceof Element ? event.target : null;
  const element = target?.closest('a[href^="tel:"], [data-call-number]');
  if (!element) return;
  event.preventDefault();
  const number = numberOf(element);
  if (!number || busy) return;
  const body = { number };
  const taskId = idFrom(element, "task-id");
  const contactId = idFrom(element, "contact-id");
  if (taskId !== undefined) body.task_id = taskId;
  if (contactId !== undefined) body.contact_id = contactId;
  busy = true;
  status("info", T.calling.replace("{number}", number));
  try {
    await api("/api/v1/calls/originate", body, T.error);
    status("success", T.ringing.replace("{number}", number));
  } catch (error) {
    status("danger", error.message || T.error);
  } finally {
    busy = false;
  }
});
