/**
 * The wire protocol of `GET /chat`: the stored message, the events the server sends, and the
 * commands a client may send. See `../shared/design.md`, "WebSocket protocol".
 */

/** A chat message as stored and as delivered: `id` increases by one per room. */
export interface ChatMessage {
  id: number;
  room: string;
  userName: string;
  body: string;
  /** The server's clock when the message was stored, ISO 8601. */
  timestamp: string;
}
