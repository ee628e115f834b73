// What the agent may send now, shown above the reply box: a closed WhatsApp window offers the approved
// templates (with their variables), a closed Messenger / Instagram window the allowed message tags, an
// opted-out customer a warning, and an SMS reply its segment count with a one-click transliteration.
// The server decides (`/reply-options`, and `inbox.send` refuses what the window does not allow); this
// only shows it before the agent types a reply that cannot go.

const SEGMENT_DELAY_MS = 300;

export function replyWindow({ api, T, el, box, body, onSent, onError }) {
  let options = null;
  let key = "";
  let segmentTimer = null;

  function clear() {
    options = null;
    box.replaceChildren();
    box.hidden = true;
  }

  let fetchedAt = 0;

  /** Ask the server again when the conversation or the channel changed, when told to (a customer's
   * message reopens a window; a refused send means it closed), and at most every 20 s otherwise. */
  async function refresh(conversationId, route, note, force = false) {
    const wanted = `${conversationId}|${route.channel || ""}|${route.account_id || ""}`;
    if (note || !conversationId) {
      key = wanted;
      clear();
      return;
    }
    if (!force && wanted === key && Date.now() - fetchedAt < 20000) return;
    key = wanted;
    fetchedAt = Date.now();
    const query = new URLSearchParams(Object.entries(route).filter(([, v]) => v)).toString();
    let data;
    try {
      data = await api(`/api/v1/conversations/${conversationId}/reply-options${query ? `?${query}` : ""}`);
    } catch (error) {
      clear();
      return;
    }
    if (key !== wanted) return; // another conversation was opened meanwhile
    const same = options && options.conversationId === conversationId && JSON.stringify(options.data) === JSON.stringify(data);
    options = { ...data, data, conversationId, route };
    if (!same) render(); // unchanged: keep what the agent typed into a template's variables
  }

  function render() {
    box.replaceChildren();
    if (!options) return (box.hidden = true);
    const parts = [];
    if (options.opted_out) {
      parts.push(el("div", { className: "text-danger", text: T.optedOut }));
    } else if (options.window === "template") {
      parts.push(el("div", { className: "text-warning", text: T.windowTemplate }), templatePicker());
    } else if (options.window === "tag") {
      parts.push(el("div", { className: "text-warning", text: T.windowTag }), tagPicker());
    } else if (options.window === "closed") {
      parts.push(el("div", { className: "text-danger", text: T.windowClosed }));
    } else if (options.closes_at) {
      const at = new Date(options.closes_at);
      parts.push(el("div", { className: "text-secondary", text: `${T.windowOpenUntil} ${at.toLocaleString()}` }));
    }
    if (options.channel === "sms") parts.push(el("div", { className: "text-secondary", id: "sms-segments" }));
    box.append(...parts);
    box.hidden = parts.length === 0;
    if (options.channel === "sms") countSegments();
  }

  function templatePicker() {
    const form = el("div", { className: "d-flex flex-wrap gap-2 align-items-end mt-1", id: "template-picker" });
    if (!options.templates.length) {
      form.append(el("span", { className: "text-secondary", text: T.noTemplates }));
      return form;
    }
    const select = el(
      "select",
      { className: "form-select form-select-sm w-auto", id: "template-name", "aria-label": T.template },
      ...options.templates.map((t) => el("option", { value: t.name, text: t.name })),
    );
    const fields = el("span", { className: "d-inline-flex flex-wrap gap-1" });
    const preview = el("div", { className: "w-100 small text-secondary", id: "template-preview" });
    const current = () => options.templates.find((t) => t.name === select.value);
    const values = () => Object.fromEntries([...fields.querySelectorAll("input")].map((i) => [i.name, i.value]));
    const showPreview = () => {
      const t = current();
      const filled = values();
      preview.textContent = t ? t.body.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, name) => filled[name] || m) : "";
    };
    const drawFields = () => {
      const t = current();
      fields.replaceChildren(
        ...(t?.variables || []).map((name) =>
          el("input", { className: "form-control form-control-sm w-auto", name, placeholder: `{{${name}}}`, "aria-label": `{{${name}}}` }),
        ),
      );
      showPreview();
    };
    select.addEventListener("change", drawFields);
    fields.addEventListener("input", showPreview);
    const send = el("button", { type: "button", className: "btn btn-sm btn-primary", id: "template-send", text: T.sendTemplate });
    send.addEventListener("click", () =>
      sendWith({ name: select.value, variables: values() }, send),
    );
    form.append(select, fields, send, preview);
    drawFields();
    return form;
  }

  function tagPicker() {
    const wrap = el("div", { className: "d-flex flex-wrap gap-2 align-items-center mt-1", id: "tag-picker" });
    const select = el(
      "select",
      { className: "form-select form-select-sm w-auto", id: "tag-name", "aria-label": T.messageTag },
      ...options.tags.map((tag) => el("option", { value: tag, text: T.tags?.[tag] || tag })),
    );
    const send = el("button", { type: "button", className: "btn btn-sm btn-primary", id: "tag-send", text: T.sendWithTag });
    send.addEventListener("click", () => {
      if (!body.value.trim()) return onError(T.writeFirst);
      sendWith({ name: select.value }, send, body.value.trim());
    });
    wrap.append(select, send);
    return wrap;
  }

  async function sendWith(template, button, text = "") {
    button.disabled = true;
    try {
      const data = await api(`/api/v1/conversations/${options.conversationId}/messages`, {
        body: text,
        template,
        ...options.route,
      });
      if (text) body.value = "";
      onSent(data.message);
    } catch (error) {
      onError(error.message);
    } finally {
      button.disabled = false;
    }
  }

  function countSegments() {
    clearTimeout(segmentTimer);
    segmentTimer = setTimeout(async () => {
      const target = box.querySelector("#sms-segments");
      if (!target) return;
      const text = body.value;
      if (!text.trim()) return (target.textContent = "");
      try {
        const data = await api("/api/v1/sms/segments", { text });
        const line = el("span", { text: `${T.smsParts.replace("{parts}", data.parts)} · ${data.encoding}` });
        target.replaceChildren(line);
        if (data.transliterated && data.transliterated.parts < data.parts) {
          const button = el("button", {
            type: "button",
            className: "btn btn-sm btn-link p-0 ms-2",
            id: "sms-transliterate",
            text: T.transliterate.replace("{parts}", data.transliterated.parts),
          });
          button.addEventListener("click", () => {
            body.value = data.transliterated.text;
            countSegments();
          });
          target.append(button);
        }
      } catch {
        target.textContent = "";
      }
    }, SEGMENT_DELAY_MS);
  }

  body.addEventListener("input", () => {
    if (options?.channel === "sms") countSegments();
  });

  return { refresh, clear, get options() { return options; } };
}
