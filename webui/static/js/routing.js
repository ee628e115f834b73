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
