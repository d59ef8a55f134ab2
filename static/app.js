// @ts-check
/// <reference lib="dom" />
/**
 * parley — the chat page: finds its elements, wires the forms, and connects the parts: the
 * connection's events go to the message list, the outbox and the history paging. It asks the
 * server first who the person is: without accounts (open mode) a person picks any name; with them
 * they sign in, and the page adds rooms, direct messages and what admins do. Plain JavaScript
 * modules, no build step. Everything from the network is rendered with textContent, never as HTML.
 */

import { AccountForms } from "./account_forms.js";
import { Api, sentence } from "./api.js";
import { closeReason, Connection, isBan, POLICY_CLOSE } from "./connection.js";
import { entryOf, firstView } from "./entry.js";
import { HistoryPaging } from "./history.js";
import { InviteDialog } from "./invite.js";
import { MessageList } from "./message_list.js";
import { Outbox } from "./outbox.js";
import { PeopleActions } from "./people.js";
import { DEFAULT_ROOM, nameError, roomError } from "./protocol.js";
import { RoomDialogs } from "./room_dialogs.js";
import { showRooms } from "./room_list.js";
import { RoomDirectory, roomLabel } from "./rooms.js";
import { showUsers } from "./users.js";

const NAME_KEY = "parley.userName";
const MODE_KEY = "parley.mode";
const TITLE = "parley";
const NOTICE_MS = 6000;
/** A notice shown this long stays until it is clicked. */
const STICKY = 0;
const STALE_CHECK_MS = 5000;
const ROOMS_REFRESH_MS = 30_000;

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
  messages: find("messages", HTMLElement),
  signOut: find("sign-out", HTMLButtonElement),
  invite: find("invite", HTMLButtonElement),
  roomsSection: find("rooms-section", HTMLElement),
  newRoom: find("new-room", HTMLButtonElement),
  manageMembers: find("manage-members", HTMLButtonElement),
};

const roomsUi = {
  rooms: find("rooms", HTMLElement),
  direct: find("direct-rooms", HTMLElement),
  directHeading: find("direct-heading", HTMLElement),
};

const usersUi = {
  list: find("users", HTMLElement),
  counts: [find("user-count", HTMLElement), find("users-count", HTMLElement)],
  toggle: ui.usersToggle,
};

const state = {
  /** @type {"open" | "accounts" | null} null until the server said */ mode: null,
  admin: false,
  userName: "",
  room: "",
  joined: false,
  unread: 0,
  /** The server refused the room on screen: its close needs no second notice. */
  refused: false,
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

const api = new Api();

const accountForms = new AccountForms({
  ui: {
    signInForm: find("signin-form", HTMLFormElement),
    signInName: find("signin-name", HTMLInputElement),
    signInPassword: find("signin-password", HTMLInputElement),
    signInError: find("signin-error", HTMLElement),
    signIn: find("signin", HTMLButtonElement),
    accountForm: find("account-form", HTMLFormElement),
    accountIntro: find("account-intro", HTMLElement),
    accountName: find("account-name", HTMLInputElement),
    accountPassword: find("account-password", HTMLInputElement),
    accountError: find("account-error", HTMLElement),
    accountSubmit: find("account-submit", HTMLButtonElement),
  },
  api,
  showCard,
  onSignedIn,
});

const inviteDialog = new InviteDialog({
  dialog: find("invite-dialog", HTMLDialogElement),
  form: find("invite-form", HTMLFormElement),
  help: find("invite-help", HTMLElement),
  link: find("invite-link", HTMLInputElement),
  status: find("invite-status", HTMLElement),
  copy: find("invite-copy", HTMLButtonElement),
}, api);

const roomDialogs = new RoomDialogs({
  ui: {
    roomDialog: find("room-dialog", HTMLDialogElement),
    roomForm: find("room-form", HTMLFormElement),
    roomName: find("new-room-name", HTMLInputElement),
    roomError: find("room-form-error", HTMLElement),
    roomCancel: find("room-cancel", HTMLButtonElement),
    roomCreate: find("room-create", HTMLButtonElement),
    membersDialog: find("members-dialog", HTMLDialogElement),
    membersForm: find("members-form", HTMLFormElement),
    membersTitle: find("members-title", HTMLElement),
    members: find("members", HTMLElement),
    memberName: find("member-name", HTMLInputElement),
    membersStatus: find("members-status", HTMLElement),
    membersError: find("members-error", HTMLElement),
    membersClose: find("members-close", HTMLButtonElement),
    memberAdd: find("member-add", HTMLButtonElement),
  },
  api,
  room: () => state.room,
  me: () => state.userName,
  onCreated: (room) => {
    rooms.know(room, "private", null);
    goToRoom(room);
  },
  onChanged: refreshRooms,
});

const rooms = new RoomDirectory();

const people = new PeopleActions({
  api,
  confirm: {
    dialog: find("confirm-dialog", HTMLDialogElement),
    form: find("confirm-form", HTMLFormElement),
    title: find("confirm-title", HTMLElement),
    text: find("confirm-text", HTMLElement),
    ok: find("confirm-ok", HTMLButtonElement),
    cancel: find("confirm-cancel", HTMLButtonElement),
  },
  notice: showNotice,
  me: () => state.mode === "accounts" ? { userName: state.userName, admin: state.admin } : null,
  place: () => {
    const entry = rooms.entry(state.room);
    return { room: state.room, label: roomLabel(entry), kind: entry.kind };
  },
  openDirect: (room, peer) => {
    rooms.know(room, "direct", peer);
    goToRoom(room);
  },
});

// ---------- notices, status, title ----------

/**
 * @param {string} text
 * @param {number} [ms] how long it shows; STICKY until clicked
 */
function showNotice(text, ms = NOTICE_MS) {
  clearTimeout(state.noticeTimer);
  ui.notice.textContent = text;
  ui.notice.classList.add("visible");
  if (ms !== STICKY) state.noticeTimer = setTimeout(hideNotice, ms);
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
  stopped: "disconnected",
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
  document.title = `${prefix}${roomTitle()} — ${TITLE}`;
}

/** The room on screen as the page names it: `#room`, or `@person` for a direct room. */
function roomTitle() {
  const entry = rooms.entry(state.room);
  return `${entry.kind === "direct" ? "@" : "#"}${roomLabel(entry)}`;
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
      drawUsers(event.users);
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
  if (event.users) drawUsers(event.users, event.userCount);
  if (event.limits) outbox.setLimits(event.limits);
  if (paging.welcomed(event.lastId)) {
    // In a room that was empty, a reconnect asks for everything since 0.
    if (event.lastId === 0) connection.resumeFromStart();
    // A room the person just made, or was just added to, is now on the list.
    refreshRooms();
  }
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
        if (state.mode === "accounts") refused(error.text);
        else leaveChat(error.text);
        return;
      }
  }
  showNotice(error.text);
}

/** @param {{ code: number, reason: string }} close */
function onDrop(close) {
  outbox.requeue();
  const reason = closeReason(close);
  if (isBan(close)) {
    signedOut(reason);
    return;
  }
  if (close.code === POLICY_CLOSE) {
    // Refused for good (the room was taken away, say): the notice stays until read.
    if (!state.refused) showNotice(reason, STICKY);
    refreshRooms();
    return;
  }
  if (reason) showNotice(reason);
  // A refused upgrade (401: the session ended) is only a 1006 to the page.
  if (state.mode === "accounts" && close.code === 1006) checkSession();
}

/**
 * After a failed connection with accounts: back to the sign-in form if the session ended. A
 * server that cannot be reached has not ended it: the connection keeps trying.
 */
async function checkSession() {
  const me = await api.me();
  if (state.joined && me.mode === "accounts" && me.userName === null) {
    signedOut("Your session has ended; sign in again.");
  }
}

/**
 * The server will not let the person into the room on screen (with accounts: a private room
 * they are not a member of); the close that follows stops the connection.
 * @param {string} text
 */
function refused(text) {
  state.refused = true;
  ui.messages.classList.add("refused");
  showNotice(sentence(text), STICKY);
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

/** Names the room on screen by its label, and offers what can be done in it. */
function showRoomName() {
  const entry = rooms.entry(state.room);
  ui.roomName.textContent = roomLabel(entry);
  ui.roomName.dataset.kind = entry.kind;
  ui.message.placeholder = `Message ${roomTitle()}`;
  ui.manageMembers.hidden = state.mode !== "accounts" || entry.kind !== "private";
  updateTitle();
}

/** @param {string} room */
function enterRoom(room) {
  connection.close();
  state.room = room;
  state.unread = 0;
  state.refused = false;
  ui.messages.classList.remove("refused");
  paging.reset();
  list.reset();
  drawUsers([]);
  hideNotice();
  showRoomName();
  drawRooms();
  ui.switchRoom.value = "";
  updateUrl();
  // Messages still unsent in this room from an earlier visit go out again.
  outbox.setRoom(room);
  for (const entry of outbox.entries()) list.addOutgoing(entry, state.userName);
  list.updateEmptyState();
  connection.open(room, state.userName);
}

/**
 * Goes to `room` from the sidebar or the switch form: entered anew unless it is the room on screen
 * and still connected.
 * @param {string} room
 */
function goToRoom(room) {
  setSidebar(false);
  if (room !== state.room || connection.stopped) enterRoom(room);
  else ui.switchRoom.value = "";
  ui.message.focus();
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

/** Leaves the chat view: the socket closed, nothing reconnects. */
function closeChat() {
  connection.close();
  stopCountdown();
  paging.reset();
  state.joined = false;
  ui.chatView.hidden = true;
  ui.joinView.hidden = false;
  setSidebar(false);
  updateTitle();
}

function leaveChat(errorText = "") {
  closeChat();
  showCard(ui.joinForm);
  ui.name.value = state.userName;
  ui.room.value = state.room || DEFAULT_ROOM;
  ui.joinError.textContent = errorText;
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

// ---------- accounts ----------

/**
 * Shows one form of the join view (the open form, sign-in, or making an account).
 * @param {HTMLFormElement} form
 */
function showCard(form) {
  for (const card of document.querySelectorAll(".card-form")) {
    if (card instanceof HTMLFormElement && card.closest(".join-view")) card.hidden = card !== form;
  }
  ui.chatView.hidden = true;
  ui.joinView.hidden = false;
}

/**
 * Shows what belongs to the server's mode: accounts have rooms, direct rooms and "Sign out"; open
 * mode has "Leave" and nothing else, as before there were accounts.
 * @param {"open" | "accounts"} mode
 */
function setMode(mode) {
  state.mode = mode;
  const accounts = mode === "accounts";
  ui.roomsSection.hidden = !accounts;
  ui.signOut.hidden = !accounts;
  ui.leave.hidden = accounts;
  try {
    localStorage.setItem(MODE_KEY, mode);
  } catch { /* storage may be disabled */ }
}

/**
 * Signed in (or the account was made): to the chat, under the account's name. A setup link's
 * token or an invite's code does not stay in the address bar.
 * @param {import("./api.js").Me} me
 */
function onSignedIn(me) {
  if (me.userName === null) return;
  const params = new URLSearchParams(location.search);
  if (location.pathname !== "/") history.replaceState(null, "", "/");
  state.admin = me.admin;
  ui.invite.hidden = !me.admin;
  const urlRoom = (params.get("room") || "").trim();
  join(me.userName, urlRoom && !roomError(urlRoom) ? urlRoom : state.room || DEFAULT_ROOM);
}

/**
 * The session is over (signed out, banned, expired): back to the sign-in form, saying why.
 * @param {string} [why]
 */
function signedOut(why = "") {
  // Unsent messages stay: signed in again under the same name, they go out (see join).
  closeChat();
  rooms.clear();
  state.admin = false;
  accountForms.showSignIn(why, state.userName);
}

async function signOut() {
  try {
    await api.signOut();
  } catch (error) {
    showNotice(/** @type {Error} */ (error).message);
    return;
  }
  signedOut();
}

/** Lists the rooms again (with accounts), and names the room on screen by what it says. */
async function refreshRooms() {
  if (state.mode !== "accounts" || !state.joined) return;
  try {
    await rooms.refresh();
  } catch {
    return; // the list stays as it was; the next refresh tries again
  }
  if (!state.joined) return;
  drawRooms();
  showRoomName();
}

function drawRooms() {
  if (state.mode !== "accounts") return;
  showRooms(roomsUi, rooms.entries, state.room, goToRoom);
}

/**
 * The online list, with what the person can do with each of the others.
 * @param {string[]} users
 * @param {number | null} [total]
 */
function drawUsers(users, total = null) {
  showUsers(usersUi, users, state.userName, total, (name) => people.for(name));
}

async function invitePeople() {
  try {
    await inviteDialog.open();
  } catch (error) {
    showNotice(/** @type {Error} */ (error).message);
  }
}

// ---------- forms ----------

/** @param {SubmitEvent} event */
async function onJoinSubmit(event) {
  event.preventDefault();
  // Submitted before the server said whether it has accounts: they would have no use for it.
  if (state.mode === null) await modeKnown.promise;
  if (state.mode !== "open") return;
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
  goToRoom(room);
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
  refreshRooms();
}

function wire() {
  ui.joinForm.addEventListener("submit", onJoinSubmit);
  ui.switchForm.addEventListener("submit", onSwitchSubmit);
  ui.composer.addEventListener("submit", onComposerSubmit);
  ui.message.addEventListener("keydown", onMessageKeydown);
  ui.message.addEventListener("input", autoGrow);
  ui.notice.addEventListener("click", hideNotice);
  ui.leave.addEventListener("click", () => leaveChat());
  ui.signOut.addEventListener("click", signOut);
  ui.invite.addEventListener("click", invitePeople);
  ui.newRoom.addEventListener("click", () => roomDialogs.openNewRoom());
  ui.manageMembers.addEventListener("click", () => {
    roomDialogs.openMembers(roomLabel(rooms.entry(state.room)));
  });
  ui.usersToggle.addEventListener("click", () => {
    setSidebar(!ui.sidebar.classList.contains("open"));
  });
  // On phones the online list overlays the conversation; touching the conversation closes it.
  document.querySelector(".conversation")?.addEventListener("pointerdown", () => {
    if (ui.sidebar.classList.contains("open")) setSidebar(false);
  });
  document.addEventListener("keydown", (e) => {
    // Escape in a dialog closes only the dialog.
    if (document.querySelector("dialog[open]")) return;
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
  // A direct room someone else started appears without a reload.
  setInterval(() => {
    if (!document.hidden) refreshRooms();
  }, ROOMS_REFRESH_MS);
}

/** Resolved once the server has said whether it has accounts. */
const modeKnown = Promise.withResolvers();

/**
 * Shows the view the URL and the person call for. Until the server answers, the open form is on
 * screen as it always was (a server that had accounts last time shows nothing instead, not a form
 * it will not want), or the setup or invite form the path asks for.
 */
async function start() {
  wire();
  updateTitle();
  const entry = entryOf(location);
  if (entry.kind !== "chat") accountForms.showAccount(entry);
  else if (rememberedMode() === "accounts") ui.joinView.hidden = true;
  else prepareOpenForm();
  const me = await api.me();
  setMode(me.mode);
  modeKnown.resolve(undefined);
  switch (firstView(entry, me)) {
    case "open":
      return startOpen(entry);
    case "signin":
      return accountForms.showSignIn("", rememberedName());
    case "chat":
      return onSignedIn(me);
  }
}

/** What the URL asks of the open form: a name and a room, each from the URL or not. */
function openChoice() {
  const params = new URLSearchParams(location.search);
  const urlName = (params.get("userName") || "").trim();
  const urlRoom = (params.get("room") || "").trim();
  return { urlName, urlRoom, name: urlName || rememberedName(), room: urlRoom || DEFAULT_ROOM };
}

/** The open form, filled from the URL or with the remembered name, focused where to start. */
function prepareOpenForm() {
  const { name, room } = openChoice();
  showCard(ui.joinForm);
  ui.name.value = name;
  ui.room.value = room;
  (name ? ui.join : ui.name).focus();
}

/**
 * Open mode: joins at once when the URL names the person (or a room, and the name is remembered).
 * @param {import("./entry.js").Entry} entry
 */
function startOpen(entry) {
  if (entry.kind !== "chat") {
    history.replaceState(null, "", "/");
    prepareOpenForm();
    ui.joinError.textContent = "This server has no accounts: pick any name to chat.";
    return;
  }
  if (ui.joinView.hidden) prepareOpenForm();
  const { urlName, urlRoom, name, room } = openChoice();
  const problem = (urlName || urlRoom) && (nameError(name) || roomError(room));
  if ((urlName || (urlRoom && name)) && !problem) {
    join(name, room);
    return;
  }
  if (problem && (urlName || name)) ui.joinError.textContent = problem;
}

function rememberedMode() {
  try {
    return localStorage.getItem(MODE_KEY) || "";
  } catch {
    return "";
  }
}

start();
