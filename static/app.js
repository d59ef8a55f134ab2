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
import { elements } from "./elements.js";
import { Api, sentence } from "./api.js";
import { Composer } from "./composer.js";
import { closeReason, Connection, isBan, POLICY_CLOSE } from "./connection.js";
import { entryOf, firstView } from "./entry.js";
import { fetchHistory, HistoryPaging } from "./history.js";
import { InviteDialog } from "./invite.js";
import { mentionsMe } from "./mentions.js";
import { MessageActions } from "./message_actions.js";
import { MessageList } from "./message_list.js";
import { Notifier } from "./notifier.js";
import { Outbox } from "./outbox.js";
import { PeopleActions } from "./people.js";
import {
  DEFAULT_ROOM,
  nameError,
  readCommand,
  roomError,
  summaryCommand,
  typingCommand,
} from "./protocol.js";
import { MODE_KEY, NAME_KEY, remember, remembered, storage } from "./remembered.js";
import { RoomDialogs } from "./room_dialogs.js";
import { showRooms } from "./room_list.js";
import { RoomDirectory, roomLabel } from "./rooms.js";
import { SearchBox } from "./search_box.js";
import { StatusLine, STICKY } from "./status_line.js";
import { typingText, TypingTracker } from "./typing.js";
import { UnreadTracker } from "./unread.js";
import { showUsers } from "./users.js";

const TITLE = "parley";
/** How many messages around a search result are loaded with it. */
const AROUND_LIMIT = 50;
const STALE_CHECK_MS = 5000;
const ROOMS_REFRESH_MS = 30_000;

const ui = elements.ui;

const state = {
  /** @type {"open" | "accounts" | null} null until the server said */ mode: null,
  admin: false,
  userName: "",
  room: "",
  joined: false,
  unread: 0,
  /** The server refused the room on screen: its close needs no second notice. */
  refused: false,
  /** @type {string[]} the names present in the room on screen */ present: [],
  /** The newest id of the room's log received (any kind of event). */
  newestId: 0,
  /** @type {number | null} a search result to bring into view once it is loaded */ reveal: null,
  /** False once the server said it does not know typing, read or summary (an older one). */
  extras: true,
};

const statusLine = new StatusLine(elements.status, elements.notice);
const showNotice = statusLine.notice.bind(statusLine);
const hideNotice = statusLine.hideNotice.bind(statusLine);

const list = new MessageList({
  list: ui.messages,
  older: elements.older,
  jump: elements.jump,
  onRetry: retryEntry,
  onEdit: editEntry,
  me: () => state.userName,
});

const paging = new HistoryPaging({
  list,
  older: elements.older,
  button: elements.loadOlder,
  room: () => state.room,
  me: () => state.userName,
  notice: showNotice,
  resumeAfter: (id) => connection.resumeAfter(id),
});

const outbox = new Outbox({
  send: (text) => connection.send(text),
  onChange: (entry) => {
    if (entry.command && entry.state === "failed") {
      list.showError(entry.command.messageId, entry.detail);
    } else list.showState(entry);
  },
});

const connection = new Connection({
  origin: location,
  onEvents,
  onStatus: (status) => statusLine.show(status),
  onDrop,
});

const typing = new TypingTracker(() => {
  ui.typing.textContent = typingText(typing.names);
});

/** Read markers: kept by the server with accounts, in this browser without (see setMode). */
let unread = new UnreadTracker();

const notifier = new Notifier(elements.notify, storage());

const composer = new Composer({
  form: ui.composer,
  box: ui.message,
  suggestions: elements.suggestions,
  present: () => state.present,
  me: () => state.userName,
  send: queueMessage,
  typing: () => sendExtra(typingCommand()),
});

const api = new Api();

const accountForms = new AccountForms({
  ui: elements.accountForms,
  api,
  showCard,
  onSignedIn,
});

const inviteDialog = new InviteDialog(elements.invite, api);

const roomDialogs = new RoomDialogs({
  ui: elements.roomDialogs,
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
  confirm: elements.confirm,
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

const actions = new MessageActions({
  list: ui.messages,
  messages: list,
  me: () => ({ userName: state.userName, admin: state.mode === "accounts" && state.admin }),
  confirm: elements.confirm,
  send: sendChange,
});

const searchBox = new SearchBox({
  ...elements.search,
  roomName: labelOf,
  open: openAt,
  onShow: () => setSidebar(false),
});

// ---------- the title ----------

function updateTitle() {
  if (!state.joined) {
    document.title = TITLE;
    return;
  }
  const prefix = state.unread > 0 ? `(${state.unread}) ` : "";
  document.title = `${prefix}${labelOf(state.room)} — ${TITLE}`;
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
  // After the frame: a replay that stuck to the bottom does not move the result out of view.
  revealFound();
  reportRead();
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
      for (const name of typing.names) if (!event.users.includes(name)) typing.stopped(name);
      return false;
    case "error":
      onError(event);
      return false;
    case "edit":
    case "delete":
    case "reaction":
      return onChange(event);
    case "typing":
      if (event.room === state.room && event.userName !== state.userName) {
        typing.typing(event.userName);
      }
      return false;
    case "summary":
      onSummary(event);
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
  typing.clear();
  unread.welcomed(state.room, event.lastId, event.lastRead);
  if (state.mode === "accounts") sendExtra(summaryCommand(true));
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
  logged(message.id);
  typing.stopped(message.userName);
  const mine = message.userName === state.userName;
  const clientId = mine ? message.clientId : null;
  const own = clientId !== null && outbox.settle(clientId) !== undefined;
  const added = (own && list.confirmOutgoing(clientId, message.id, message.timestamp)) ||
    list.add(message, mine);
  if (!added) return false;
  list.updateEmptyState();
  paging.update();
  if (!mine && message.id > paging.initialLastId) noticeMessage(message);
  return true;
}

/**
 * A new message from someone else: counted in the title while the tab is hidden, and notified
 * when it mentions the person or is in a direct room (and notifications are on).
 * @param {import("./protocol.js").MessageEvent} message
 */
function noticeMessage(message) {
  if (!document.hidden) return;
  state.unread += 1;
  updateTitle();
  notifier.message(message, {
    mine: false,
    mentioned: mentionsMe(message.mentions, state.userName),
    direct: rooms.entry(state.room).kind === "direct",
    where: labelOf(state.room),
  });
}

/**
 * An event of the room's log with this id arrived: a reconnect resumes after it, and it is what
 * the person has read once the newest message is in view.
 * @param {number} id
 */
function logged(id) {
  connection.resumeAfter(id);
  state.newestId = Math.max(state.newestId, id);
  unread.seen(state.room, id);
}

/**
 * An edit, delete or reaction: applied to the message it changes; the person's own settles
 * its command (as an ack would).
 * @param {import("./protocol.js").ChangeEvent} event
 * @returns {boolean}
 */
function onChange(event) {
  if (event.room !== null && event.room !== state.room) return false;
  logged(event.id);
  if (event.userName === state.userName && event.clientId !== null) outbox.settle(event.clientId);
  list.applyChange(event);
  if (event.type === "delete") paging.update();
  return false;
}

/** @param {import("./protocol.js").SummaryEvent} event */
function onSummary(event) {
  for (const room of unread.summary(event.rooms, state.room)) {
    notifier.mentionedIn(labelOf(room), unread.mentions(room));
  }
  // A room not listed yet (made, or joined, since): the list is read again.
  const known = new Set(rooms.entries.map((entry) => entry.room));
  if (event.rooms.some((summary) => !known.has(summary.room))) refreshRooms();
  else drawRooms();
}

/**
 * The room as the page names it elsewhere: `#room`, or `@person` for a direct room.
 * @param {string} room
 */
function labelOf(room) {
  const entry = rooms.entry(room);
  return `${entry.kind === "direct" ? "@" : "#"}${roomLabel(entry)}`;
}

/**
 * The newest message is in view and the tab is visible: the room is read up to what arrived,
 * and the server is told (with accounts; without, the marker stays in this browser).
 */
function reportRead() {
  if (!state.joined || document.hidden || state.newestId === 0 || !list.isNearBottom()) return;
  if (!unread.read(state.room, state.newestId)) return;
  if (state.mode === "accounts") sendExtra(readCommand(state.newestId));
}

/**
 * Sends a command of the room log's live extras (typing, read, summary), unless the server said
 * it has none.
 * @param {string} frame
 */
function sendExtra(frame) {
  if (state.extras) connection.send(frame);
}

/** @param {import("./protocol.js").AckEvent} ack */
function onAck(ack) {
  const entry = outbox.settle(ack.clientId);
  if (!entry || entry.command) return;
  list.confirmOutgoing(ack.clientId, ack.id, null);
  paging.update();
}

/** @param {import("./protocol.js").ErrorEvent} error */
function onError(error) {
  const entry = error.clientId === null
    ? undefined
    : outbox.refuse(error.clientId, error.code, error.text);
  // A refused change is said next to its message.
  if (entry?.command && entry.state === "failed") return;
  if (error.code === "bad_frame" && !entry && /unknown frame type/.test(error.text)) {
    state.extras = false; // a server from before the room log: the page stays quiet
    return;
  }
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
  composer.restore(entry.body);
}

/**
 * Sends a change to a stored message (edit, delete, react) as a message is sent.
 * @param {import("./protocol.js").LogCommand} command
 */
function sendChange(command) {
  list.showError(command.messageId, "");
  const entry = outbox.change(command);
  if (entry.state === "failed") list.showError(command.messageId, entry.detail);
}

// ---------- rooms ----------

/**
 * Opens `room` with message `id` in view (a search result): the page of messages around it is
 * loaded from /history, and the message is brought into view once the room is there.
 * @param {string} room
 * @param {number} id
 */
async function openAt(room, id) {
  if (room !== state.room || connection.stopped) goToRoom(room);
  if (list.reveal(id)) return;
  const entered = state.room;
  try {
    const page = await fetchHistory(room, { around: String(id), limit: String(AROUND_LIMIT) });
    if (state.room !== entered) return;
    list.keepPosition(() => {
      for (const m of page.messages) list.add(m, m.userName === state.userName);
    });
    list.updateEmptyState();
    paging.update();
  } catch (error) {
    showNotice(`Could not load that message: ${/** @type {Error} */ (error).message}`);
    return;
  }
  state.reveal = id;
  revealFound();
}

/** Brings the search result into view, once it and the room's first welcome are there. */
function revealFound() {
  if (state.reveal === null || !connection.online) return;
  if (list.reveal(state.reveal)) state.reveal = null;
}

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
  ui.message.placeholder = `Message ${labelOf(state.room)}`;
  ui.manageMembers.hidden = state.mode !== "accounts" || entry.kind !== "private";
  updateTitle();
}

/** @param {string} room */
function enterRoom(room) {
  connection.close();
  state.room = room;
  state.unread = 0;
  state.newestId = 0;
  state.reveal = null;
  state.refused = false;
  typing.clear();
  actions.hide();
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
  remember(NAME_KEY, name);
  ui.me.textContent = name;
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  enterRoom(room);
  ui.message.focus();
}

/** Leaves the chat view: the socket closed, nothing reconnects. */
function closeChat() {
  connection.close();
  statusLine.stopCountdown();
  searchBox.hide();
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
  // With accounts the server keeps the read markers; without, this browser does.
  unread = new UnreadTracker(accounts ? null : storage());
  remember(MODE_KEY, mode);
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
    if (!await rooms.refresh()) return; // a newer answer came, or will
  } catch {
    return; // the list stays as it was; the next refresh tries again
  }
  if (!state.joined) return;
  unread.listed(rooms.entries);
  drawRooms();
  showRoomName();
}

function drawRooms() {
  if (state.mode !== "accounts") return;
  showRooms(elements.rooms, rooms.entries, state.room, goToRoom, unread);
}

/**
 * The online list, with what the person can do with each of the others.
 * @param {string[]} users
 * @param {number | null} [total]
 */
function drawUsers(users, total = null) {
  state.present = users;
  showUsers(elements.users, users, state.userName, total, (name) => people.for(name));
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
  reportRead();
  reconnectNowIfWaiting();
  refreshRooms();
}

function wire() {
  ui.joinForm.addEventListener("submit", onJoinSubmit);
  ui.switchForm.addEventListener("submit", onSwitchSubmit);
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
  ui.messages.addEventListener("scroll", reportRead, { passive: true });
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
  else if (remembered(MODE_KEY) === "accounts") ui.joinView.hidden = true;
  else prepareOpenForm();
  const me = await api.me();
  setMode(me.mode);
  modeKnown.resolve(undefined);
  switch (firstView(entry, me)) {
    case "open":
      return startOpen(entry);
    case "signin":
      return accountForms.showSignIn("", remembered(NAME_KEY));
    case "chat":
      return onSignedIn(me);
  }
}

/** What the URL asks of the open form: a name and a room, each from the URL or not. */
function openChoice() {
  const params = new URLSearchParams(location.search);
  const urlName = (params.get("userName") || "").trim();
  const urlRoom = (params.get("room") || "").trim();
  return { urlName, urlRoom, name: urlName || remembered(NAME_KEY), room: urlRoom || DEFAULT_ROOM };
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

start();
