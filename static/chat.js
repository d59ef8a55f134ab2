// parley — the chat page. Plain JavaScript, no build step; speaks the `parley.v1` WebSocket dialect.
// Everything from the network is rendered with textContent, never as HTML.
"use strict";

(() => {
  const PROTOCOL = "parley.v1";
  const DEFAULT_ROOM = "lobby";
  const ROOM_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
  const NAME_FORBIDDEN = /[\p{Cc}\u2028\u2029]/u;
  const NAME_MAX = 32;
  const NAME_KEY = "parley.userName";
  const TITLE = "parley";

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10_000;
  const RECOVERY_LIMIT = 100;
  const OLDER_PAGE = 50;
  const STICK_PX = 48;
  const NOTICE_MS = 6000;
  // Stay under the server's default token bucket (10/s, burst 20) when an outbox is flushed.
  const SEND_RATE_PER_S = 8;
  const SEND_BURST = 16;
  // A message sent but not acked for this long is sent again (same clientId, so never stored twice).
  const RESEND_AFTER_MS = 15_000;
  const UNAVAILABLE_RETRY_MS = 2000;
  const HUES = 8;
  const GROUP_GAP_MS = 5 * 60_000;
  // Past this many rendered messages the oldest are dropped (they stay reachable with "Load older").
  const MAX_RENDERED = 1500;

  const el = (id) => document.getElementById(id);
  const ui = {
    joinView: el("join-view"),
    joinForm: el("join-form"),
    name: el("name"),
    room: el("room"),
    joinError: el("join-error"),
    chatView: el("chat-view"),
    roomName: el("room-name"),
    status: el("status"),
    switchForm: el("switch-form"),
    switchRoom: el("switch-room"),
    usersToggle: el("users-toggle"),
    userCount: el("user-count"),
    sidebar: el("sidebar"),
    users: el("users"),
    usersCount: el("users-count"),
    me: el("me"),
    leave: el("leave"),
    notice: el("notice"),
    messages: el("messages"),
    older: el("older"),
    loadOlder: el("load-older"),
    jump: el("jump"),
    composer: el("composer"),
    message: el("message"),
  };

  const state = {
    userName: "",
    room: "",
    joined: false,
    socket: null,
    online: false,
    attempt: 0,
    retryTimer: 0,
    retryAt: 0,
    countdownTimer: 0,
    // Bumped whenever the room changes or the view is cleared; late answers for an old epoch are dropped.
    epoch: 0,
    welcomed: false, // a welcome arrived in this room since entering it
    roomWasEmpty: false,
    initialLastId: 0,
    highestId: 0, // highest id received as a message event: what `since` resumes after
    messageEls: new Map(), // id -> element
    olderKnown: null, // null: infer from ids; boolean: the last /history page said so
    loadingOlder: false,
    outboxes: new Map(), // room -> Map(clientId -> entry)
    tokens: SEND_BURST,
    tokensAt: Date.now(),
    pumpTimer: 0,
    unread: 0,
    noticeTimer: 0,
  };

  // ---------- validation ----------

  function nameError(name) {
    if (name === "") return "Enter a name.";
    if ([...name].length > NAME_MAX) return `A name can have at most ${NAME_MAX} characters.`;
    if (NAME_FORBIDDEN.test(name)) return "A name can only contain printable characters.";
    return "";
  }

  function roomError(room) {
    if (room === "") return "Enter a room.";
    if (!ROOM_PATTERN.test(room)) {
      return "A room is 1–64 letters, digits, “.”, “-” or “_”.";
    }
    return "";
  }

  function isMessage(ev) {
    return Number.isSafeInteger(ev.id) && typeof ev.userName === "string" &&
      typeof ev.body === "string";
  }

  function isUserList(users) {
    return Array.isArray(users) && users.every((u) => typeof u === "string");
  }

  // ---------- small helpers ----------

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; plain http on a LAN address does not have one.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function rememberName(name) {
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch { /* storage may be disabled */ }
  }

  function rememberedName() {
    try {
      return localStorage.getItem(NAME_KEY) || "";
    } catch {
      return "";
    }
  }

  function hueOf(name) {
    let hash = 0;
    for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `hue-${hash % HUES}`;
  }

  function initialOf(name) {
    const first = [...name.trim()][0] || "?";
    return first.toUpperCase();
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function setTime(timeEl, date) {
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
      timeEl.textContent = "";
      timeEl.removeAttribute("title");
      timeEl.removeAttribute("datetime");
      return;
    }
    timeEl.textContent = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
    timeEl.dateTime = date.toISOString();
    timeEl.title = date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "medium" });
  }

  function currentOutbox() {
    let box = state.outboxes.get(state.room);
    if (!box) {
      box = new Map();
      state.outboxes.set(state.room, box);
    }
    return box;
  }

  // ---------- notices, status, title ----------

  function showNotice(text, ms = NOTICE_MS) {
    clearTimeout(state.noticeTimer);
    ui.notice.textContent = text;
    ui.notice.classList.add("visible");
    state.noticeTimer = setTimeout(hideNotice, ms);
  }

  function hideNotice() {
    clearTimeout(state.noticeTimer);
    ui.notice.classList.remove("visible");
    ui.notice.textContent = "";
  }

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.status.textContent = text;
  }

  function updateTitle() {
    if (!state.joined) {
      document.title = TITLE;
      return;
    }
    const prefix = state.unread > 0 ? `(${state.unread}) ` : "";
    document.title = `${prefix}#${state.room} — ${TITLE}`;
  }

  // ---------- scrolling ----------

  function isNearBottom() {
    const list = ui.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= STICK_PX;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
    ui.jump.hidden = true;
  }

  // Runs a DOM change and keeps the list pinned to the bottom if it was there before.
  function withStickiness(change, { forceBottom = false } = {}) {
    const stick = forceBottom || isNearBottom();
    const changed = change();
    if (stick) scrollToBottom();
    else if (changed) ui.jump.hidden = false;
  }

  // ---------- message elements ----------

  function createMessageElement({ userName, body, date, mine }) {
    const item = document.createElement("div");
    item.className = "message";
    if (mine) item.classList.add("mine");

    const avatar = document.createElement("div");
    avatar.className = `avatar ${hueOf(userName)}`;
    avatar.dataset.initial = initialOf(userName);
    avatar.setAttribute("aria-hidden", "true");

    const content = document.createElement("div");
    content.className = "content";

    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = userName;
    meta.append(author);

    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const text = document.createElement("div");
    text.className = "body";
    text.textContent = body;
    const stamp = document.createElement("div");
    stamp.className = "stamp";
    const time = document.createElement("time");
    time.className = "time";
    setTime(time, date);
    stamp.append(time);
    bubble.append(text, stamp);

    content.append(meta, bubble);
    item.append(avatar, content);
    return item;
  }

  // Consecutive messages from one author within a few minutes are drawn as one group.
  function nearbyMessage(item, direction) {
    let sibling = item[direction];
    while (sibling && sibling.classList.contains("superseded")) sibling = sibling[direction];
    return sibling && sibling.classList.contains("message") ? sibling : null;
  }

  function authorOf(item) {
    return item.querySelector(".author")?.textContent ?? "";
  }

  function timeOf(item) {
    return Date.parse(item.querySelector(".time")?.dateTime || "");
  }

  function regroup(item) {
    if (!item || !item.classList.contains("message")) return;
    const prev = nearbyMessage(item, "previousElementSibling");
    const continued = Boolean(prev) && authorOf(prev) === authorOf(item) &&
      Math.abs(timeOf(item) - timeOf(prev)) < GROUP_GAP_MS;
    item.classList.toggle("continued", continued);
  }

  function regroupAround(item) {
    regroup(item);
    regroup(nearbyMessage(item, "nextElementSibling"));
  }

  function removeMessageElement(item) {
    const next = nearbyMessage(item, "nextElementSibling");
    item.remove();
    regroup(next);
  }

  function firstOutgoing() {
    return ui.messages.querySelector(":scope > .outgoing");
  }

  // Confirmed messages are kept in id order; unconfirmed (outgoing) ones always come after them.
  function placeConfirmed(item, id) {
    const list = ui.messages;
    let before = firstOutgoing();
    let cursor = before ? before.previousElementSibling : list.lastElementChild;
    const first = list.querySelector(":scope > .message:not(.outgoing)");
    if (first && Number(first.dataset.id) > id) {
      cursor = null;
      before = first;
    }
    while (cursor && cursor.classList.contains("message") && Number(cursor.dataset.id) > id) {
      before = cursor;
      cursor = cursor.previousElementSibling;
    }
    list.insertBefore(item, before);
    regroupAround(item);
  }

  function confirmedIds() {
    const ids = [...state.messageEls.keys()];
    return ids.length ? { oldest: Math.min(...ids), newest: Math.max(...ids) } : null;
  }

  function updateOlderControl() {
    let more;
    if (state.olderKnown !== null) more = state.olderKnown;
    else {
      const ids = confirmedIds();
      more = ids ? ids.oldest > 1 : !state.roomWasEmpty && state.initialLastId > 0;
    }
    ui.older.hidden = !more;
  }

  function updateEmptyState() {
    ui.messages.classList.toggle("empty", !ui.messages.querySelector(".message"));
  }

  // Adds a message event (live, replayed or from /history) unless it is already shown.
  function addMessage(ev) {
    const existing = state.messageEls.get(ev.id);
    if (existing) {
      // It was rendered from an ack with the local clock; the server's timestamp is the truth.
      if (existing.classList.contains("provisional")) {
        existing.classList.remove("provisional");
        setTime(existing.querySelector(".time"), new Date(ev.timestamp));
      }
      return false;
    }
    const mine = ev.userName === state.userName;
    if (mine) hideMatchingOutgoing(ev);
    const item = createMessageElement({
      userName: ev.userName,
      body: ev.body,
      date: new Date(ev.timestamp),
      mine,
    });
    item.dataset.id = String(ev.id);
    state.messageEls.set(ev.id, item);
    placeConfirmed(item, ev.id);
    return true;
  }

  function clearConfirmed() {
    for (const item of state.messageEls.values()) item.remove();
    state.messageEls.clear();
    regroup(firstOutgoing());
    state.highestId = 0;
    state.olderKnown = null;
    updateOlderControl();
    updateEmptyState();
  }

  // ---------- outbox ----------

  function renderOutgoing(entry) {
    const item = createMessageElement({
      userName: state.userName,
      body: entry.body,
      date: entry.createdAt,
      mine: true,
    });
    item.classList.add("outgoing");
    item.dataset.clientId = entry.clientId;
    const status = document.createElement("span");
    status.className = "state";
    item.querySelector(".stamp").append(status);
    entry.el = item;
    showEntryState(entry);
    ui.messages.append(item);
    regroup(item);
  }

  function showEntryState(entry) {
    const item = entry.el;
    if (!item) return;
    const status = item.querySelector(".state");
    const failed = entry.state === "failed";
    item.classList.toggle("pending", !failed);
    item.classList.toggle("failed", failed);
    if (!failed) {
      status.textContent = "sending…";
      return;
    }
    const reason = document.createElement("span");
    reason.textContent = `not sent${entry.reason ? ` — ${entry.reason}` : ""}`;
    const retry = actionButton("Retry", "Send this message again", () => retryEntry(entry));
    const edit = actionButton(
      "Edit",
      "Move this message back into the message box",
      () => editEntry(entry),
    );
    status.replaceChildren(reason, " ", retry, " ", edit);
  }

  function actionButton(label, title, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "action";
    button.textContent = label;
    button.title = title;
    button.addEventListener("click", onClick);
    return button;
  }

  function editEntry(entry) {
    const box = currentOutbox();
    if (!box.has(entry.clientId) || entry.state !== "failed") return;
    box.delete(entry.clientId);
    clearTimeout(entry.retryTimer);
    if (entry.el) removeMessageElement(entry.el);
    updateEmptyState();
    const draft = ui.message.value.trim();
    ui.message.value = draft ? `${entry.body}\n${draft}` : entry.body;
    autoGrow();
    ui.message.focus();
  }

  function queueMessage(body) {
    const entry = {
      clientId: newClientId(),
      body,
      createdAt: new Date(),
      state: "queued", // queued -> sent -> (acked, removed) | failed | waiting
      sentAt: 0,
      sentAfterId: 0,
      reason: "",
      retries: 0,
      retryTimer: 0,
      el: null,
    };
    currentOutbox().set(entry.clientId, entry);
    withStickiness(() => {
      renderOutgoing(entry);
      updateEmptyState();
      return true;
    }, { forceBottom: true });
    pumpOutbox();
  }

  function retryEntry(entry) {
    if (!currentOutbox().has(entry.clientId)) return;
    entry.state = "queued";
    entry.reason = "";
    showEntryState(entry);
    pumpOutbox();
    ui.message.focus();
  }

  function markFailed(entry, reason) {
    if (!entry) return;
    clearTimeout(entry.retryTimer);
    entry.state = "failed";
    entry.reason = reason;
    if (entry.el?.classList.contains("superseded")) {
      entry.el.classList.remove("superseded");
      regroupAround(entry.el);
    }
    showEntryState(entry);
  }

  function socketOpen() {
    return state.online && state.socket && state.socket.readyState === WebSocket.OPEN;
  }

  // Sends queued messages, oldest first, paced by a small token bucket.
  function pumpOutbox() {
    clearTimeout(state.pumpTimer);
    if (!socketOpen()) return;
    const now = Date.now();
    state.tokens = Math.min(
      SEND_BURST,
      state.tokens + ((now - state.tokensAt) / 1000) * SEND_RATE_PER_S,
    );
    state.tokensAt = now;
    for (const entry of currentOutbox().values()) {
      if (entry.state !== "queued") continue;
      if (state.tokens < 1) {
        state.pumpTimer = setTimeout(pumpOutbox, 1000 / SEND_RATE_PER_S);
        return;
      }
      state.tokens -= 1;
      try {
        state.socket.send(
          JSON.stringify({ type: "message", body: entry.body, clientId: entry.clientId }),
        );
      } catch {
        return; // the socket is closing; its close handler requeues
      }
      entry.state = "sent";
      entry.sentAt = now;
      entry.sentAfterId = state.highestId;
    }
  }

  function inFlight() {
    return [...currentOutbox().values()].filter((e) => e.state === "sent");
  }

  function requeueInFlight() {
    for (const entry of currentOutbox().values()) {
      if (entry.state === "sent") entry.state = "queued";
    }
  }

  function resendStale() {
    if (!state.joined) return;
    const now = Date.now();
    let any = false;
    for (const entry of currentOutbox().values()) {
      if (entry.state === "sent" && now - entry.sentAt > RESEND_AFTER_MS) {
        entry.state = "queued";
        any = true;
      }
    }
    if (any) pumpOutbox();
  }

  // Our own message event may arrive before its ack: show the real message, hide the pending copy.
  // The ack still decides; if this guess was wrong, the ack brings the pending copy back.
  function hideMatchingOutgoing(ev) {
    for (const entry of currentOutbox().values()) {
      if (
        entry.matchedId === undefined && entry.state === "sent" && ev.id > entry.sentAfterId &&
        entry.body === ev.body
      ) {
        entry.matchedId = ev.id;
        if (entry.el) {
          entry.el.classList.add("superseded");
          regroup(nearbyMessage(entry.el, "nextElementSibling"));
        }
        return;
      }
    }
  }

  // ---------- events from the server ----------

  function handleFrame(data) {
    if (typeof data !== "string") return;
    // Measure once per frame: a frame can carry a whole history replay.
    const stick = isNearBottom();
    let added = false;
    for (const line of data.split("\n")) {
      if (!line.trim()) continue;
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        continue;
      }
      if (!ev || typeof ev !== "object" || typeof ev.type !== "string") continue;
      if (handleEvent(ev) === true) added = true;
    }
    if (stick) {
      trimOldest();
      scrollToBottom();
    } else if (added) {
      ui.jump.hidden = false;
    }
  }

  function trimOldest() {
    if (state.messageEls.size <= MAX_RENDERED) return;
    const ids = [...state.messageEls.keys()].sort((a, b) => a - b);
    for (const id of ids.slice(0, ids.length - MAX_RENDERED)) {
      state.messageEls.get(id).remove();
      state.messageEls.delete(id);
    }
    state.olderKnown = true;
    const first = ui.messages.querySelector(":scope > .message");
    if (first) regroup(first);
    updateOlderControl();
  }

  function handleEvent(ev) {
    switch (ev.type) {
      case "welcome":
        return onWelcome(ev);
      case "message":
        return onMessage(ev);
      case "ack":
        return onAck(ev);
      case "join":
      case "leave":
        if (isUserList(ev.users)) setUsers(ev.users);
        return;
      case "error":
        return onError(ev);
      default:
        return; // unknown events are ignored so the server can add new ones
    }
  }

  function onWelcome(ev) {
    state.online = true;
    state.attempt = 0;
    if (typeof ev.userName === "string" && ev.userName) {
      state.userName = ev.userName;
      ui.me.textContent = ev.userName;
    }
    // A large room lists only its first names; userCount says how many are here.
    if (isUserList(ev.users)) setUsers(ev.users, ev.userCount);
    const lastId = Number.isSafeInteger(ev.lastId) ? ev.lastId : 0;
    if (!state.welcomed) {
      state.welcomed = true;
      state.initialLastId = lastId;
      state.roomWasEmpty = lastId === 0;
    }
    ui.messages.classList.remove("loading");
    setStatus("online", "online");
    if (ev.recovered === false) {
      clearConfirmed();
      reloadHistory();
    }
    updateOlderControl();
    updateEmptyState();
    requeueInFlight();
    pumpOutbox();
  }

  function onMessage(ev) {
    if (!isMessage(ev)) return;
    if (typeof ev.room === "string" && ev.room !== state.room) return;
    state.highestId = Math.max(state.highestId, ev.id);
    if (!addMessage(ev)) return false;
    updateEmptyState();
    updateOlderControl();
    if (document.hidden && ev.userName !== state.userName && ev.id > state.initialLastId) {
      state.unread += 1;
      updateTitle();
    }
    return true;
  }

  function onAck(ev) {
    if (typeof ev.clientId !== "string" || !Number.isSafeInteger(ev.id)) return;
    const box = currentOutbox();
    const entry = box.get(ev.clientId);
    if (!entry) return;
    box.delete(ev.clientId);
    clearTimeout(entry.retryTimer);
    const item = entry.el;
    if (!item) return;
    if (state.messageEls.has(ev.id)) {
      removeMessageElement(item);
      return;
    }
    item.classList.remove("outgoing", "pending", "failed", "superseded", "continued");
    item.classList.add("provisional");
    item.querySelector(".state")?.remove();
    delete item.dataset.clientId;
    item.dataset.id = String(ev.id);
    state.messageEls.set(ev.id, item);
    placeConfirmed(item, ev.id);
    updateOlderControl();
  }

  function onError(ev) {
    const code = typeof ev.code === "string" ? ev.code : "";
    const text = typeof ev.message === "string" && ev.message ? ev.message : code || "error";
    // The error event carries no clientId, so the refused message is a best guess; an ack always wins.
    const flying = inFlight();
    switch (code) {
      case "too_large": {
        const largest = flying.reduce(
          (a, b) => (b.body.length > (a?.body.length ?? -1) ? b : a),
          null,
        );
        markFailed(largest, "too long");
        showNotice(text);
        return;
      }
      case "rate_limited":
        markFailed(flying[flying.length - 1], "sending too fast");
        showNotice(text);
        return;
      case "unavailable":
        for (const entry of flying) retryLater(entry);
        showNotice(`${text} — retrying…`);
        return;
      case "bad_name":
      case "bad_room":
        if (!state.online) {
          leaveChat(text);
          return;
        }
        showNotice(text);
        return;
      default:
        showNotice(text);
    }
  }

  function retryLater(entry) {
    entry.state = "waiting";
    entry.retries += 1;
    const delay = Math.min(BACKOFF_MAX_MS, UNAVAILABLE_RETRY_MS * 2 ** (entry.retries - 1));
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      if (entry.state !== "waiting") return;
      entry.state = "queued";
      pumpOutbox();
    }, delay * (0.75 + Math.random() * 0.5));
  }

  function setUsers(users, total) {
    const unique = [...new Set(users)];
    const count = Number.isSafeInteger(total) && total > unique.length ? total : unique.length;
    unique.sort((a, b) => {
      if (a === state.userName) return -1;
      if (b === state.userName) return 1;
      return a.localeCompare(b, undefined, { sensitivity: "base" });
    });
    const items = unique.map((name) => {
      const li = document.createElement("li");
      li.className = hueOf(name);
      if (name === state.userName) li.classList.add("me");
      li.dataset.initial = initialOf(name);
      li.textContent = name;
      return li;
    });
    ui.users.replaceChildren(...items);
    ui.userCount.textContent = String(count);
    ui.usersCount.textContent = String(count);
    ui.usersToggle.setAttribute("aria-label", `Who’s online (${count})`);
  }

  // ---------- connection ----------

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ room: state.room, userName: state.userName });
    // Resume after the newest message shown; in a room that was empty, after 0.
    if (state.highestId > 0) params.set("since", String(state.highestId));
    else if (state.welcomed && state.roomWasEmpty) params.set("since", "0");
    return `${scheme}://${location.host}/chat?${params}`;
  }

  function connect() {
    clearRetry();
    const reconnecting = state.welcomed || state.attempt > 0;
    setStatus(
      reconnecting ? "reconnecting" : "connecting",
      reconnecting ? "reconnecting…" : "connecting…",
    );
    let ws;
    try {
      ws = new WebSocket(socketUrl(), PROTOCOL);
    } catch {
      scheduleReconnect();
      return;
    }
    state.socket = ws;
    state.online = false;
    ws.addEventListener("message", (e) => {
      if (ws === state.socket) handleFrame(e.data);
    });
    ws.addEventListener("close", (e) => {
      if (ws !== state.socket) return;
      onSocketClosed(e);
    });
  }

  function onSocketClosed(event) {
    state.socket = null;
    state.online = false;
    clearTimeout(state.pumpTimer);
    requeueInFlight();
    if (event.code === 1009) {
      const flying = [...currentOutbox().values()].filter((e) => e.state === "queued");
      const largest = flying.reduce(
        (a, b) => (b.body.length > (a?.body.length ?? -1) ? b : a),
        null,
      );
      markFailed(largest, "too long");
    }
    const reason = closeReason(event);
    if (reason) showNotice(reason);
    scheduleReconnect();
  }

  function closeReason(event) {
    if (event.reason) return `Disconnected: ${event.reason}`;
    switch (event.code) {
      case 1008:
        return "The server refused the connection (policy).";
      case 1009:
        return "A message was too large for the server.";
      case 1011:
        return "The server had a problem; reconnecting.";
      case 1013:
        return "The connection fell behind; reconnecting.";
      default:
        return "";
    }
  }

  function closeSocket() {
    const ws = state.socket;
    state.socket = null;
    state.online = false;
    clearTimeout(state.pumpTimer);
    clearRetry();
    if (ws) {
      try {
        ws.close(1000, "bye");
      } catch { /* already closed */ }
    }
  }

  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    clearRetry();
    state.retryTimer = setTimeout(connect, delay);
    showCountdown();
    state.countdownTimer = setInterval(showCountdown, 250);
  }

  function showCountdown() {
    const seconds = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
    setStatus("reconnecting", `reconnecting in ${seconds} s…`);
  }

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    state.retryTimer = 0;
    state.countdownTimer = 0;
  }

  function reconnectNowIfWaiting() {
    if (state.joined && !state.socket && state.retryTimer) connect();
  }

  // ---------- history over HTTP ----------

  async function fetchHistory(params) {
    const query = new URLSearchParams({ room: state.room, ...params });
    const response = await fetch(`/history?${query}`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    const text = await response.text();
    let data = null;
    try {
      data = JSON.parse(text);
    } catch { /* handled below */ }
    if (!response.ok) {
      throw new Error(
        data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`,
      );
    }
    if (!data || !Array.isArray(data.messages)) throw new Error("unexpected answer from /history");
    return {
      messages: data.messages.filter((m) => m && typeof m === "object" && isMessage(m)),
      hasMore: data.hasMore === true,
    };
  }

  async function reloadHistory() {
    const epoch = state.epoch;
    showNotice(
      "Reconnected after a long gap: older history is incomplete; some messages may be missing.",
      10_000,
    );
    try {
      const page = await fetchHistory({ limit: String(RECOVERY_LIMIT) });
      if (epoch !== state.epoch) return;
      withStickiness(() => {
        for (const m of page.messages) {
          state.highestId = Math.max(state.highestId, m.id);
          addMessage(m);
        }
        return false;
      }, { forceBottom: true });
      state.olderKnown = page.hasMore;
    } catch (err) {
      if (epoch === state.epoch) showNotice(`Could not load history: ${err.message}`);
    }
    updateOlderControl();
    updateEmptyState();
  }

  async function loadOlder() {
    if (state.loadingOlder) return;
    const ids = confirmedIds();
    const before = ids ? ids.oldest : state.initialLastId + 1;
    const epoch = state.epoch;
    state.loadingOlder = true;
    ui.loadOlder.disabled = true;
    ui.loadOlder.textContent = "Loading…";
    try {
      const page = await fetchHistory({ before: String(before), limit: String(OLDER_PAGE) });
      if (epoch !== state.epoch) return;
      const list = ui.messages;
      const fromBottom = list.scrollHeight - list.scrollTop;
      for (const m of page.messages) addMessage(m);
      // Keep the messages the reader was looking at where they were.
      list.scrollTop = list.scrollHeight - fromBottom;
      state.olderKnown = page.hasMore;
    } catch (err) {
      if (epoch === state.epoch) showNotice(`Could not load older messages: ${err.message}`);
    } finally {
      state.loadingOlder = false;
      ui.loadOlder.disabled = false;
      ui.loadOlder.textContent = "Load older messages";
      updateOlderControl();
      updateEmptyState();
    }
  }

  // ---------- rooms ----------

  function updateUrl() {
    const url = new URL(location.href);
    url.searchParams.set("room", state.room);
    // A name that came in the URL stays there; one typed into the form is not put in a shareable link.
    if (url.searchParams.has("userName")) url.searchParams.set("userName", state.userName);
    history.replaceState(null, "", url);
  }

  function resetRoomView() {
    state.epoch += 1;
    state.welcomed = false;
    state.roomWasEmpty = false;
    state.initialLastId = 0;
    state.highestId = 0;
    state.olderKnown = null;
    state.attempt = 0;
    state.unread = 0;
    state.messageEls.clear();
    ui.messages.replaceChildren(ui.older);
    ui.messages.classList.add("loading");
    ui.older.hidden = true;
    ui.jump.hidden = true;
    setUsers([]);
    hideNotice();
  }

  function enterRoom(room) {
    closeSocket();
    state.room = room;
    resetRoomView();
    ui.roomName.textContent = room;
    ui.message.placeholder = `Message #${room}`;
    ui.switchRoom.value = "";
    updateUrl();
    updateTitle();
    // Messages still unsent in this room from an earlier visit go out again.
    for (const entry of currentOutbox().values()) {
      if (entry.state === "sent" || entry.state === "waiting") entry.state = "queued";
      renderOutgoing(entry);
    }
    updateEmptyState();
    connect();
  }

  function join(name, room) {
    // Unsent messages belong to the name they were typed under.
    if (name !== state.userName) state.outboxes.clear();
    state.userName = name;
    state.joined = true;
    rememberName(name);
    ui.me.textContent = name;
    ui.joinView.hidden = true;
    ui.chatView.hidden = false;
    enterRoom(room);
    ui.message.focus();
  }

  function leaveChat(errorText = "") {
    closeSocket();
    state.joined = false;
    state.epoch += 1;
    ui.chatView.hidden = true;
    ui.joinView.hidden = false;
    ui.name.value = state.userName;
    ui.room.value = state.room || DEFAULT_ROOM;
    ui.joinError.textContent = errorText;
    setSidebar(false);
    updateTitle();
    ui.name.focus();
  }

  // ---------- UI wiring ----------

  function onJoinSubmit(event) {
    event.preventDefault();
    const name = ui.name.value.trim();
    const room = ui.room.value.trim() || DEFAULT_ROOM;
    const problem = nameError(name) || roomError(room);
    ui.joinError.textContent = problem;
    ui.name.setAttribute("aria-invalid", String(Boolean(nameError(name))));
    ui.room.setAttribute("aria-invalid", String(Boolean(roomError(room))));
    if (problem) {
      (nameError(name) ? ui.name : ui.room).focus();
      return;
    }
    join(name, room);
  }

  function onSwitchSubmit(event) {
    event.preventDefault();
    const room = ui.switchRoom.value.trim();
    if (!room) {
      ui.switchRoom.focus();
      return;
    }
    const problem = roomError(room);
    if (problem) {
      showNotice(problem);
      ui.switchRoom.focus();
      return;
    }
    setSidebar(false);
    if (room !== state.room) enterRoom(room);
    else ui.switchRoom.value = "";
    ui.message.focus();
  }

  function cleanBody(text) {
    // Drop leading blank lines and trailing whitespace; keep indentation and inner newlines.
    return text.replace(/^(?:[ \t]*\r?\n)+/, "").trimEnd();
  }

  function onComposerSubmit(event) {
    event.preventDefault();
    const body = cleanBody(ui.message.value);
    if (!body) return;
    ui.message.value = "";
    autoGrow();
    queueMessage(body);
    ui.message.focus();
  }

  function onMessageKeydown(event) {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    ui.composer.requestSubmit();
  }

  const growsByItself = typeof CSS !== "undefined" && CSS.supports?.("field-sizing", "content");

  function autoGrow() {
    if (growsByItself) return;
    ui.message.style.height = "auto";
    ui.message.style.height = `${Math.min(ui.message.scrollHeight, 160)}px`;
  }

  function setSidebar(open) {
    ui.sidebar.classList.toggle("open", open);
    ui.usersToggle.setAttribute("aria-expanded", String(open));
  }

  function onVisibilityChange() {
    if (!document.hidden) {
      state.unread = 0;
      updateTitle();
      reconnectNowIfWaiting();
    }
  }

  function wire() {
    ui.joinForm.addEventListener("submit", onJoinSubmit);
    ui.switchForm.addEventListener("submit", onSwitchSubmit);
    ui.composer.addEventListener("submit", onComposerSubmit);
    ui.message.addEventListener("keydown", onMessageKeydown);
    ui.message.addEventListener("input", autoGrow);
    ui.loadOlder.addEventListener("click", loadOlder);
    ui.jump.addEventListener("click", scrollToBottom);
    ui.notice.addEventListener("click", hideNotice);
    ui.leave.addEventListener("click", () => leaveChat());
    ui.usersToggle.addEventListener("click", () => {
      setSidebar(!ui.sidebar.classList.contains("open"));
    });
    // On phones the online list overlays the conversation; touching the conversation closes it.
    document.querySelector(".conversation").addEventListener("pointerdown", () => {
      if (ui.sidebar.classList.contains("open")) setSidebar(false);
    });
    ui.messages.addEventListener("scroll", () => {
      if (isNearBottom()) ui.jump.hidden = true;
    }, { passive: true });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && ui.sidebar.classList.contains("open")) {
        setSidebar(false);
        ui.usersToggle.focus();
      }
    });
    document.addEventListener("visibilitychange", onVisibilityChange);
    globalThis.addEventListener("online", reconnectNowIfWaiting);
    setInterval(resendStale, 5000);
  }

  function start() {
    wire();
    const params = new URLSearchParams(location.search);
    const urlName = (params.get("userName") || "").trim();
    const urlRoom = (params.get("room") || "").trim();
    const name = urlName || rememberedName();
    const room = urlRoom || DEFAULT_ROOM;
    ui.name.value = name;
    ui.room.value = room;
    updateTitle();

    const problem = (urlName || urlRoom) && (nameError(name) || roomError(room));
    if ((urlName || (urlRoom && name)) && !problem) {
      join(name, room);
      return;
    }
    if (problem && (urlName || name)) ui.joinError.textContent = problem;
    (name ? el("join") : ui.name).focus();
  }

  start();
})();
