// "Link another contact" in the inbox's contact panel: the same person wrote on two channels the hub
// could not tie together (no shared phone number), so the agent finds the other contact and merges it
// into this customer. The server decides who may see whom; this module only asks and shows.
//
// Names, phones and addresses reach the page only through textContent and DOM properties, never as
// markup. The open dialog survives the panel being redrawn (a message arriving, the thread reloading).

const MIN_QUERY = 2;
const TYPING_PAUSE_MS = 250;

let open = null; // {contactId, node}: the dialog of the customer whose panel shows it

/** The "Link another contact" button, or the open search / confirmation for `contact`. After a merge,
 * `onMerged(answer)` gets the server's answer (the kept contact and its open conversation). */
export function contactMerger({ contact, el, T, api, channelBadge, onMerged }) {
  if (open?.contactId === contact.id) {
    const focused = open.node.contains(document.activeElement) ? document.activeElement : null;
    if (focused) queueMicrotask(() => focused.focus()); // the panel is redrawn around the same node
    return open.node;
  }
  open = null;
  const box = el("div", { className: "contact-merge mt-3", id: "contact-merge" });
  const icon = (name) => el("i", { className: `ti ti-${name} me-1`, "aria-hidden": "true" });

  function closed() {
    const button = el(
      "button",
      { type: "button", className: "btn btn-sm btn-outline-secondary w-100", id: "contact-merge-open" },
      icon("link"),
      T.link_contact,
    );
    button.addEventListener("click", () => {
      open = { contactId: contact.id, node: box };
      searching();
    });
    box.replaceChildren(button);
  }

  function close() {
    open = null;
    closed();
    document.getElementById("contact-merge-open")?.focus();
  }

  let seq = 0;
  let timer = null;
  let query = "";
  let hits = [];

  function searching() {
    const input = el("input", {
      type: "search",
      className: "form-control form-control-sm",
      id: "contact-merge-query",
      maxlength: 100,
      placeholder: T.merge_search,
      "aria-label": T.link_contact,
      autocomplete: "off",
    });
    input.value = query;
    const results = el("div", { className: "list-group list-group-flush mt-2", id: "contact-merge-results", role: "listbox" });
    const cancel = el("button", { type: "button", className: "btn btn-sm btn-link px-0", text: T.cancel });
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => search(input.value.trim(), results), TYPING_PAUSE_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    cancel.addEventListener("click", close);
    box.replaceChildren(
      el("h4", { className: "subheader", text: T.link_contact }),
      input,
      results,
      el("div", { className: "small text-danger", id: "contact-merge-error", role: "alert" }),
      cancel,
    );
    showHits(results);
    input.focus();
  }

  async function search(text, results) {
    query = text;
    const mine = ++seq;
    if (text.length < MIN_QUERY) {
      hits = [];
      showHits(results);
      return;
    }
    try {
      const params = new URLSearchParams({ q: text, exclude: String(contact.id) });
      const data = await api(`/api/v1/contacts/search?${params}`);
      if (mine !== seq) return; // the agent typed on meanwhile
      hits = data.contacts;
      showHits(results, true);
    } catch (error) {
      if (mine === seq) showError(error);
    }
  }

  function showHits(results, searched = false) {
    if (!hits.length) {
      if (searched) results.replaceChildren(el("div", { className: "small text-secondary py-2", text: T.merge_none }));
      else results.replaceChildren();
      return;
    }
    results.replaceChildren(...hits.map((hit) => hitNode(hit)));
  }

  function hitNode(hit) {
    const details = [hit.phone, hit.email].filter(Boolean).join(" · ");
    const node = el(
      "button",
      { type: "button", className: "list-group-item list-group-item-action px-2 py-1 contact-merge-hit", role: "option", dataset: { id: hit.id } },
      el("div", { className: "fw-bold text-truncate", text: hit.name }),
      details ? el("div", { className: "small text-secondary text-truncate", text: details }) : null,
      hit.channels.length ? el("div", { className: "d-flex flex-wrap gap-1 mt-1" }, hit.channels.map(channelBadge)) : null,
    );
    node.addEventListener("click", () => confirming(hit));
    return node;
  }

  function confirming(hit) {
    const yes = el("button", { type: "button", className: "btn btn-sm btn-primary", id: "contact-merge-yes" }, icon("link"), T.merge);
    const no = el("button", { type: "button", className: "btn btn-sm btn-link", id: "contact-merge-no", text: T.cancel });
    const error = el("div", { className: "small text-danger mb-2", id: "contact-merge-error", role: "alert" });
    no.addEventListener("click", searching);
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      error.textContent = "";
      try {
        const data = await api(`/api/v1/contacts/${contact.id}/merge`, { merge_id: hit.id });
        open = null;
        query = "";
        hits = [];
        closed();
        await onMerged(data);
      } catch (problem) {
        error.textContent = problem.message || T.error;
        yes.disabled = no.disabled = false;
      }
    });
    box.replaceChildren(
      el("h4", { className: "subheader", text: T.link_contact }),
      el(
        "div",
        { className: "alert alert-warning small p-2 mb-2", id: "contact-merge-confirm", role: "alertdialog" },
        T.merge_confirm.replace("{name}", () => hit.name),
      ),
      error,
      el("div", { className: "d-flex gap-2" }, yes, no),
    );
    yes.focus();
  }

  function showError(problem) {
    const node = document.getElementById("contact-merge-error");
    if (node) node.textContent = problem.message || T.error;
  }

  closed();
  return box;
}
