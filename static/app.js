// @ts-check
/// <reference lib="dom" />
/**
 * parley — the chat page: finds its elements, wires the forms, and connects the parts: the
 * connection's events go to the message list, the outbox and the history paging. Plain JavaScript
 * modules, no build step. Everything from the network is rendered with textContent, never as HTML.
 */

import { closeReason, Connection } from "./connection.js";
import { HistoryPaging } from "./history.js";
import { MessageList } from "./message_list.js";
import { Outbox } from "./outbox.js";
import { DEFAULT_ROOM, nameError, roomError } from "./protocol.js";
import { showUsers } from "./users.js";

const NAME_KEY = "parley.userName";
const TITLE = "parley";
const NOTICE_MS = 6000;
const STALE_CHECK_MS = 5000;

/**
 * The element with this id, which must be of this kind: the page and this script go together.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} kind
 * @returns {T}
 */
function find(id, kind) {
  const found = document.getElementById(id);
  if (!(found instanceof kind)) throw new Error(`chat.html has no ${kind.name} #${id}`);
  return found;
}

const ui = {
  joinView: find("join-view", HTMLElement),
  joinForm: find("join-form", HTMLFormElement),
  join: find("join", HTMLButtonElement),
  name: find("name", HTMLInputElement),
  room: find("room", HTMLInputElement),
  joinError: find("join-error", HTMLElement),
  chatView: find("chat-view", HTMLElement),
  roomName: find("room-name", HTMLElement),
  status: find("status", HTMLElement),
  switchForm: find("switch-form", HTMLFormElement),
  switchRoom: find("switch-room", HTMLInputElement),
  usersToggle: find("users-toggle", HTMLButtonElement),
  sidebar: find("sidebar", HTMLElement),
  me: find("me", HTMLElement),
  leave: find("leave", HTMLButtonElement),
  notice: find("notice", HTMLElement),
  composer: find("composer", HTMLFormElement),
  message: find("message", HTMLTextAreaElement),
};

const usersUi = {
  list: find("users", HTMLElement),
  counts: [find("user-count", HTMLElement), find("users-count", HTMLElement)],
  toggle: ui.usersToggle,
};

const state = {
  userName: "",
  room: "",
  joined: false,
  unread: 0,
  /** @type {ReturnType<typeof setTimeout> | undefined} */ noticeTimer: undefined,
  /** @type {ReturnType<typeof setInterval> | undefined} */ countdownTimer: undefined,
};

const older = find("older", HTMLElement);

const list = new MessageList({
  list: find("messages", HTMLElement),
  older,
  jump: find("jump", HTMLButtonElement),
  onRetry: retryEntry,
  onEdit: editEntry,
});

const paging = new HistoryPaging({
  list,
  older,
  button: find("load-older", HTMLButtonElement),
  room: () => state.room,
  me: () => state.userName,
  notice: showNotice,
  resumeAfter: (id) => connection.resumeAfter(id),
});

const outbox = new Outbox({
  send: (text) => connection.send(text),
  onChange: (entry) => list.showState(entry),
});

const connection = new Connection({
  origin: location,
  onEvents,
  onStatus: showStatus,
  onDrop,
});

// ---------- notices, status, title ----------

/**
 * @param {string} text
 * @param {number} [ms]
 */
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

const STATUS_TEXT = {
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  online: "online",
};

/** @param {import("./connection.js").ConnectionStatus} status */
function showStatus(status) {
  stopCountdown();
  if (status.state !== "waiting") {
    setStatus(status.state, STATUS_TEXT[status.state]);
    return;
  }
  const { retryAt } = status;
  const tick = () => {
    const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
    setStatus("reconnecting", `reconnecting in ${seconds} s…`);
  };
  tick();
  state.countdownTimer = setInterval(tick, 250);
}

function stopCountdown() {
  clearInterval(state.countdownTimer);
  state.countdownTimer = undefined;
}

/**
 * @param {string} kind
 * @param {string} text
 */
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

// ---------- events from the server ----------

/** @param {import("./protocol.js").ServerEvent[]} events */
function onEvents(events) {
  const trimmed = list.applyFrame(() => {
    let added = false;
    for (const event of events) if (handleEvent(event)) added = true;
    return added;
  });
  if (trimmed) paging.olderDropped();
}

/**
 * Acts on one event; true when it added a message to the list.
 * @param {import("./protocol.js").ServerEvent} event
 * @returns {boolean}
 */
function handleEvent(event) {
  switch (event.type) {
    case "welcome":
      onWelcome(event);
      return false;
    case "message":
      return onMessage(event);
    case "ack":
      onAck(event);
      return false;
    case "join":
    case "leave":
      showUsers(usersUi, event.users, state.userName);
      return false;
    case "error":
      onError(event);
      return false;
  }
}

/** @param {import("./protocol.js").WelcomeEvent} event */
function onWelcome(event) {
  if (event.userName) {
    state.userName = event.userName;
    ui.me.textContent = event.userName;
  }
  if (event.users) showUsers(usersUi, event.users, state.userName, event.userCount);
  if (event.limits) outbox.setLimits(event.limits);
  // In a room that was empty, a reconnect asks for everything since 0.
  if (paging.welcomed(event.lastId) && event.lastId === 0) connection.resumeFromStart();
  list.loaded();
  if (event.recovered === false) {
    list.clearConfirmed();
    connection.forgetPosition();
    paging.forgetPages();
    paging.recover();
  }
  paging.update();
  list.updateEmptyState();
  outbox.requeue();
  outbox.pump();
}

/**
 * A message, or the person's own coming back: matched to its unsent copy by clientId.
 * @param {import("./protocol.js").MessageEvent} message
 * @returns {boolean}
 */
function onMessage(message) {
  if (message.room !== null && message.room !== state.room) return false;
  connection.resumeAfter(message.id);
  const mine = message.userName === state.userName;
  const clientId = mine ? message.clientId : null;
  const own = clientId !== null && outbox.settle(clientId) !== undefined;
  const added = (own && list.confirmOutgoing(clientId, message.id, message.timestamp)) ||
    list.add(message, mine);
  if (!added) return false;
  list.updateEmptyState();
  paging.update();
  if (document.hidden && !mine && message.id > paging.initialLastId) {
    state.unread += 1;
    updateTitle();
  }
  return true;
}

/** @param {import("./protocol.js").AckEvent} ack */
function onAck(ack) {
  if (!outbox.settle(ack.clientId)) return;
  list.confirmOutgoing(ack.clientId, ack.id, null);
  paging.update();
}

/** @param {import("./protocol.js").ErrorEvent} error */
function onError(error) {
  const entry = error.clientId === null
    ? undefined
    : outbox.refuse(error.clientId, error.code, error.text);
  switch (error.code) {
    case "unavailable":
      showNotice(entry ? `${error.text} — retrying…` : error.text);
      return;
    case "bad_name":
    case "bad_room":
      // Before the welcome, this is the server refusing to let the person in.
      if (!connection.online) {
        leaveChat(error.text);
        return;
      }
  }
  showNotice(error.text);
}

/** @param {{ code: number, reason: string }} close */
function onDrop(close) {
  outbox.requeue();
  const reason = closeReason(close);
  if (reason) showNotice(reason);
}

// ---------- the outbox on screen ----------

/** @param {string} body */
function queueMessage(body) {
  const entry = outbox.add(body);
  list.withStickiness(() => {
    list.addOutgoing(entry, state.userName);
    list.updateEmptyState();
    return true;
  }, { forceBottom: true });
  if (entry.state === "failed") showNotice(entry.detail);
}

/** @param {string} clientId */
function retryEntry(clientId) {
  outbox.retry(clientId);
  ui.message.focus();
}

/** @param {string} clientId */
function editEntry(clientId) {
  const entry = outbox.take(clientId);
  if (!entry) return;
  list.removeOutgoing(clientId);
  list.updateEmptyState();
  const draft = ui.message.value.trim();
  ui.message.value = draft ? `${entry.body}\n${draft}` : entry.body;
  autoGrow();
  ui.message.focus();
}

// ---------- rooms ----------

function updateUrl() {
  const url = new URL(location.href);
  url.searchParams.set("room", state.room);
  // A name that came in the URL stays there; one typed into the form is not put in a shareable link.
  if (url.searchParams.has("userName")) url.searchParams.set("userName", state.userName);
  history.replaceState(null, "", url);
}

/** @param {string} room */
function enterRoom(room) {
  connection.close();
  state.room = room;
  state.unread = 0;
  paging.reset();
  list.reset();
  showUsers(usersUi, [], state.userName);
  hideNotice();
  ui.roomName.textContent = room;
  ui.message.placeholder = `Message #${room}`;
  ui.switchRoom.value = "";
  updateUrl();
  updateTitle();
  // Messages still unsent in this room from an earlier visit go out again.
  outbox.setRoom(room);
  for (const entry of outbox.entries()) list.addOutgoing(entry, state.userName);
  list.updateEmptyState();
  connection.open(room, state.userName);
}

/**
 * @param {string} name
 * @param {string} room
 */
function join(name, room) {
  // Unsent messages belong to the name they were typed under.
  if (name !== state.userName) outbox.clear();
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
  connection.close();
  stopCountdown();
  paging.reset();
  state.joined = false;
  ui.chatView.hidden = true;
  ui.joinView.hidden = false;
  ui.name.value = state.userName;
  ui.room.value = state.room || DEFAULT_ROOM;
  ui.joinError.textContent = errorText;
  setSidebar(false);
  updateTitle();
  ui.name.focus();
}

/** @param {string} name */
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

// ---------- forms ----------

/** @param {SubmitEvent} event */
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

/** @param {SubmitEvent} event */
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

/**
 * Drops leading blank lines and trailing whitespace; keeps indentation and inner newlines.
 * @param {string} text
 */
function cleanBody(text) {
  return text.replace(/^(?:[ \t]*\r?\n)+/, "").trimEnd();
}

/** @param {SubmitEvent} event */
function onComposerSubmit(event) {
  event.preventDefault();
  const body = cleanBody(ui.message.value);
  if (!body) return;
  ui.message.value = "";
  autoGrow();
  queueMessage(body);
  ui.message.focus();
}

/** @param {KeyboardEvent} event */
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

// ---------- wiring ----------

/** @param {boolean} open */
function setSidebar(open) {
  ui.sidebar.classList.toggle("open", open);
  ui.usersToggle.setAttribute("aria-expanded", String(open));
}

function reconnectNowIfWaiting() {
  if (state.joined) connection.reconnectNow();
}

function onVisibilityChange() {
  if (document.hidden) return;
  state.unread = 0;
  updateTitle();
  reconnectNowIfWaiting();
}

function wire() {
  ui.joinForm.addEventListener("submit", onJoinSubmit);
  ui.switchForm.addEventListener("submit", onSwitchSubmit);
  ui.composer.addEventListener("submit", onComposerSubmit);
  ui.message.addEventListener("keydown", onMessageKeydown);
  ui.message.addEventListener("input", autoGrow);
  ui.notice.addEventListener("click", hideNotice);
  ui.leave.addEventListener("click", () => leaveChat());
  ui.usersToggle.addEventListener("click", () => {
    setSidebar(!ui.sidebar.classList.contains("open"));
  });
  // On phones the online list overlays the conversation; touching the conversation closes it.
  document.querySelector(".conversation")?.addEventListener("pointerdown", () => {
    if (ui.sidebar.classList.contains("open")) setSidebar(false);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.sidebar.classList.contains("open")) {
      setSidebar(false);
      ui.usersToggle.focus();
    }
  });
  document.addEventListener("visibilitychange", onVisibilityChange);
  globalThis.addEventListener("online", reconnectNowIfWaiting);
  setInterval(() => {
    if (state.joined) outbox.resendStale();
  }, STALE_CHECK_MS);
}

/** Joins at once when the URL names the person (or a room, and the name is remembered). */
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
  (name ? ui.join : ui.name).focus();
}

start();
