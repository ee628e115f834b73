// The quick edit of the customer's name, phone and e-mail in the inbox's contact panel.
//
// Values reach the page only through DOM properties (`value`, textContent), never as markup. While a
// form is open, the panel is not redrawn under the agent's fingers (`isEditing`).

let editing = null; // the id of the contact whose form is open

export function isEditing(contactId) {
  return editing !== null && editing === contactId;
}

export function stopEditing() {
  editing = null;
}

/** The "Edit" button, or the open form; `onSaved(contact)` gets the card the server stored. */
export function contactEditor({ contact, el, T, api, onSaved, redraw }) {
  if (editing !== contact.id) {
    const button = el(
      "button",
      { type: "button", className: "btn btn-sm btn-outline-secondary ms-auto", id: "contact-edit" },
      el("i", { className: "ti ti-pencil me-1", "aria-hidden": "true" }),
      T.edit,
    );
    button.addEventListener("click", () => {
      editing = contact.id;
      redraw();
      document.getElementById("contact-first-name")?.focus();
    });
    return button;
  }
  const input = (id, name, label, value, type, max) =>
    el(
      "div",
      { className: "mb-2" },
      el("label", { className: "form-label small mb-1", for: id, text: label }),
      (() => {
        const node = el("input", { className: "form-control form-control-sm", id, name, type, maxlength: max });
        node.value = value || "";
        return node;
      })(),
    );
  const error = el("div", { className: "small text-danger mb-2", id: "contact-edit-error", role: "alert" });
  const save = el("button", { type: "submit", className: "btn btn-sm btn-primary", id: "contact-save", text: T.save });
  const cancel = el("button", { type: "button", className: "btn btn-sm btn-link", id: "contact-cancel", text: T.cancel });
  const form = el(
    "form",
    { className: "mb-3 w-100", id: "contact-edit-form", autocomplete: "off" },
    input("contact-first-name", "first_name", T.first_name, contact.first_name, "text", 100),
    input("contact-last-name", "last_name", T.last_name, contact.last_name, "text", 100),
    input("contact-phone", "phone", T.phone, contact.phone, "tel", 40),
    input("contact-email", "email", T.email, contact.email, "email", 254),
    error,
    el("div", { className: "d-flex gap-2" }, save, cancel),
  );
  cancel.addEventListener("click", () => {
    editing = null;
    redraw();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel.click();
  });
  let confirmDuplicate = false; // set once the agent has seen the matches and saves anyway
  form.addEventListener("input", () => {
    confirmDuplicate = false;
    save.textContent = T.save;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(
      ["first_name", "last_name", "phone", "email"].map((name) => [name, form.elements[name].value.trim()]),
    );
    if (confirmDuplicate) body.confirm_duplicate = true;
    save.disabled = true;
    error.replaceChildren();
    try {
      const data = await api(`/api/v1/contacts/${contact.id}`, body);
      editing = null;
      onSaved(data.contact);
    } catch (problem) {
      error.textContent = problem.message || T.error;
      const matches = problem.status === 409 ? problem.data?.duplicates || [] : [];
      if (matches.length) {
        // "This looks like …": the matches, each opening its contact page; saving again confirms.
        error.append(
          el(
            "ul",
            { className: "mb-0 ps-3", id: "contact-duplicates" },
            matches.map((m) =>
              el("li", {}, el("a", { href: `/contacts/${m.contact_id}`, target: "_blank", text: m.name })),
            ),
          ),
        );
        confirmDuplicate = true;
        save.textContent = T.save_anyway || T.save;
      }
      save.disabled = false;
    }
  });
  return form;
}
