// The import wizard's two bits of script: the upload goes through fetch (the CSRF token in a header, so
// a large file is streamed to the server instead of being read as a form), and the progress bar polls
// GET /api/v1/imports/{id} while a dry run or an import runs, then reloads the page for the report.
import { csrf } from "./api.js";

const POLL_MS = 1000;

const upload = document.getElementById("import-upload");
if (upload) {
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = document.getElementById("import-upload-error");
    const button = document.getElementById("import-upload-submit");
    button.disabled = true;
    box.classList.add("d-none");
    try {
      const response = await fetch("/api/v1/imports", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: new FormData(upload),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) throw new Error(data?.error?.reason || response.statusText);
      location.assign(`/contacts/import/${data.import.id}`);
    } catch (error) {
      box.textContent = error.message;
      box.classList.remove("d-none");
      button.disabled = false;
    }
  });
}

const panel = document.getElementById("import-progress");
if (panel && ["checking", "running"].includes(panel.dataset.status)) {
  const bar = document.getElementById("import-bar");
  const field = (name) => panel.querySelector(`[data-field="${name}"]`);
  const tick = async () => {
    try {
      const response = await fetch(`/api/v1/imports/${panel.dataset.import}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) return location.assign("/login");
      const { import: state } = await response.json();
      if (bar) bar.style.width = `${state.percent}%`;
      if (field("done")) field("done").textContent = state.done;
      for (const [name, value] of Object.entries(state.counts)) {
        if (field(name)) field(name).textContent = value;
      }
      if (!["checking", "running"].includes(state.status)) return location.reload();
    } catch {
      // a network blip: try again at the next tick
    }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}
