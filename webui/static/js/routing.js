// The routing desk: a supervisor changes an agent's presence or capacity in place, and asks the router
// who would get a chat or call now (a dry run: nothing is stored or taken).
import { api } from "./api.js";

const T = JSON.parse(document.getElementById("routing-strings").textContent);
const error = document.getElementById("agents-error");

async function update(row, body) {
  error.textContent = "";
  error.hidden = true;
  try {
    const data = await api(`/api/v1/routing/agents/${row.dataset.agent}`, body, T.error);
    row.querySelector(".agent-presence").value = data.agent.presence;
    row.querySelector(".agent-capacity").value = data.agent.capacity;
    row.querySelector(".agent-chats").textContent = data.agent.chats;
    row.querySelector(".agent-today").textContent = data.agent.assignments_today;
    const endpoint = row.querySelector(".agent-endpoint");
    if (endpoint) endpoint.value = data.agent.phone_endpoint || "";
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}

for (const row of document.querySelectorAll("#agents tr[data-agent]")) {
  row.querySelector(".agent-presence").addEventListener("change", (e) => update(row, { presence: e.target.value }));
  const capacity = row.querySelector(".agent-capacity");
  const during = row.querySelector(".agent-during-call");
  const saveCapacity = () => update(row, { capacity: Number(capacity.value), chats_during_call: during.checked });
  capacity.addEventListener("change", saveCapacity);
  during.addEventListener("change", saveCapacity);
  // admins only: what the phone system dials for the agent's calls (empty: no calls)
  const endpoint = row.querySelector(".agent-endpoint");
  if (endpoint) endpoint.addEventListener("change", () => update(row, { phone_endpoint: endpoint.value.trim() || null }));
}

document.getElementById("dry-run").addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = document.getElementById("dry-result");
  const branch = document.getElementById("dry-branch").value;
  try {
    const data = await api(
      "/api/v1/routing/dry-run",
      {
        kind: document.getElementById("dry-kind").value,
        channel: document.getElementById("dry-channel").value,
        branch_id: branch ? Number(branch) : null,
        language: document.getElementById("dry-language").value || null,
      },
      T.error,
    );
    const strong = document.createElement("strong");
    strong.textContent = data.agent || "";
    const why = document.createElement("div");
    why.className = "small text-secondary";
    why.textContent = T.reasons[data.reason] || data.reason;
    result.replaceChildren(...(data.agent_id ? [strong, why] : [document.createTextNode(T.nobody)]));
  } catch (e) {
    result.textContent = e.message;
  }
});

// Rules (admins): save the form as a rule for its branch / channel, or delete a rule; the page reloads to
// show the table as the server now has it.
const ruleForm = document.getElementById("rule-form");
if (ruleForm) {
  ruleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [name, value] of new FormData(ruleForm)) {
      body[name] = value === "" ? null : ["branch_id", "channel", "sticky_mode"].includes(name) ? (name === "branch_id" ? Number(value) : value) : Number(value);
    }
    try {
      await api("/api/v1/routing/rules", body, T.error);
      location.reload();
    } catch (e) {
      document.getElementById("rule-error").textContent = e.message;
    }
  });
}
for (const button of document.querySelectorAll(".rule-delete")) {
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    try {
      await api(
        "/api/v1/routing/rules/delete",
        { branch_id: row.dataset.branch ? Number(row.dataset.branch) : null, channel: row.dataset.channel || null },
        T.error,
      );
      location.reload();
    } catch (e) {
      document.getElementById("rule-error").textContent = e.message;
    }
  });
}

// Skills: pick an agent, tick what they may be given (nothing ticked in a group: any), save.
const skillsForm = document.getElementById("skills-form");
const skillsAgent = document.getElementById("skills-agent");
function showSkills() {
  const option = skillsAgent.selectedOptions[0];
  const skills = option?.dataset.skills ? JSON.parse(option.dataset.skills) : {};
  for (const box of skillsForm.querySelectorAll("input[type=checkbox]")) {
    box.checked = (skills[box.name] || []).map(String).includes(box.value);
  }
  document.getElementById("skills-products").value = (skills.products || []).join(", ");
}
skillsAgent.addEventListener("change", showSkills);
skillsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("skills-status");
  const ticked = (name) => [...skillsForm.querySelectorAll(`input[name=${name}]:checked`)].map((b) => b.value);
  const body = {
    branches: ticked("branches").map(Number),
    languages: ticked("languages"),
    channels: ticked("channels"),
    products: document.getElementById("skills-products").value.split(",").map((p) => p.trim()).filter(Boolean),
  };
  try {
    const data = await api(`/api/v1/routing/agents/${skillsAgent.value}/skills`, body, T.error);
    skillsAgent.selectedOptions[0].dataset.skills = JSON.stringify(data.agent.skills);
    showSkills();
    status.className = "small text-success";
    status.textContent = T.saved;
  } catch (e) {
    status.className = "small text-danger";
    status.textContent = e.message;
  }
});

// Working hours (admins): a branch's week as "09:00-13:00, 14:00-18:00" per day, holidays, and the
// off-hours reply per language; choosing a branch loads what the server has.
const hoursForm = document.getElementById("hours-form");
if (hoursForm) {
  const branch = document.getElementById("hours-branch");
  const status = document.getElementById("hours-status");
  const say = (text, ok) => {
    status.className = ok ? "small text-success" : "small text-danger";
    status.textContent = text;
  };
  branch.addEventListener("change", async () => {
    say("", true);
    if (!branch.value) return;
    hoursForm.setAttribute("aria-busy", "true"); // what the server has is on its way: don't type yet
    const data = await api("/api/v1/routing/rules", undefined, T.error).finally(() =>
      hoursForm.setAttribute("aria-busy", "false"),
    );
    const hours = data.hours.find((h) => String(h.branch_id) === branch.value) || {};
    document.getElementById("hours-timezone").value = hours.timezone || "Europe/Chisinau";
    for (const input of hoursForm.querySelectorAll(".hours-day")) {
      input.value = ((hours.week || {})[input.dataset.day] || []).map(([a, b]) => `${a}-${b}`).join(", ");
    }
    document.getElementById("hours-holidays").value = (hours.holidays || []).join(", ");
    for (const area of hoursForm.querySelectorAll(".hours-reply")) {
      area.value = (hours.replies || {})[area.dataset.language] || "";
    }
  });
  hoursForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const week = {};
    for (const input of hoursForm.querySelectorAll(".hours-day")) {
      const parts = input.value.split(",").map((p) => p.trim()).filter(Boolean);
      const pairs = parts.map((p) => p.split("-").map((t) => t.trim()));
      if (pairs.some((pair) => pair.length !== 2)) {
        input.focus();
        say(T.interval, false);
        return;
      }
      week[input.dataset.day] = pairs;
    }
    const replies = {};
    for (const area of hoursForm.querySelectorAll(".hours-reply")) replies[area.dataset.language] = area.value;
    try {
      await api(
        "/api/v1/routing/hours",
        {
          branch_id: Number(branch.value),
          timezone: document.getElementById("hours-timezone").value,
          week,
          holidays: document.getElementById("hours-holidays").value.split(",").map((d) => d.trim()).filter(Boolean),
          replies,
        },
        T.error,
      );
      say(T.saved, true);
    } catch (e) {
      say(e.message, false);
    }
  });
}

// Live desk: every few seconds (while the tab is visible) presence, load and today's count follow the
// server; a field the supervisor is editing is left alone.
const REFRESH_MS = 5000;
async function refresh() {
  if (document.hidden) return;
  let data;
  try {
    data = await api("/api/v1/routing/agents", undefined, T.error);
  } catch {
    return; // the next round tries again
  }
  for (const agent of data.agents) {
    const row = document.querySelector(`#agents tr[data-agent="${agent.id}"]`);
    if (!row) continue;
    const presence = row.querySelector(".agent-presence");
    if (document.activeElement !== presence) presence.value = agent.presence;
    const capacity = row.querySelector(".agent-capacity");
    if (document.activeElement !== capacity) capacity.value = agent.capacity;
    row.querySelector(".agent-chats").textContent = agent.chats;
    row.querySelector(".agent-today").textContent = agent.assignments_today;
    row.querySelector(".agent-on-call").hidden = !agent.on_call;
  }
}
// The decision log: who got what and why, newest first, in the supervisor's words and clock.
const decisions = document.querySelector("#decisions tbody");
function decisionRow(d) {
  const row = document.createElement("tr");
  row.dataset.id = d.id;
  const when = document.createElement("td");
  when.className = "text-nowrap";
  when.textContent = new Date(d.at).toLocaleTimeString();
  const item = document.createElement("td");
  if (d.kind === "chat") {
    const link = document.createElement("a");
    link.href = `/inbox/${encodeURIComponent(d.item_id)}`;
    link.textContent = `${T.chat} #${d.item_id}`;
    item.append(link);
  } else {
    item.textContent = `${T.call} ${d.item_id}`;
  }
  const agent = document.createElement("td");
  agent.textContent = d.agent || "—";
  const why = document.createElement("td");
  why.textContent = T.reasons[d.reason] || d.reason;
  row.append(when, item, agent, why);
  return row;
}
async function refreshDecisions() {
  if (document.hidden) return;
  try {
    const data = await api("/api/v1/routing/decisions?limit=30", undefined, T.error);
    if (data.decisions.length) decisions.replaceChildren(...data.decisions.map(decisionRow));
  } catch {
    // the next round tries again
  }
}
for (const cell of document.querySelectorAll("#decisions .decision-reason")) {
  cell.textContent = T.reasons[cell.dataset.reason] || cell.dataset.reason;
}
for (const time of document.querySelectorAll("#decisions time")) {
  time.textContent = new Date(time.getAttribute("datetime")).toLocaleTimeString();
}
setInterval(() => {
  refresh();
  refreshDecisions();
}, REFRESH_MS);
