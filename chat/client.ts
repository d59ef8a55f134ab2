/**
 * One WebSocket connection: its read loop (validate, rate limit, publish), its write path
 * (history, then the room's batches, with backpressure) and its close codes.
 */

import { setImmediate } from "node:timers";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import {
  type ClientCommand,
  type Dialect,
  encodeEvent,
  encodeLegacy,
  maxFrameBytes,
  messageEvent,
  parseClientFrame,
  PROTOCOL_V1,
  ProtocolError,
  type ServerEvent,
} from "./message.ts";
import type { Metrics } from "./metrics.ts";
import { TokenBucket } from "./admission.ts";
import { type Batch, type Room, SubscriberOverflowError, type Subscription } from "./room.ts";

/** WebSocket close codes parley uses, named for why. */
export const CloseCode = {
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  serverError: 1011,
  tryAgainLater: 1013,
} as const;

/** Everything a connection needs, chosen at upgrade time. */
export interface ClientOptions {
  socket: WebSocket;
  dialect: Dialect;
  room: Room;
  /** From the query; a `parley.v1` client without one must send `hello` before anything else. */
  userName: string | null;
  /** Resume after this message id. */
  since: number | null;
  limits: Config["limits"];
  /** Messages a newcomer gets before live ones. */
  onJoin: number;
  /** The peer, for the log. */
  address: string;
  log: Logger;
  metrics: Metrics;
  /** Called once, when the socket has closed. */
  onClose: () => void;
}

/** Messages sent in one frame while replaying history, so no frame grows without bound. */
const REPLAY_CHUNK = 500;

/** A connected client of a room. */
export class Client {
  readonly #o: ClientOptions;
  readonly #socket: WebSocket;
  readonly #bucket: TokenBucket;
  /** The name the client is present under, once it has joined. */
  #userName: string | null = null;
  /** The name it asked for, from the query or `hello`: it joins under it once the room is ready. */
  #wanted: string | null;
  #started = false;
  #subscription: Subscription | null = null;
  /** Message ids up to this one were sent as history; live copies of them are skipped. */
  #seam = 0;
  /** Bytes of history replay the send buffer may hold on top of `limits.sendBufferBytes`. */
  #replayAllowance = 0;
  #throttled = false;
  /** Acks waiting for the end of this turn: see {@link #ack}. */
  #acks: string[] = [];
  /** Set once the client is leaving: nothing it sends counts any more. */
  #left = false;
  /** The code the server closed with: the peer's echo of it may carry none. */
  #closeCode: number | null = null;

  constructor(options: ClientOptions) {
    this.#o = options;
    this.#socket = options.socket;
    this.#bucket = new TokenBucket(options.limits.messagesPerSecond, options.limits.burst);
    this.#wanted = options.userName;
    this.#socket.onopen = () => this.#opened();
    this.#socket.onmessage = (event) => this.#receive(event.data);
    this.#socket.onerror = () => {};
    this.#socket.onclose = (event) => this.#closed(event.code, event.reason);
  }

  /** Closes the connection with a code from {@link CloseCode} and a reason for the user. */
  close(code: number, reason: string): void {
    // A peer that stopped reading may never answer the close: it leaves the room now.
    this.#leaveRoom();
    if (this.#socket.readyState > WebSocket.OPEN) return;
    this.#closeCode = code;
    try {
      this.#socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  #opened(): void {
    this.#o.log.info(
      `open ${this.#o.address} room=${this.#o.room.name} dialect=${this.#o.dialect}`,
    );
    const ready = this.#o.room.ready;
    if (ready === null) this.#start();
    else ready.then(() => this.#start());
  }

  #start(): void {
    if (this.#left) return;
    this.#started = true;
    if (this.#o.dialect === "legacy") {
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
    this.#subscribe();
  }

  #setName(userName: string): void {
    this.#wanted = userName;
    // Before the room is ready the name waits for #start.
    if (!this.#started || this.#userName === userName) return;
    if (this.#userName !== null) this.#o.room.leave(this.#userName);
    this.#userName = userName;
    this.#o.room.join(userName);
  }

  /**
   * Subscribes, then reads what the client missed. Both happen in one turn, so a message stored
   * meanwhile is either in the history read or in the subscription; the seam drops the overlap.
   */
  #subscribe(): void {
    const room = this.#o.room;
    this.#subscription = room.subscribe();
    const lastId = room.lastId;
    const { messages, recovered } = room.missed(this.#o.since, lastId, this.#o.onJoin);
    this.#seam = lastId;
    if (this.#o.dialect === "legacy") {
      this.#sendReplay(messages.map(encodeLegacy));
    } else {
      const welcome: ServerEvent = {
        type: "welcome",
        room: room.name,
        userName: this.#userName ?? "",
        users: room.users,
        userCount: room.userCount,
        lastId,
        limits: {
          maxMessageBytes: this.#o.limits.maxMessageBytes,
          messagesPerSecond: this.#o.limits.messagesPerSecond,
          burst: this.#o.limits.burst,
        },
      };
      if (!recovered) welcome.recovered = false;
      this.#send(encodeEvent(welcome));
      const events: string[] = [];
      for (let i = 0; i < messages.length; i += REPLAY_CHUNK) {
        events.push(
          messages.slice(i, i + REPLAY_CHUNK).map((m) => encodeEvent(messageEvent(m))).join("\n"),
        );
      }
      this.#sendReplay(events);
    }
    this.#pump(this.#subscription);
  }

  #sendReplay(frames: string[]): void {
    for (const frame of frames) {
      this.#replayAllowance += frame.length;
      this.#send(frame);
    }
  }

  async #pump(subscription: Subscription): Promise<void> {
    const legacy = this.#o.dialect === "legacy";
    try {
      for await (const batches of subscription) {
        if (this.#socket.readyState !== WebSocket.OPEN) break;
        const buffered = this.#socket.bufferedAmount;
        const limit = this.#o.limits.sendBufferBytes;
        if (buffered > limit + this.#replayAllowance) {
          this.#o.metrics.drops++;
          this.close(CloseCode.tryAgainLater, "too slow: the send buffer is full; reconnect");
          break;
        }
        // Once the replay has drained, the plain limit applies.
        if (buffered <= limit) this.#replayAllowance = 0;
        if (!legacy) this.#sendV1(batches);
        else for (const batch of batches) this.#sendLegacy(batch);
      }
    } catch (error) {
      if (!(error instanceof SubscriberOverflowError)) throw error;
      this.#o.metrics.drops++;
      this.close(CloseCode.tryAgainLater, "too slow: fell behind the room; reconnect");
    }
  }

  /** Sends the batches as one frame. */
  #sendV1(batches: readonly Batch[]): void {
    if (this.#seam === 0) {
      for (const batch of batches) this.#o.metrics.messagesOut += batch.messageCount;
      const frame = batches.length === 1
        ? batches[0].frame()
        : batches.map((batch) => batch.frame()).join("\n");
      this.#send(this.#withAcks(frame));
      return;
    }
    const seam = this.#seam;
    if (batches.some((batch) => batch.lastId > seam)) this.#seam = 0;
    const events = batches.flatMap((batch) => batch.events).filter((e) =>
      e.type !== "message" || e.id > seam
    );
    if (events.length === 0) return;
    this.#o.metrics.messagesOut += events.filter((e) => e.type === "message").length;
    this.#send(this.#withAcks(events.map(encodeEvent).join("\n")));
  }

  /**
   * Queues an ack. Acks of one commit go out in one frame: one per ack made a sender's next
   * messages trickle in one at a time, and each then went out to the room in a frame of its own.
   */
  #ack(clientId: string | undefined, id: number): void {
    if (this.#acks.push(encodeEvent({ type: "ack", clientId, id })) === 1) {
      setImmediate(() => this.#send(this.#withAcks("")));
    }
  }

  /** A frame with the queued acks added, which leaves none queued. */
  #withAcks(frame: string): string {
    if (this.#acks.length === 0) return frame;
    const acks = this.#acks.join("\n");
    this.#acks = [];
    return frame === "" ? acks : `${frame}\n${acks}`;
  }

  /** Legacy clients parse one message object per frame. */
  #sendLegacy(batch: Batch): void {
    const frames = batch.legacyFrames();
    // Past the seam every frame goes out; only the first batches after joining need the ids.
    const ids = this.#seam === 0 ? null : batch.messageIds;
    const seam = this.#seam;
    if (seam !== 0 && batch.lastId > seam) this.#seam = 0;
    for (let i = 0; i < frames.length; i++) {
      if (ids !== null && ids[i] <= seam) continue;
      this.#o.metrics.messagesOut++;
      this.#send(frames[i]);
    }
  }

  #send(text: string): void {
    if (text === "") return;
    try {
      this.#socket.send(text);
    } catch {
      // The socket closed under us; its close event does the rest.
    }
  }

  #error(error: ProtocolError): void {
    this.#o.metrics.errors++;
    this.#o.log.error(
      `${this.#o.address} room=${this.#o.room.name} ${error.code}: ${error.message}`,
    );
    if (this.#o.dialect === PROTOCOL_V1) {
      this.#send(
        encodeEvent({
          type: "error",
          code: error.code,
          message: error.message,
          clientId: error.clientId,
        }),
      );
    }
  }

  #receive(data: unknown): void {
    if (this.#left) return;
    this.#o.metrics.messagesIn++;
    if (!this.#bucket.take()) {
      // One error per episode: answering every frame of a flood would double it.
      if (!this.#throttled) {
        this.#throttled = true;
        this.#error(
          new ProtocolError(
            "rate_limited",
            `slow down: at most ${this.#o.limits.messagesPerSecond} messages per second; ` +
              "this one was not sent",
            this.#clientIdOf(data),
          ),
        );
      }
      return;
    }
    this.#throttled = false;
    if (frameSize(data) > maxFrameBytes(this.#o.limits.maxMessageBytes)) {
      this.#o.log.error(`${this.#o.address} frame too big`);
      this.close(CloseCode.tooBig, `frame too big; the limit is ${this.#o.limits.maxMessageBytes}`);
      return;
    }
    let command: ClientCommand;
    try {
      command = parseClientFrame(data, this.#o.dialect, this.#o.limits.maxMessageBytes);
    } catch (error) {
      if (error instanceof ProtocolError) return this.#error(error);
      throw error;
    }
    if (command.type === "hello") {
      if (this.#wanted === null) {
        this.#wanted = command.userName;
        if (this.#started) this.#enter(command.userName);
        return;
      }
      if (command.userName !== this.#wanted) {
        return this.#error(
          new ProtocolError("bad_name", "the name is already set; reconnect to change it"),
        );
      }
      return;
    }
    if (command.userName !== undefined) this.#setName(command.userName);
    if (this.#wanted === null) {
      return this.#error(
        new ProtocolError(
          "bad_name",
          'say who you are first: {"type":"hello","userName":"…"} or ?userName= in the URL',
          command.clientId,
        ),
      );
    }
    this.#publish(this.#wanted, command.body, command.clientId);
  }

  /** The clientId of a frame that is not otherwise read, for the error it gets. */
  #clientIdOf(data: unknown): string | undefined {
    const max = this.#o.limits.maxMessageBytes;
    if (frameSize(data) > maxFrameBytes(max)) return undefined;
    try {
      const command = parseClientFrame(data, this.#o.dialect, max);
      return command.type === "message" ? command.clientId : undefined;
    } catch (error) {
      return error instanceof ProtocolError ? error.clientId : undefined;
    }
  }

  async #publish(userName: string, body: string, clientId: string | undefined): Promise<void> {
    try {
      const { message } = await this.#o.room.publish({ userName, body, clientId });
      if (this.#o.dialect === PROTOCOL_V1) this.#ack(clientId, message.id);
    } catch (error) {
      this.#error(
        new ProtocolError(
          "unavailable",
          `the message was not stored (${(error as Error).message}); send it again` +
            (clientId ? " with the same clientId" : ""),
          clientId,
        ),
      );
    }
  }

  #leaveRoom(): void {
    this.#left = true;
    this.#subscription?.close();
    if (this.#userName !== null) this.#o.room.leave(this.#userName);
    this.#userName = null;
  }

  #closed(peerCode: number, reason: string): void {
    const code = this.#closeCode ?? peerCode;
    this.#leaveRoom();
    this.#o.metrics.closed(code);
    this.#o.log.info(
      `close ${this.#o.address} room=${this.#o.room.name} code=${code}${
        reason ? ` ${reason}` : ""
      }`,
    );
    this.#o.onClose();
  }
}

function frameSize(data: unknown): number {
  if (typeof data === "string") return data.length;
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}
