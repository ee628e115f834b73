/*
 * Switchboard website chat widget. One tag embeds it:
 *   <script src="https://hub.example/widget.js" data-key="WIDGET_KEY" async></script>
 * Optional: data-colour="#206bc4" data-greeting="…" data-language="ro|en|ru" data-position="left|right"
 * (the hub's settings for the widget override them once loaded).
 *
 * No dependencies, and no HTML is ever built from data: every text goes through textContent. Styles live in a shadow
 * root so the host page's CSS and ours never meet. The visitor is an anonymous id in localStorage; each
 * message carries its own uuid so a retried send is stored once. WebSocket first, polling every 3 s when
 * the socket cannot get through.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[data-key][src*="widget.js"]');
  if (!script || !script.getAttribute("data-key")) { return; }
  var KEY = script.getAttribute("data-key");
  var HUB = new URL(script.src, location.href).origin;
  var API = HUB + "/widget/" + encodeURIComponent(KEY);
  var NS = "sbw:" + KEY + ":";
  var POLL_MS = 3000;
  var TYPING_EVERY_MS = 2000;
  var MAX_BODY = 2000;

  var STRINGS = {
    en: {
      title: "Chat with us", open: "Open chat", close: "Close", placeholder: "Write a message…",
      send: "Send", name: "Your name", phone: "Phone number", start: "Start chat",
      prechat: "Tell us who you are, so we can help you faster.",
      offline: "No one is online right now. Leave a message and your phone number, and we will call you back.",
      offlineSend: "Leave a message", thanks: "Thank you! We will get back to you soon.",
      typing: "typing…", failed: "Not sent. Tap to retry.", tooLong: "The message is too long.",
      slowDown: "Too many messages; wait a moment.", phoneNeeded: "Please give a phone number.",
      greeting: "Hello! How can we help?"
    },
    ro: {
      title: "Scrieți-ne", open: "Deschide chatul", close: "Închide", placeholder: "Scrieți un mesaj…",
      send: "Trimite", name: "Numele dvs.", phone: "Număr de telefon", start: "Începe discuția",
      prechat: "Spuneți-ne cine sunteți, ca să vă putem ajuta mai repede.",
      offline: "Nu este nimeni online acum. Lăsați un mesaj și numărul de telefon, și vă sunăm noi.",
      offlineSend: "Lasă un mesaj", thanks: "Mulțumim! Revenim în curând.",
      typing: "scrie…", failed: "Netrimis. Apăsați pentru a reîncerca.", tooLong: "Mesajul este prea lung.",
      slowDown: "Prea multe mesaje; așteptați puțin.", phoneNeeded: "Vă rugăm să indicați un număr de telefon.",
      greeting: "Bună ziua! Cu ce vă putem ajuta?"
    },
    ru: {
      title: "Напишите нам", open: "Открыть чат", close: "Закрыть", placeholder: "Напишите сообщение…",
      send: "Отправить", name: "Ваше имя", phone: "Номер телефона", start: "Начать чат",
      prechat: "Представьтесь, чтобы мы могли помочь быстрее.",
      offline: "Сейчас никого нет в сети. Оставьте сообщение и номер телефона, и мы вам перезвоним.",
      offlineSend: "Оставить сообщение", thanks: "Спасибо! Мы скоро свяжемся с вами.",
      typing: "печатает…", failed: "Не отправлено. Нажмите, чтобы повторить.",
      tooLong: "Сообщение слишком длинное.", slowDown: "Слишком много сообщений; подождите немного.",
      phoneNeeded: "Пожалуйста, укажите номер телефона.", greeting: "Здравствуйте! Чем можем помочь?"
    }
  };

  // --- storage that survives browsers which block it ------------------------------------------------
  var memory = {};
  function store(kind) {
    try {
      var s = window[kind];
      s.setItem(NS + "probe", "1");
      s.removeItem(NS + "probe");
      return s;
    } catch (e) {
      return {
        getItem: function (k) { return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null; },
        setItem: function (k, v) { memory[k] = String(v); },
        removeItem: function (k) { delete memory[k]; }
      };
    }
  }
  var local = store("localStorage");
  var session = store("sessionStorage");

  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  var visitorId = local.getItem(NS + "visitor");
  if (!visitorId || !/^[A-Za-z0-9-]{8,64}$/.test(visitorId)) {
    visitorId = uuid();
    local.setItem(NS + "visitor", visitorId);
  }

  // Where this visit came from: captured once per browsing session, sent with the first message.
  if (!session.getItem(NS + "source")) {
    var params = new URLSearchParams(location.search);
    var utm = {};
    ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"].forEach(function (k) {
      var v = params.get(k);
      if (v) { utm[k] = v.slice(0, 200); }
    });
    session.setItem(NS + "source", JSON.stringify({
      page_url: location.href.slice(0, 2000), referrer: (document.referrer || "").slice(0, 2000), utm: utm
    }));
  }

  // --- settings -----------------------------------------------------------------------------------------
  function attr(name) { return script.getAttribute("data-" + name); }
  var settings = {
    colour: attr("colour") || attr("color") || "#206bc4",
    greeting: attr("greeting") || "",
    language: attr("language") || (navigator.language || "en").slice(0, 2),
    position: attr("position") || "right",
    prechat: attr("prechat") === "true",
    online: true
  };
  function t(key) { return (STRINGS[settings.language] || STRINGS.en)[key]; }
  function safeColour(c) { return /^#[0-9a-fA-F]{6}$/.test(c) ? c : "#206bc4"; }

  // --- the DOM --------------------------------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px}",
    ".wrap{position:fixed;bottom:20px;z-index:2147483000}",
    ".wrap.right{right:20px}.wrap.left{left:20px}",
    ".launcher{width:56px;height:56px;border-radius:50%;border:0;color:#fff;cursor:pointer;",
    "box-shadow:0 4px 12px rgba(0,0,0,.25);position:relative;background:var(--c)}",
    ".launcher svg{width:26px;height:26px;fill:#fff;vertical-align:middle}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;",
    "background:#d63939;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}",
    ".panel{position:absolute;bottom:70px;width:340px;max-width:calc(100vw - 40px);height:480px;",
    "max-height:calc(100vh - 110px);background:#fff;border-radius:12px;box-shadow:0 8px 28px rgba(0,0,0,.25);",
    "display:flex;flex-direction:column;overflow:hidden}",
    ".wrap.right .panel{right:0}.wrap.left .panel{left:0}",
    ".head{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center}",
    ".head .title{flex:1;font-weight:600;font-size:15px}",
    ".head button{background:transparent;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".status{padding:8px 14px;background:#fff4e5;color:#7a4b00;font-size:13px}",
    ".messages{flex:1;overflow-y:auto;padding:12px;background:#f6f8fb}",
    ".msg{max-width:80%;padding:8px 11px;border-radius:12px;margin:4px 0;white-space:pre-wrap;",
    "word-wrap:break-word;overflow-wrap:anywhere;clear:both}",
    ".msg.agent{background:#fff;border:1px solid #e6e8eb;float:left;color:#1d273b}",
    ".msg.mine{background:var(--c);color:#fff;float:right}",
    ".msg.pending{opacity:.6}.msg.failed{background:#d63939;cursor:pointer}",
    ".msg.note{float:none;max-width:100%;background:transparent;color:#667382;text-align:center;font-size:13px}",
    ".clear{clear:both}",
    ".typing{padding:0 14px 6px;color:#667382;font-size:12px;min-height:18px;background:#f6f8fb}",
    ".compose{display:flex;border-top:1px solid #e6e8eb}",
    ".compose textarea{flex:1;border:0;resize:none;padding:10px 12px;height:48px;outline:none;color:#1d273b}",
    ".compose button,.form button{border:0;background:var(--c);color:#fff;padding:0 16px;cursor:pointer}",
    ".form{padding:14px;display:flex;flex-direction:column;gap:8px;border-top:1px solid #e6e8eb}",
    ".form p{margin:0;color:#1d273b}",
    ".form input,.form textarea{border:1px solid #dadfe5;border-radius:6px;padding:8px;color:#1d273b}",
    ".form button{padding:9px 16px;border-radius:6px}",
    ".error{color:#d63939;font-size:12px;min-height:14px}",
    "[hidden]{display:none!important}"
  ].join("");

  var host = el("div");
  host.id = "switchboard-chat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style");
  style.textContent = CSS;
  root.appendChild(style);

  var wrap = el("div", "wrap");
  var launcher = el("button", "launcher");
  launcher.type = "button";
  var svgNs = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNs, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  var path = document.createElementNS(svgNs, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  launcher.appendChild(icon);
  var badge = el("span", "badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("div", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  var head = el("div", "head");
  var title = el("span", "title");
  var closeBtn = el("button", "close", "×");
  closeBtn.type = "button";
  head.appendChild(title);
  head.appendChild(closeBtn);
  var status = el("div", "status");
  status.hidden = true;
  var list = el("div", "messages");
  list.setAttribute("aria-live", "polite");
  var typing = el("div", "typing");

  var prechat = el("form", "form prechat");
  prechat.hidden = true;
  var prechatText = el("p");
  var prechatName = el("input");
  prechatName.name = "name";
  prechatName.maxLength = 200;
  prechatName.autocomplete = "name";
  var prechatPhone = el("input");
  prechatPhone.name = "phone";
  prechatPhone.type = "tel";
  prechatPhone.maxLength = 40;
  prechatPhone.autocomplete = "tel";
  var prechatBtn = el("button");
  prechatBtn.type = "submit";
  [prechatText, prechatName, prechatPhone, prechatBtn].forEach(function (n) { prechat.appendChild(n); });

  var offline = el("form", "form offline");
  offline.hidden = true;
  var offlineBody = el("textarea");
  offlineBody.name = "body";
  offlineBody.maxLength = MAX_BODY;
  offlineBody.rows = 3;
  var offlinePhone = el("input");
  offlinePhone.name = "phone";
  offlinePhone.type = "tel";
  offlinePhone.maxLength = 40;
  offlinePhone.autocomplete = "tel";
  var offlineError = el("div", "error");
  var offlineBtn = el("button");
  offlineBtn.type = "submit";
  [offlineBody, offlinePhone, offlineError, offlineBtn].forEach(function (n) { offline.appendChild(n); });

  var compose = el("form", "compose");
  var input = el("textarea");
  input.name = "body";
  input.maxLength = MAX_BODY;
  var sendBtn = el("button");
  sendBtn.type = "submit";
  compose.appendChild(input);
  compose.appendChild(sendBtn);

  [head, status, list, typing, prechat, offline, compose].forEach(function (n) { panel.appendChild(n); });
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(wrap);

  function applySettings() {
    wrap.style.setProperty("--c", safeColour(settings.colour));
    wrap.className = "wrap " + (settings.position === "left" ? "left" : "right");
    launcher.setAttribute("aria-label", t("open"));
    closeBtn.setAttribute("aria-label", t("close"));
    title.textContent = t("title");
    input.placeholder = t("placeholder");
    sendBtn.textContent = t("send");
    prechatText.textContent = t("prechat");
    prechatName.placeholder = t("name");
    prechatPhone.placeholder = t("phone");
    prechatBtn.textContent = t("start");
    offlineBody.placeholder = t("placeholder");
    offlinePhone.placeholder = t("phone");
    offlineBtn.textContent = t("offlineSend");
    greetingNode.textContent = settings.greeting || t("greeting");
    layout();
  }

  var greetingNode = el("div", "msg agent");
  list.appendChild(greetingNode);

  // --- state ----------------------------------------------------------------------------------------------
  var lastId = 0;
  var shownIds = {};
  var pending = {}; // client message id -> {node, payload, tries}
  var unread = 0;
  var isOpen = false;
  var started = local.getItem(NS + "started") === "1";
  var profileSent = local.getItem(NS + "profile_sent") === "1";
  var offlineDone = false;

  function needsPrechat() { return settings.prechat && !local.getItem(NS + "profile") && !started; }

  function layout() {
    var showPrechat = needsPrechat() && settings.online;
    var showOffline = !settings.online && !offlineDone;
    prechat.hidden = !showPrechat;
    offline.hidden = !showOffline;
    compose.hidden = showPrechat || showOffline;
    status.hidden = settings.online;
    status.textContent = settings.online ? "" : t("offline");
  }

  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function addClear() { list.appendChild(el("div", "clear")); }

  function render(message) {
    if (shownIds[message.id]) { return; }
    if (message.kind === "note") { return; } // never sent by the hub; ignored if it ever were
    var mine = message.direction === "in";
    var waiting = message.client_id && pending[message.client_id];
    if (waiting) {
      acked(message.client_id, message.id);
    } else {
      list.appendChild(el("div", "msg " + (mine ? "mine" : "agent"), message.body));
      addClear();
    }
    shownIds[message.id] = true;
    if (message.id > lastId) { lastId = message.id; }
    if (!mine) {
      typing.textContent = "";
      if (!isOpen) {
        unread += 1;
        badge.textContent = String(unread);
        badge.hidden = false;
      }
    }
    scrollDown();
  }

  function systemNote(text) {
    list.appendChild(el("div", "msg note", text));
    addClear();
    scrollDown();
  }

  // --- transport ------------------------------------------------------------------------------------------
  var ws = null;
  var wsOpen = false;
  var wsFailures = 0;
  var pollTimer = null;
  var typingTimer = null;

  function onEvent(data) {
    if (!data || typeof data !== "object") { return; }
    if (data.type === "message" && data.message) {
      render(data.message);
    } else if (data.type === "ack") {
      acked(data.message_id, data.id);
    } else if (data.type === "error") {
      failed(data.message_id, data.status);
    } else if (data.type === "status") {
      setOnline(!!data.online);
    } else if (data.type === "typing") {
      typing.textContent = data.typing ? t("typing") : "";
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing.textContent = ""; }, 6000);
    }
  }

  function setOnline(online) {
    if (settings.online !== online) {
      settings.online = online;
      layout();
    }
  }

  function connect() {
    if (ws || !window.WebSocket) {
      if (!window.WebSocket) { startPolling(); }
      return;
    }
    var url = API.replace(/^http/, "ws") + "/ws?visitor=" + encodeURIComponent(visitorId) + "&after=" + lastId;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      ws = null;
      startPolling();
      return;
    }
    ws.onopen = function () {
      wsOpen = true;
      host.setAttribute("data-transport", "websocket");
      wsFailures = 0;
      stopPolling();
      Object.keys(pending).forEach(function (id) { if (!pending[id].sent) { transmit(id); } });
    };
    ws.onmessage = function (e) {
      try { onEvent(JSON.parse(e.data)); } catch (err) { /* not ours */ }
    };
    ws.onclose = function () {
      var wasOpen = wsOpen;
      ws = null;
      wsOpen = false;
      wsFailures += 1;
      startPolling();
      // Try the socket again: soon after a drop, rarely when it never got through (a proxy blocks it).
      var delay = wasOpen ? 2000 : Math.min(60000, 5000 * wsFailures);
      setTimeout(connect, delay);
    };
  }

  function startPolling() {
    if (pollTimer) { return; }
    host.setAttribute("data-transport", "polling");
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function poll() {
    fetch(API + "/messages?visitor=" + encodeURIComponent(visitorId) + "&after=" + lastId, { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        (data.messages || []).forEach(render);
        if (typeof data.online === "boolean") { setOnline(data.online); }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function payloadFor(body, extra) {
    var payload = { visitor_id: visitorId, message_id: uuid(), body: body, language: settings.language };
    var source = session.getItem(NS + "source");
    if (source && !session.getItem(NS + "source_sent")) {
      try {
        var s = JSON.parse(source);
        payload.page_url = s.page_url;
        payload.referrer = s.referrer;
        payload.utm = s.utm;
      } catch (e) { /* ignore a damaged entry */ }
    }
    var profile = local.getItem(NS + "profile");
    if (profile && !profileSent) {
      try {
        var p = JSON.parse(profile);
        if (p.name) { payload.name = p.name; }
        if (p.phone) { payload.phone = p.phone; }
      } catch (e) { /* ignore */ }
    }
    if (extra) { Object.keys(extra).forEach(function (k) { payload[k] = extra[k]; }); }
    return payload;
  }

  function send(body, extra) {
    body = body.trim();
    if (!body) { return false; }
    if (body.length > MAX_BODY) { systemNote(t("tooLong")); return false; }
    var payload = payloadFor(body, extra);
    typingSentAt = 0; // the message ends the agent's "typing…": the next keystroke starts a new one
    var node = el("div", "msg mine pending", body);
    list.appendChild(node);
    addClear();
    scrollDown();
    pending[payload.message_id] = { node: node, payload: payload, tries: 0, sent: false };
    node.addEventListener("click", function () {
      if (node.classList.contains("failed") && pending[payload.message_id]) {
        node.classList.remove("failed");
        node.classList.add("pending");
        pending[payload.message_id].tries = 0;
        transmit(payload.message_id);
      }
    });
    if (!started) {
      started = true;
      local.setItem(NS + "started", "1");
      connect();
    }
    transmit(payload.message_id);
    return true;
  }

  function transmit(id) {
    var item = pending[id];
    if (!item) { return; }
    item.tries += 1;
    if (wsOpen && ws) {
      item.sent = true;
      ws.send(JSON.stringify(Object.assign({ type: "message" }, item.payload)));
      // No ack in 8 s: the same message (same id, so stored once) goes by POST.
      setTimeout(function () { if (pending[id] && !pending[id].acked) { post(id); } }, 8000);
      return;
    }
    post(id);
  }

  function post(id) {
    var item = pending[id];
    if (!item) { return; }
    item.sent = true;
    fetch(API + "/messages", {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(item.payload)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (r.ok) { acked(id, data.id); } else { failed(id, r.status); }
      });
    }).catch(function () {
      if (item.tries < 4) {
        setTimeout(function () { item.tries += 1; post(id); }, 1000 * item.tries);
      } else {
        failed(id, 0);
      }
    });
  }

  function acked(id, serverId) {
    var item = pending[id];
    session.setItem(NS + "source_sent", "1");
    if (item && (item.payload.phone !== undefined || item.payload.name !== undefined)) {
      profileSent = true;
      local.setItem(NS + "profile_sent", "1");
    }
    if (!item) { return; }
    item.acked = true;
    item.node.classList.remove("pending", "failed");
    delete pending[id];
    if (serverId) {
      shownIds[serverId] = true;
      if (serverId > lastId) { lastId = serverId; }
    }
  }

  function failed(id, status) {
    var item = pending[id];
    if (!item) { return; }
    item.node.classList.remove("pending");
    item.node.classList.add("failed");
    item.node.title = t("failed");
    if (status === 413) { systemNote(t("tooLong")); } else if (status === 429) { systemNote(t("slowDown")); }
  }

  // --- behaviour ------------------------------------------------------------------------------------------
  function openPanel() {
    isOpen = true;
    panel.hidden = false;
    unread = 0;
    badge.hidden = true;
    connect();
    scrollDown();
    (needsPrechat() ? prechatName : settings.online ? input : offlineBody).focus();
  }

  function closePanel() {
    isOpen = false;
    panel.hidden = true;
  }

  launcher.addEventListener("click", function () { if (isOpen) { closePanel(); } else { openPanel(); } });
  closeBtn.addEventListener("click", closePanel);

  compose.addEventListener("submit", function (e) {
    e.preventDefault();
    if (send(input.value)) { input.value = ""; }
  });
  // "typing…" for the agent: over the socket only (never by polling), at most one frame every 2 s.
  var typingSentAt = 0;
  input.addEventListener("input", function () {
    var now = Date.now();
    if (!input.value.trim() || !wsOpen || !ws || now - typingSentAt < TYPING_EVERY_MS) { return; }
    typingSentAt = now;
    try { ws.send(JSON.stringify({ type: "typing" })); } catch (e) { /* the socket is closing */ }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      if (send(input.value)) { input.value = ""; }
    }
  });

  prechat.addEventListener("submit", function (e) {
    e.preventDefault();
    local.setItem(NS + "profile", JSON.stringify({
      name: prechatName.value.trim().slice(0, 200), phone: prechatPhone.value.trim().slice(0, 40)
    }));
    layout();
    input.focus();
  });

  offline.addEventListener("submit", function (e) {
    e.preventDefault();
    var phone = offlinePhone.value.trim();
    if (!phone) { offlineError.textContent = t("phoneNeeded"); return; }
    offlineError.textContent = "";
    var profile = {};
    try { profile = JSON.parse(local.getItem(NS + "profile") || "{}") || {}; } catch (err) { profile = {}; }
    if (send(offlineBody.value, { phone: phone.slice(0, 40), name: profile.name || undefined })) {
      offlineBody.value = "";
      offlineDone = true;
      systemNote(t("thanks"));
      layout();
    }
  });

  function loadConfig() {
    return fetch(API + "/config", { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) {
        if (c) {
          ["colour", "greeting", "language", "position", "prechat", "online"].forEach(function (k) {
            if (c[k] !== undefined && c[k] !== null && c[k] !== "") { settings[k] = c[k]; }
          });
        }
      })
      .catch(function () { /* keep the data-* settings */ });
  }

  function mount() {
    document.body.appendChild(host);
    applySettings();
    loadConfig().then(function () {
      applySettings();
      if (started) { connect(); } // a returning visitor: show the history and any reply at once
    });
  }

  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
