// The list pages' filter bar: the page's state (filters, columns, sort, search) is the URL, as the server
// rendered it into #list-state; this builds a condition (field → operator by its kind → a value input that
// fits: a select for choices, date inputs for dates), chooses columns, and saves, picks, defaults and
// deletes views through /api/v1/views. Every change is a navigation to the new URL, so a list is a link.
import { api, csrf } from "./api.js";
import { el } from "./dom.js";

const state = JSON.parse(document.getElementById("list-state").textContent);
const T = JSON.parse(document.getElementById("list-strings").textContent);
const fields = new Map(state.fields.map((f) => [f.name, f]));
const status = document.getElementById("list-status");
const fieldSelect = document.getElementById("list-field");
const opSelect = document.getElementById("list-op");
const valueBox = document.getElementById("list-value");

function show(kind, text) {
  status.className = `alert alert-${kind}`;
  status.textContent = text;
}

function go(change = {}) {
  const next = { ...state, ...change };
  const params = new URLSearchParams();
  params.set("filters", JSON.stringify(next.filters));
  params.set("columns", next.columns.join(","));
  if (next.sort) params.set("sort", next.sort);
  if (next.q) params.set("q", next.q);
  location.assign(`${location.pathname}?${params}`);
}

// --- the condition builder -------------------------------------------------------------------------------

const NO_VALUE = new Set(["empty", "not_empty"]);

function input(field, extra = {}) {
  const kind = field.kind;
  if (field.options.length && kind !== "tags") {
    const select = el("select", { className: "form-select w-auto list-value-input", ...extra });
    for (const o of field.options) select.append(el("option", { value: o.code, text: o.label }));
    return select;
  }
  if (kind === "boolean") {
    return el(
      "select",
      { className: "form-select w-auto list-value-input", ...extra },
      el("option", { value: "true", text: T.yes }),
      el("option", { value: "false", text: T.no }),
    );
  }
  const types = { date: "date", datetime: "date", number: "number" };
  const props = { className: "form-control w-auto list-value-input", type: types[kind] || "text", ...extra };
  if (kind === "money") props.inputmode = "decimal";
  if (kind === "number") props.step = "any";
  if (!types[kind]) props.maxlength = "200";
  return el("input", { placeholder: T.value, ...props });
}

function renderValue() {
  valueBox.replaceChildren();
  const field = fields.get(fieldSelect.value);
  const op = opSelect.value;
  if (!field || NO_VALUE.has(op)) return;
  if (op === "between") {
    valueBox.append(input(field, { "aria-label": T.value }), el("span", { className: "align-self-center", text: T.and }), input(field, { "aria-label": T.value }));
  } else if (op === "in" && field.options.length) {
    valueBox.append(input(field, { multiple: true, size: Math.min(5, field.options.length), "aria-label": T.value }));
  } else if (op === "in") {
    valueBox.append(input(field, { placeholder: T.values_hint, "aria-label": T.value }));
  } else {
    valueBox.append(input(field, { "aria-label": T.value }));
  }
}

function renderOperators() {
  const field = fields.get(fieldSelect.value);
  opSelect.replaceChildren(...(field ? field.operators : []).map((op) => el("option", { value: op, text: T.operators[op] || op })));
  renderValue();
}

function readValue() {
  const op = opSelect.value;
  if (NO_VALUE.has(op)) return { ok: true };
  const inputs = [...valueBox.querySelectorAll(".list-value-input")];
  if (op === "in" && inputs[0]?.multiple) {
    const picked = [...inputs[0].selectedOptions].map((o) => o.value);
    return { ok: picked.length > 0, value: picked };
  }
  const values = inputs.map((i) => i.value.trim());
  if (values.some((v) => v === "")) return { ok: false };
  if (op === "between") return { ok: true, value: values };
  if (op === "in") {
    const parts = values[0].split(",").map((v) => v.trim()).filter(Boolean);
    return { ok: parts.length > 0, value: parts };
  }
  const field = fields.get(fieldSelect.value);
  if (field?.kind === "boolean") return { ok: true, value: values[0] === "true" };
  return { ok: true, value: values[0] };
}

fieldSelect.replaceChildren(...state.fields.map((f) => el("option", { value: f.name, text: f.label })));
fieldSelect.addEventListener("change", renderOperators);
opSelect.addEventListener("change", renderValue);
renderOperators();

document.getElementById("list-add").addEventListener("click", () => {
  const read = readValue();
  if (!read.ok) {
    show("warning", T.need_value);
    return;
  }
  const condition = { field: fieldSelect.value, op: opSelect.value };
  if ("value" in read) condition.value = read.value;
  go({ filters: [...state.filters, condition] });
});

for (const button of document.querySelectorAll(".list-condition-remove")) {
  button.addEventListener("click", () => {
    const index = Number(button.dataset.index);
    go({ filters: state.filters.filter((_, i) => i !== index) });
  });
}

// --- columns ----------------------------------------------------------------------------------------------

const choices = document.getElementById("list-column-choices");
for (const f of state.fields) {
  choices.append(
    el(
      "label",
      { className: "form-check" },
      el("input", { className: "form-check-input", type: "checkbox", value: f.name, checked: state.columns.includes(f.name) }),
      el("span", { className: "form-check-label", text: f.label }),
    ),
  );
}
document.getElementById("list-columns-apply").addEventListener("click", () => {
  const checked = [...choices.querySelectorAll("input:checked")].map((i) => i.value);
  const kept = state.columns.filter((name) => checked.includes(name));
  const added = checked.filter((name) => !kept.includes(name));
  const columns = [...kept, ...added];
  go({ columns: columns.length ? columns : state.default_columns, sort: columns.includes(state.sort.replace(/^-/, "")) ? state.sort : "" });
});

// --- saved views ------------------------------------------------------------------------------------------

const picker = document.getElementById("list-view-picker");
picker.addEventListener("change", () => document.getElementById("list-view-form").submit());

const saveForm = document.getElementById("list-save-form");
document.getElementById("list-save-open").addEventListener("click", () => {
  saveForm.classList.toggle("d-none");
  document.getElementById("list-save-name").focus();
});
saveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("list-save-name").value.trim();
  if (!name) {
    show("warning", T.need_name);
    return;
  }
  const body = {
    entity: state.entity,
    name,
    filters: state.filters,
    columns: state.columns,
    sort: state.sort,
    shared: document.getElementById("list-save-shared")?.checked ?? false,
    default: document.getElementById("list-save-default").checked,
  };
  try {
    const { view } = await api("/api/v1/views", body, T.error);
    location.assign(`${location.pathname}?view=${view.id}`);
  } catch (error) {
    show("danger", error.message);
  }
});

async function send(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.reason || T.error);
  return data;
}

for (const [id, wanted] of [
  ["list-view-default", true],
  ["list-view-undefault", false],
]) {
  document.getElementById(id)?.addEventListener("click", async (event) => {
    try {
      await send("POST", `/api/v1/views/${event.currentTarget.dataset.view}/default`, { default: wanted });
      location.reload();
    } catch (error) {
      show("danger", error.message);
    }
  });
}

document.getElementById("list-view-delete")?.addEventListener("click", async (event) => {
  if (!window.confirm(T.confirm_delete)) return;
  try {
    await send("DELETE", `/api/v1/views/${event.currentTarget.dataset.view}`);
    location.assign(`${location.pathname}?all=1`);
  } catch (error) {
    show("danger", error.message);
  }
});
