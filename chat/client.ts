/**
 * One connection's session: it joins its room under the name from the query or `hello`, turns
 * what the client sends into commands (validated, rate limited, published), sends the room's
 * history and events through its dialect's {@link Writer} with backpressure, and leaves.
 *
 * A session sees neither sockets (a {@link Transport} carries its frames) nor storage (its
 * {@link Room} has the history). An exception in a session's own code ends that connection, with
 * 1011, and nothing else.
 */

import type { Config } from "./config.ts";
import { ClientIdReusedError } from "./history.ts";
import type { Logger } from "./log.ts";
import {
  type ClientCommand,
  type Dialect,
  maxFrameBytes,
  parseClientFrame,
  ProtocolError,
  type WelcomeEvent,
} from "./message.ts";
import type { Metrics } from "./metrics.ts";
import { TokenBucket } from "./admission.ts";
import {
  type Batch,
  type Room,
  RoomFailedError,
  SubscriberOverflowError,
  type Subscription,
} from "./room.ts";
import { CloseCode, type Frame, frameSize, type Transport } from "./transport.ts";
import { type Writer, writerFor } from "./writers.ts";

/** Everything a connection needs, chosen at upgrade time. */
export interface ClientOptions {
  transport: Transport;
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
  /** Called exactly once, when the connection has closed. */
  onClose: () => void;
}

/**
 * Where a session is: waiting for the transport to open and the room to be ready, in the room
 * (joined once it has a name), or gone (it left the room; nothing it sends counts any more).
 */
type Phase = "opening" | "ready" | "gone";

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
  /** Message ids up to this one were sent as history; live copies of them are skipped. */
  #seam = 0;
  /** Bytes of history replay the send buffer may hold on top of `limits.sendBufferBytes`. */
  #replayAllowance = 0;
  #throttled = false;
  /** The code the server closed with: the peer's echo of it may carry none. */
  #closeCode: number | null = null;
  #closeHandled = false;
  #failed = false;

  constructor(options: ClientOptions) {
    this.#o = options;
    this.#transport = options.transport;
    this.#writer = writerFor(options.dialect, options.transport);
    this.#bucket = new TokenBucket(options.limits.messagesPerSecond, options.limits.burst);
    this.#wanted = options.userName;
    options.room.hold();
    options.transport.listen({
      opened: () => this.#guard(() => this.#opened()),
      received: (frame) => this.#guard(() => this.#receive(frame)),
      closed: (code, reason) => this.#closed(code, reason),
    });
  }

  /** Closes the connection with a code from {@link CloseCode} and a reason for the user. */
  close(code: number, reason: string): void {
    // A peer that stopped reading may never answer the close: it leaves the room now.
    this.#guard(() => this.#leave());
    if (this.#transport.state === "closed") return;
    this.#closeCode = code;
    this.#transport.close(code, reason);
  }

  #opened(): void {
    this.#o.log.info(
      `open ${this.#o.address} room=${this.#o.room.name} dialect=${this.#o.dialect}`,
    );
    const ready = this.#o.room.ready;
    if (ready === null) return this.#start();
    ready.then(() => this.#guard(() => this.#start()), (error) => this.#fail(error));
  }

  /** The room is ready: a client with a name joins it. */
  #start(): void {
    if (this.#phase === "gone") return;
    this.#phase = "ready";
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
    if (this.#phase !== "ready" || this.#userName === userName) return;
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
    const subscription = this.#subscription = room.subscribe();
    const lastId = room.lastId;
    const { messages, recovered } = room.missed(this.#o.since, lastId, this.#o.onJoin);
    this.#seam = lastId;
    this.#writer.welcome(this.#welcome(lastId, recovered));
    this.#replayAllowance += this.#writer.replay(messages);
    this.#pump(subscription);
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
    return welcome;
  }

  async #pump(subscription: Subscription): Promise<void> {
    try {
      for await (const batches of subscription) {
        if (this.#transport.state !== "open") break;
        if (this.#overflowing()) {
          this.#o.metrics.drops++;
          this.close(CloseCode.tryAgainLater, "too slow: the send buffer is full; reconnect");
          break;
        }
        this.#deliver(batches);
      }
    } catch (error) {
      if (error instanceof SubscriberOverflowError) {
        this.#o.metrics.drops++;
        this.close(CloseCode.tryAgainLater, "too slow: fell behind the room; reconnect");
      } else if (error instanceof RoomFailedError) {
        // Its room reported the cause.
        this.close(CloseCode.serverError, "the room failed; reconnect");
      } else {
        this.#fail(error);
      }
    }
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

  /** The batches without the messages already sent as history; only the first ones have any. */
  #pastSeam(batches: readonly Batch[]): readonly Batch[] {
    const seam = this.#seam;
    if (seam === 0) return batches;
    if (batches.some((batch) => batch.lastId > seam)) this.#seam = 0;
    return batches.map((batch) => batch.after(seam)).filter((batch) => batch.size > 0);
  }

  #receive(frame: Frame): void {
    if (this.#phase === "gone") return;
    this.#o.metrics.messagesIn++;
    if (!this.#bucket.take()) return this.#throttle(frame);
    this.#throttled = false;
    const max = this.#o.limits.maxMessageBytes;
    if (frameSize(frame) > maxFrameBytes(max)) {
      this.#o.log.error(`${this.#o.address} frame too big`);
      return this.close(CloseCode.tooBig, `frame too big; the limit is ${max}`);
    }
    let command: ClientCommand;
    try {
      command = parseClientFrame(frame, this.#o.dialect, max);
    } catch (error) {
      if (error instanceof ProtocolError) return this.#refuse(error);
      throw error;
    }
    if (command.type === "hello") this.#hello(command.userName);
    else this.#message(command);
  }

  /** One error per episode of flooding: answering every frame of a flood would double it. */
  #throttle(frame: Frame): void {
    if (this.#throttled) return;
    this.#throttled = true;
    this.#refuse(
      new ProtocolError(
        "rate_limited",
        `slow down: at most ${this.#o.limits.messagesPerSecond} messages per second; ` +
          "this one was not sent",
        this.#clientIdOf(frame),
      ),
    );
  }

  /** The clientId of a frame that is not otherwise read, for the error it gets. */
  #clientIdOf(frame: Frame): string | undefined {
    const max = this.#o.limits.maxMessageBytes;
    if (frameSize(frame) > maxFrameBytes(max)) return undefined;
    try {
      const command = parseClientFrame(frame, this.#o.dialect, max);
      return command.type === "message" ? command.clientId : undefined;
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
    if (this.#wanted === null) {
      return this.#refuse(
        new ProtocolError(
          "bad_name",
          'say who you are first: {"type":"hello","userName":"…"} or ?userName= in the URL',
          command.clientId,
        ),
      );
    }
    this.#publish(this.#wanted, command.body, command.clientId).catch((error) => this.#fail(error));
  }

  async #publish(userName: string, body: string, clientId: string | undefined): Promise<void> {
    let id: number;
    try {
      id = (await this.#o.room.publish({ userName, body, clientId })).message.id;
    } catch (error) {
      if (error instanceof ClientIdReusedError) {
        return this.#refuse(new ProtocolError("bad_frame", error.message, clientId));
      }
      return this.#refuse(
        new ProtocolError(
          "unavailable",
          `the message was not stored (${(error as Error).message}); send it again` +
            (clientId ? " with the same clientId" : ""),
          clientId,
        ),
      );
    }
    this.#writer.ack(clientId, id);
  }

  #refuse(error: ProtocolError): void {
    this.#o.metrics.errors++;
    this.#o.log.error(
      `${this.#o.address} room=${this.#o.room.name} ${error.code}: ${error.message}`,
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

  /** Logs an exception of this connection's code, once, and closes the connection with 1011. */
  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#o.log.error(
      `${this.#o.address} room=${this.#o.room.name}: internal error, closing with 1011: ${
        (error as Error)?.stack ?? error
      }`,
    );
    this.close(CloseCode.serverError, "internal error; reconnect");
  }

  /** Leaves the room, once: the subscription ends, the name is no longer present here. */
  #leave(): void {
    if (this.#phase === "gone") return;
    this.#phase = "gone";
    try {
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
    this.#o.metrics.closed(code);
    this.#o.log.info(
      `close ${this.#o.address} room=${this.#o.room.name} code=${code}${
        reason ? ` ${JSON.stringify(reason)}` : ""
      }`,
    );
    this.#o.onClose();
  }
}
