/**
 * How a connection's outgoing events become frames, one {@link Writer} per dialect:
 *
 * - `parley.v1`: events as JSON joined by `\n`, as few frames as possible: a room's batches in one
 *   frame (their shared encoding, when nothing was filtered out), history in chunks, and the acks
 *   of one turn together.
 * - legacy: the Go server's message object, one per frame, and nothing else (no change events:
 *   a replay's messages are in their current state).
 * - event stream: Server-Sent Events for a follower that only reads; see {@link EventStreamWriter}.
 */

import { setImmediate } from "node:timers";
import {
  type Dialect,
  encodeEvent,
  encodeLegacy,
  type LogEvent,
  type ProtocolError,
  type ServerEvent,
  type WelcomeEvent,
} from "./message.ts";
import type { Batch } from "./room.ts";
import { serverSentEvent, type Transport } from "./transport.ts";

/** Encodes and frames what a connection sends, for its dialect. */
export interface Writer {
  /** The first event of a client that joined. */
  welcome(event: WelcomeEvent): void;
  /** History before live events; returns the bytes it queued, which the send buffer may hold. */
  replay(events: readonly LogEvent[]): number;
  /** A room's batches, oldest first. */
  deliver(batches: readonly Batch[]): void;
  /** Says a message was stored; acks of one turn go out in one frame. */
  ack(clientId: string | undefined, id: number): void;
  /** Says what was wrong with what the client sent. */
  error(error: ProtocolError): void;
  /** Says a `refresh` was accepted. */
  refreshed(event: Extract<ServerEvent, { type: "refreshed" }>): void;
  /**
   * An event without an id, encoded once by its sender (`typing`, `summary`): only `parley.v1`
   * clients get one; a legacy client knows no such event, an event stream carries the log.
   */
  live(frame: string): void;
}

/** The format of a Server-Sent Events response, beside the WebSocket dialects. */
export const EVENT_STREAM = "event-stream";

/** How a connection's events are written: in a WebSocket dialect, or as an event stream. */
export type Format = Dialect | typeof EVENT_STREAM;

/** The writer of a format, sending on `transport`. */
export function writerFor(format: Format, transport: Transport): Writer {
  if (format === EVENT_STREAM) return new EventStreamWriter(transport);
  return format === "legacy" ? new LegacyWriter(transport) : new V1Writer(transport);
}

/**
 * Messages sent in one frame while replaying history, so no frame grows without bound; a
 * session replays this many at a time as its send buffer drains.
 */
export const REPLAY_CHUNK = 500;

class V1Writer implements Writer {
  /** Acks waiting for the end of this turn: see {@link ack}. */
  #acks: string[] = [];

  constructor(private readonly transport: Transport) {}

  welcome(event: WelcomeEvent): void {
    this.#send(encodeEvent(event));
  }

  replay(events: readonly LogEvent[]): number {
    let bytes = 0;
    for (let i = 0; i < events.length; i += REPLAY_CHUNK) {
      const chunk = events.slice(i, i + REPLAY_CHUNK);
      const frame = chunk.map(encodeEvent).join("\n");
      bytes += frame.length;
      this.#send(frame);
    }
    return bytes;
  }

  deliver(batches: readonly Batch[]): void {
    const frame = batches.length === 1
      ? batches[0].frame()
      : batches.map((batch) => batch.frame()).join("\n");
    this.#send(this.#withAcks(frame));
  }

  /**
   * Queues an ack. Acks of one commit go out in one frame: one per ack made a sender's next
   * messages trickle in one at a time, and each then went out to the room in a frame of its own.
   */
  ack(clientId: string | undefined, id: number): void {
    if (this.#acks.push(encodeEvent({ type: "ack", clientId, id })) === 1) {
      setImmediate(() => this.#send(this.#withAcks("")));
    }
  }

  error(error: ProtocolError): void {
    const { code, message, clientId } = error;
    this.#send(encodeEvent({ type: "error", code, message, clientId }));
  }

  refreshed(event: Extract<ServerEvent, { type: "refreshed" }>): void {
    this.#send(encodeEvent(event));
  }

  live(frame: string): void {
    this.#send(frame);
  }

  /** A frame with the queued acks added, which leaves none queued. */
  #withAcks(frame: string): string {
    if (this.#acks.length === 0) return frame;
    const acks = this.#acks.join("\n");
    this.#acks = [];
    return frame === "" ? acks : `${frame}\n${acks}`;
  }

  #send(text: string): void {
    if (text !== "") this.transport.send(text);
  }
}

/** The Go server's clients parse one message object per frame and know no other event. */
class LegacyWriter implements Writer {
  constructor(private readonly transport: Transport) {}

  welcome(): void {}

  replay(events: readonly LogEvent[]): number {
    let bytes = 0;
    for (const event of events) {
      if (event.type !== "message") continue;
      const frame = encodeLegacy(event);
      bytes += frame.length;
      this.transport.send(frame);
    }
    return bytes;
  }

  deliver(batches: readonly Batch[]): void {
    for (const batch of batches) {
      for (const frame of batch.legacyFrames()) this.transport.send(frame);
    }
  }

  ack(): void {}

  error(): void {}

  refreshed(): void {}

  live(): void {}
}

/**
 * Server-Sent Events for a follower that only reads: every event with an id (the room's log:
 * messages, edits, deletes, reactions) as `id:`, `event:` (its type) and `data:` (its `parley.v1` JSON); presence,
 * which has no id and could not be resumed, is left out. A resume that cannot be whole starts
 * with `event: recovered`; there is no welcome and no ack.
 */
class EventStreamWriter implements Writer {
  constructor(private readonly transport: Transport) {}

  welcome(event: WelcomeEvent): void {
    if (event.recovered === false) {
      this.transport.send(serverSentEvent("recovered", '{"recovered":false}'));
    }
  }

  replay(events: readonly LogEvent[]): number {
    const text = events.map((e) => serverSentEvent(e.type, encodeEvent(e), e.id)).join("");
    if (text !== "") this.transport.send(text);
    return text.length;
  }

  deliver(batches: readonly Batch[]): void {
    const text = batches.length === 1
      ? eventStreamOf(batches[0])
      : batches.map(eventStreamOf).join("");
    if (text !== "") this.transport.send(text);
  }

  ack(): void {}

  /** A stream cannot send a refresh, so it never gets an answer to one. */
  refreshed(): void {}

  /** Typing and summaries have no id to resume from: a stream leaves them out, as presence. */
  live(): void {}

  error(error: ProtocolError): void {
    const { code, message } = error;
    this.transport.send(serverSentEvent("error", encodeEvent({ type: "error", code, message })));
  }
}

/** The event stream of each batch, made once for all its followers. */
const eventStreams = new WeakMap<Batch, string>();

/** A batch's events that have an id, as Server-Sent Events. */
function eventStreamOf(batch: Batch): string {
  let text = eventStreams.get(batch);
  if (text === undefined) {
    // The parley.v1 frame is the events' JSON, one a line (JSON has no raw newline): reuse it.
    const lines = batch.frame().split("\n");
    text = batch.events.map((event, i) => {
      const id = (event as { id?: unknown }).id;
      return typeof id === "number" ? serverSentEvent(event.type, lines[i], id) : "";
    }).join("");
    eventStreams.set(batch, text);
  }
  return text;
}
