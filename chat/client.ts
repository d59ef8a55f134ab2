/**
 * One connection's session: it joins its room under its account's name (or, in open mode, the
 * name from the query or `hello`), turns
 * what the client sends into commands (validated, rate limited, published), sends the room's
 * history and events through its dialect's {@link Writer} with backpressure, and leaves. An event
 * stream's session only follows the room: it is never present and sends nothing to it.
 *
 * A session sees neither sockets (a {@link Transport} carries its frames) nor storage (its
 * {@link Room} has the history). An exception in a session's own code ends that connection, with
 * 1011, and nothing else.
 */

import type { Lease } from "./admission.ts";
import type { Live, LiveSession, LiveSink } from "./live.ts";
import { isLiveCommand, type LiveCommand } from "./message.ts";
import type { Config } from "./config.ts";
import {
  authorOf,
  ChangeRefusedError,
  type ChangeRequest,
  ClientIdReusedError,
  HistoryError,
} from "./history.ts";
import { ANYONE, type Expiry, type Identity } from "./identity.ts";
import { clientText, type Logger } from "./log.ts";
import {
  type ChangeCommand,
  type ClientCommand,
  type Dialect,
  type LogEvent,
  maxFrameBytes,
  parseClientFrame,
  ProtocolError,
  type WelcomeEvent,
} from "./message.ts";
import type { Metrics } from "./metrics.ts";
import { TokenBucket } from "./admission.ts";
import {
  type Batch,
  MAX_QUEUED_BATCHES,
  type Room,
  RoomFailedError,
  SubscriberOverflowError,
  type Subscription,
} from "./room.ts";
import { CloseCode, type Frame, frameSize, type Transport } from "./transport.ts";
import { EVENT_STREAM, type Format, REPLAY_CHUNK, type Writer, writerFor } from "./writers.ts";

/** What the client is told of a command that was not stored. */
function refusal(error: unknown, what: string, clientId: string | undefined): ProtocolError {
  if (error instanceof ClientIdReusedError) {
    return new ProtocolError("bad_frame", error.message, clientId);
  }
  if (error instanceof ChangeRefusedError) {
    return new ProtocolError(error.code, error.message, clientId);
  }
  return new ProtocolError(
    "unavailable",
    `the ${what} was not stored (${(error as Error).message}); send it again` +
      (clientId ? " with the same clientId" : ""),
    clientId,
  );
}

/** Everything a connection needs, chosen at upgrade time. */
export interface ClientOptions {
  transport: Transport;
  /** A WebSocket dialect, or {@link EVENT_STREAM}: a follower that joins nothing and never sends. */
  dialect: Format;
  room: Room;
  /** From the query; a `parley.v1` client without one must send `hello` before anything else. */
  userName: string | null;
  /**
   * Who the connection is (see `identity.ts`; `ANYONE` if absent). A name it has is the one the
   * client is present and posts under: the query's, `hello`'s and a legacy frame's are not read.
   */
  identity?: Identity;
  /** When the connection's credential ends, closing it with 1008, unless a `refresh` renews it. */
  expiry?: Expiry | null;
  /** Resume after this message id. */
  since: number | null;
  limits: Config["limits"];
  /** Messages a newcomer gets before live ones. */
  onJoin: number;
  /** The most messages a resume replays; further back, it gets `onJoin` and `recovered: false`. */
  maxReplay: number;
  /** The peer, for the log. */
  address: string;
  /**
   * The connection's place in the admission counts: its address's place is given back as soon
   * as the connection leaves (a peer that never reads may hold the socket long after), the rest
   * once the socket has closed.
   */
  lease: Lease;
  log: Logger;
  metrics: Metrics;
  /** Called exactly once, when the connection has closed. */
  onClose: () => void;
  /** Typing, read markers and summaries, for a joined `parley.v1` client (`live.ts`). */
  live?: Live;
}

/**
 * Where a session is: waiting for the transport to open and the room to be ready, in the room
 * (joined once it has a name), or gone (it left the room; nothing it sends counts any more).
 */
type Phase = "opening" | "ready" | "gone";

/** The longest delay `setTimeout` keeps: it fires at once for a longer one. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A connected client of a room. */
export class Client {
  readonly #o: ClientOptions;
  readonly #transport: Transport;
  readonly #writer: Writer;
  readonly #bucket: TokenBucket;
  #phase: Phase = "opening";
  /** The name the client is present under, once it has joined. */
  #userName: string | null = null;
  /** The name it asked for, from the query or `hello`: it joins under it once the room is ready. */
  #wanted: string | null;
  #subscription: Subscription | null = null;
  /** Ids of the log up to this one were sent as history; live copies of them are skipped. */
  #seam = 0;
  /** Live batches that arrived while history is being replayed; null once it has been. */
  #held: Batch[] | null = null;
  /** Bytes of history replay the send buffer may hold on top of `limits.sendBufferBytes`. */
  #replayAllowance = 0;
  #throttled = false;
  /** The code the server closed with: the peer's echo of it may carry none. */
  #closeCode: number | null = null;
  #closeHandled = false;
  #failed = false;
  #expiry: Expiry | null;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** What the client does of the live extras, once it joined. */
  #live: LiveSession | null = null;

  constructor(options: ClientOptions) {
    this.#o = options;
    this.#transport = options.transport;
    this.#writer = writerFor(options.dialect, options.transport);
    this.#bucket = new TokenBucket(options.limits.messagesPerSecond, options.limits.burst);
    this.#wanted = options.identity?.userName ?? options.userName;
    this.#expiry = options.expiry ?? null;
    options.room.hold();
    options.transport.listen({
      opened: () => this.#guard(() => this.#opened()),
      received: (frame) => this.#guard(() => this.#receive(frame)),
      closed: (code, reason) => this.#closed(code, reason),
    });
    options.metrics.opened(options.dialect, options.transport.kind);
  }

  /** Who the connection is. */
  get identity(): Identity {
    return this.#o.identity ?? ANYONE;
  }

  /** The name of the connection's room. */
  get room(): string {
    return this.#o.room.name;
  }

  /** Closes the connection with a code from {@link CloseCode} and a reason for the user. */
  close(code: number, reason: string): void {
    // A peer that stopped reading may never answer the close: it leaves the room (and gives its
    // address's place back) now. Deno 2.9 keeps such a socket until the peer reads or goes: the
    // close frame waits behind the unsent data, idleTimeout's ping too, and nothing drops it.
    this.#guard(() => this.#leave());
    if (this.#transport.state === "closed") return;
    this.#closeCode = code;
    this.#transport.close(code, reason);
  }

  #opened(): void {
    this.#o.log.info(
      `open ${this.#o.address} room=${clientText(this.#o.room.name)} dialect=${this.#o.dialect}`,
    );
    if (this.#expiry !== null) this.#expireIn(this.#expiry.msLeft());
    const ready = this.#o.room.ready;
    if (ready === null) return this.#start();
    ready.then(() => this.#guard(() => this.#start()), (error) => this.#fail(error));
  }

  /** The room is ready: a client with a name joins it. */
  #start(): void {
    if (this.#phase === "gone") return;
    this.#phase = "ready";
    if (this.#o.dialect === EVENT_STREAM) {
      this.#subscribe();
    } else if (this.#o.dialect === "legacy") {
      // The Go server's clients get the history and every message from the start, named or not.
      this.#subscribe();
      if (this.#wanted !== null) this.#setName(this.#wanted);
    } else if (this.#wanted !== null) {
      this.#enter(this.#wanted);
    }
  }

  /** A `parley.v1` client is named: join, then welcome, missed messages, and live events. */
  #enter(userName: string): void {
    this.#setName(userName);
    const { live, room } = this.#o;
    const sink = this.#liveSink();
    this.#live = live?.session({ identity: this.identity, userName, room, sink }) ?? null;
    this.#subscribe();
  }

  /**
   * Where the live extras send: a typing notice is dropped while the history is replayed or the
   * send buffer is full (it would be stale), a summary is not (it is small, and once a second).
   */
  #liveSink(): LiveSink {
    return {
      typing: (frame) => {
        const busy = this.#held !== null ||
          this.#transport.bufferedAmount > this.#o.limits.sendBufferBytes;
        if (!busy && this.#transport.state === "open") this.#writer.live(frame);
      },
      summary: (frame) => {
        if (this.#transport.state === "open") this.#writer.live(frame);
      },
    };
  }

  #setName(userName: string): void {
    this.#wanted = userName;
    // Before the room is ready the name waits for #start.
    if (this.#phase !== "ready" || this.#userName === userName) return;
    if (this.#userName !== null) this.#o.room.leave(this.#userName);
    this.#userName = userName;
    this.#o.room.join(userName);
  }

  /**
   * Subscribes, then reads what the client missed. Both happen in one turn, so a message stored
   * meanwhile is either in the history (up to the seam, the last id now) or in the subscription;
   * the seam drops the overlap. The first chunk is read before the welcome: a join whose history
   * cannot be read gets no welcome, only a 1011.
   */
  #subscribe(): void {
    const room = this.#o.room;
    const subscription = this.#subscription = room.subscribe();
    const lastId = room.lastId;
    const { after, recovered, log } = room.missed(
      this.#o.since,
      lastId,
      this.#o.onJoin,
      this.#o.maxReplay,
    );
    const first = room.replay(after, lastId, REPLAY_CHUNK, log);
    this.#seam = lastId;
    this.#writer.welcome(this.#welcome(lastId, recovered));
    this.#held = [];
    this.#pump(subscription);
    this.#replay(first, lastId, log).catch((error) => this.#fail(error));
  }

  /**
   * Sends the history a chunk at a time, the next once the send buffer holds less than half its
   * limit: however much a client missed, one that reads slowly (or never) has at most about the
   * limit and a chunk queued. Live batches wait behind it (see {@link #pump}), then go out.
   */
  async #replay(first: LogEvent[], seam: number, log: boolean): Promise<void> {
    let chunk = first;
    while (chunk.length > 0) {
      this.#replayAllowance = this.#writer.replay(chunk);
      const sent = chunk[chunk.length - 1].id;
      if (sent >= seam) break;
      await this.#transport.drained(this.#o.limits.sendBufferBytes / 2);
      if (this.#phase === "gone" || this.#transport.state !== "open") return;
      const room = this.#o.room;
      chunk = room.replay(sent, seam, REPLAY_CHUNK, log);
      // Retention removed what was still to be replayed: it can resume no further than this.
      if (chunk[0]?.id !== sent + 1 && room.lost(sent)) {
        return this.#tooSlow("fell behind the room");
      }
    }
    const held = this.#held ?? [];
    this.#held = null;
    if (held.length > 0 && this.#transport.state === "open") this.#deliver(held);
  }

  #welcome(lastId: number, recovered: boolean): WelcomeEvent {
    const { room, limits } = this.#o;
    const welcome: WelcomeEvent = {
      type: "welcome",
      room: room.name,
      userName: this.#userName ?? "",
      users: room.users,
      userCount: room.userCount,
      lastId,
      limits: {
        maxMessageBytes: limits.maxMessageBytes,
        messagesPerSecond: limits.messagesPerSecond,
        burst: limits.burst,
      },
    };
    if (!recovered) welcome.recovered = false;
    const lastRead = this.#live?.lastRead() ?? null;
    if (lastRead !== null) welcome.lastRead = lastRead;
    return welcome;
  }

  /** Sends the room's batches as they come; while history is replayed, holds them. */
  async #pump(subscription: Subscription): Promise<void> {
    try {
      for await (const batches of subscription) {
        if (this.#transport.state !== "open") break;
        if (this.#overflowing()) return this.#tooSlow("the send buffer is full");
        if (this.#held === null) this.#deliver(batches);
        else if (this.#hold(batches) > MAX_QUEUED_BATCHES) {
          return this.#tooSlow("fell behind the room");
        }
      }
    } catch (error) {
      if (error instanceof SubscriberOverflowError) {
        this.#tooSlow("fell behind the room");
      } else if (error instanceof RoomFailedError) {
        // Its room reported the cause.
        this.close(CloseCode.serverError, "the room failed; reconnect");
      } else {
        this.#fail(error);
      }
    }
  }

  /**
   * Keeps batches for after the replay, sealed as if sent: a room whose only subscriber is
   * replaying must not grow one batch without end. Returns how many are held.
   */
  #hold(batches: readonly Batch[]): number {
    const held = this.#held!;
    for (const batch of batches) {
      batch.seal();
      held.push(batch);
    }
    return held.length;
  }

  /** Closes a client that cannot keep up with 1013: it may reconnect, and resume. */
  #tooSlow(why: string): void {
    this.#o.metrics.drops++;
    this.close(CloseCode.tryAgainLater, `too slow: ${why}; reconnect`);
  }

  /** Whether the send buffer holds more than the limit, with what is left of the replay's. */
  #overflowing(): boolean {
    const buffered = this.#transport.bufferedAmount;
    const limit = this.#o.limits.sendBufferBytes;
    if (buffered > limit + this.#replayAllowance) return true;
    // Once the replay has drained, the plain limit applies.
    if (buffered <= limit) this.#replayAllowance = 0;
    return false;
  }

  #deliver(batches: readonly Batch[]): void {
    const live = this.#pastSeam(batches);
    if (live.length === 0) return;
    for (const batch of live) this.#o.metrics.messagesOut += batch.messageCount;
    this.#writer.deliver(live);
  }

  /** The batches without the events already sent as history; only the first ones have any. */
  #pastSeam(batches: readonly Batch[]): readonly Batch[] {
    const seam = this.#seam;
    if (seam === 0) return batches;
    if (batches.some((batch) => batch.lastId > seam)) this.#seam = 0;
    return batches.map((batch) => batch.after(seam)).filter((batch) => batch.size > 0);
  }

  #receive(frame: Frame): void {
    const dialect = this.#o.dialect;
    // An event stream's peer has no way to send, and nothing it sent would count.
    if (this.#phase === "gone" || dialect === EVENT_STREAM) return;
    this.#o.metrics.messagesIn++;
    if (!this.#bucket.take()) return this.#throttle(frame, dialect);
    this.#throttled = false;
    const max = this.#o.limits.maxMessageBytes;
    if (frameSize(frame) > maxFrameBytes(max)) {
      const { address, log } = this.#o;
      log.limited(
        address,
        `${address} frame too big: ${frameSize(frame)} bytes; closing with 1009`,
      );
      return this.close(CloseCode.tooBig, `frame too big; the limit is ${max}`);
    }
    let command: ClientCommand;
    try {
      command = parseClientFrame(frame, dialect, max, this.identity.userName);
    } catch (error) {
      if (error instanceof ProtocolError) return this.#refuse(error);
      throw error;
    }
    if (isLiveCommand(command)) return this.#liveCommand(command);
    if (command.type === "hello") this.#hello(command.userName);
    else if (command.type === "refresh") this.#refresh(command.token);
    else if (command.type === "message") this.#message(command);
    else this.#change(command);
  }

  /** `typing`, `read` and `summary`: for a client in the room under its name (`live.ts`). */
  #liveCommand(command: LiveCommand): void {
    if (this.#live !== null) return this.#live.command(command);
    // Before the room is ready, or before `hello`: nobody to type as, nothing to summarise.
    if (command.type !== "typing" && this.#wanted === null) {
      this.#refuse(
        new ProtocolError("bad_name", 'say who you are first: {"type":"hello","userName":"…"}'),
      );
    }
  }

  /** Closes the connection in `msLeft` ms, unless a refresh moves the time (see #refreshed). */
  #expireIn(msLeft: number): void {
    clearTimeout(this.#expiryTimer);
    if (msLeft <= 0) return this.close(CloseCode.policy, "token expired");
    const wait = Math.min(msLeft, MAX_TIMER_MS);
    this.#expiryTimer = setTimeout(() => this.#guard(() => this.#expireIn(msLeft - wait)), wait);
  }

  /** A newer token: checked (never logged), then the connection lasts until it expires. */
  #refresh(token: string): void {
    const expiry = this.#expiry;
    if (expiry === null) {
      return this.#refuse(
        new ProtocolError("bad_frame", "this connection was not opened with a token to refresh"),
      );
    }
    expiry.renew(token).then(
      (fresh) => this.#guard(() => this.#refreshed(fresh)),
      (error) =>
        this.#guard(() => {
          if (!(error instanceof ProtocolError)) throw error;
          if (this.#phase !== "gone") this.#refuse(error);
        }),
    );
  }

  #refreshed(fresh: Expiry): void {
    if (this.#phase === "gone") return;
    this.#expiry = fresh;
    this.#expireIn(fresh.msLeft());
    const expiresAt = new Date(fresh.expiresAt).toISOString();
    this.#writer.refreshed({ type: "refreshed", expiresAt });
  }

  /** One error per episode of flooding: answering every frame of a flood would double it. */
  #throttle(frame: Frame, dialect: Dialect): void {
    if (this.#throttled) return;
    this.#throttled = true;
    this.#refuse(
      new ProtocolError(
        "rate_limited",
        `slow down: at most ${this.#o.limits.messagesPerSecond} messages per second; ` +
          "this one was not sent",
        this.#clientIdOf(frame, dialect),
      ),
    );
  }

  /** The clientId of a frame that is not otherwise read, for the error it gets. */
  #clientIdOf(frame: Frame, dialect: Dialect): string | undefined {
    const max = this.#o.limits.maxMessageBytes;
    if (frameSize(frame) > maxFrameBytes(max)) return undefined;
    try {
      const command = parseClientFrame(frame, dialect, max, this.identity.userName);
      return "clientId" in command ? command.clientId : undefined;
    } catch (error) {
      return error instanceof ProtocolError ? error.clientId : undefined;
    }
  }

  #hello(userName: string): void {
    if (this.#wanted === null) {
      this.#wanted = userName;
      if (this.#phase === "ready") this.#enter(userName);
    } else if (userName !== this.#wanted) {
      this.#refuse(
        new ProtocolError("bad_name", "the name is already set; reconnect to change it"),
      );
    }
  }

  #message(command: Extract<ClientCommand, { type: "message" }>): void {
    if (command.userName !== undefined) this.#setName(command.userName);
    const userName = this.#named(command.clientId);
    if (userName === null) return;
    const { body, clientId } = command;
    const author = authorOf(this.identity);
    this.#stored(
      clientId,
      "message",
      async () => (await this.#o.room.publish({ userName, body, clientId, author })).message.id,
    );
  }

  /** An edit, delete or reaction: stored and acked like a message, or refused with why. */
  #change(command: ChangeCommand): void {
    const userName = this.#named(command.clientId);
    if (userName === null) return;
    const { messageId, clientId } = command;
    const identity = this.identity;
    const who = { messageId, userName, author: authorOf(identity), admin: identity.admin };
    const change: ChangeRequest = command.type === "edit"
      ? { type: "edit", ...who, body: command.body }
      : command.type === "delete"
      ? { type: "delete", ...who }
      : { type: "reaction", ...who, emoji: command.emoji, on: command.on };
    if (clientId !== undefined) change.clientId = clientId;
    this.#stored(
      clientId,
      command.type === "react" ? "reaction" : command.type,
      async () => (await this.#o.room.change(change)).id,
    );
  }

  /** The name the client speaks under; null (and it is told) when it has said none yet. */
  #named(clientId: string | undefined): string | null {
    if (this.#wanted !== null) return this.#wanted;
    this.#refuse(
      new ProtocolError(
        "bad_name",
        'say who you are first: {"type":"hello","userName":"…"} or ?userName= in the URL',
        clientId,
      ),
    );
    return null;
  }

  /** Runs a store of the client's command: acks its id, or says why it was not stored. */
  #stored(clientId: string | undefined, what: string, store: () => Promise<number>): void {
    store().then((id) => {
      this.#writer.ack(clientId, id);
      if (this.#o.dialect === "parley.v1") this.#o.metrics.acks++;
    }, (error) => this.#refuse(refusal(error, what, clientId))).catch((error) => this.#fail(error));
  }

  #refuse(error: ProtocolError): void {
    const { address, room, log, metrics } = this.#o;
    metrics.errors++;
    // The message may quote what the client sent.
    log.limited(
      address,
      `${address} room=${clientText(room.name)} ${error.code}: ${clientText(error.message, 200)}`,
    );
    this.#writer.error(error);
  }

  /** Runs one step of the session: an exception in it ends this connection alone. */
  #guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#fail(error);
    }
  }

  /**
   * Logs an exception of this connection's code, once, and closes the connection with 1011. A
   * failing history store is no bug here: its message says what is wrong, without a stack.
   */
  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    const { address, room, log } = this.#o;
    const where = `${address} room=${clientText(room.name)}`;
    if (error instanceof HistoryError) {
      log.limited(
        address,
        `${where}: the history store failed, closing with 1011: ${error.message}`,
      );
      return this.close(CloseCode.serverError, "the history store failed; reconnect later");
    }
    log.limited(
      address,
      `${where}: internal error, closing with 1011: ${(error as Error)?.stack ?? error}`,
    );
    this.close(CloseCode.serverError, "internal error; reconnect");
  }

  /** Leaves the room, once: the subscription ends, the name is no longer present here. */
  #leave(): void {
    if (this.#phase === "gone") return;
    this.#phase = "gone";
    this.#held = null;
    clearTimeout(this.#expiryTimer);
    this.#o.lease.releaseAddress();
    try {
      this.#live?.close();
      this.#live = null;
      this.#subscription?.close();
      if (this.#userName !== null) this.#o.room.leave(this.#userName);
      this.#userName = null;
    } finally {
      this.#o.room.release();
    }
  }

  #closed(peerCode: number, reason: string): void {
    // Deno reports an idle timeout's close twice (1001, then 1005): the first one counts.
    if (this.#closeHandled) return;
    this.#closeHandled = true;
    const code = this.#closeCode ?? peerCode;
    this.#guard(() => this.#leave());
    this.#o.metrics.closed(code, this.#o.dialect, this.#transport.kind);
    this.#o.lease.release();
    this.#o.log.info(
      `close ${this.#o.address} room=${clientText(this.#o.room.name)} code=${code}${
        reason ? ` ${clientText(reason, 123)}` : ""
      }`,
    );
    this.#o.onClose();
  }
}
