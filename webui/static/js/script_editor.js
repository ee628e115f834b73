// The script editor: a step's kind picker shows only that kind's inputs, and a capture's field list
// follows the record it writes to. Without this module the page still works: saving re-renders the
// step with its new kind's inputs.

function showKind(card, kind) {
  card.dataset.kind = kind;
  for (const part of card.querySelectorAll(".kind-part")) {
    part.hidden = !part.dataset.kinds.split(" ").includes(kind);
  }
}

for (const card of document.querySelectorAll(".script-step")) {
  const kind = card.querySelector(".step-kind");
  kind?.addEventListener("change", () => showKind(card, kind.value));
  const entity = card.querySelector(".capture-entity");
  const field = card.querySelector(".capture-field");
  entity?.addEventListener("change", () => field?.setAttribute("list", `fields-${entity.value}`));
}

// "Remove" asks first: the step's inputs go with it.
for (const button of document.querySelectorAll(".step-remove")) {
  button.addEventListener("click", (event) => {
    const step = button.closest(".script-step")?.dataset.step ?? "";
    if (!window.confirm(`${button.dataset.confirm ?? "Remove?"} (${step})`)) event.preventDefault();
  });
}
