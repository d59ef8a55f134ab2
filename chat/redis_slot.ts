/**
 * Which of a Redis Cluster's 16384 hash slots a key belongs to (CRC16/XMODEM of its hash tag),
 * as Redis computes it: parley groups a cluster's keys by slot with it, because one command or
 * script may only touch keys of one slot.
 *
 * @module
 */

/** How many hash slots a Redis Cluster has. */
export const SLOTS = 16384;

const TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

const encoder = new TextEncoder();

/** The slot of `key`: of its hash tag (the text between its first `{` and the next `}`) if any. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  const close = open === -1 ? -1 : key.indexOf("}", open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(encoder.encode(hashed)) % SLOTS;
}
