/**
 * The registry of message type numbers carried in the frame header's `type` field
 * (docs/cluster-protocol.md §2). One file, so a number can never be assigned twice: the
 * `msg-types` test asserts uniqueness. Append only; a number, once shipped, is never reused.
 *
 * Ranges (leave gaps so each owner can grow in place):
 *
 * | range           | owner                                      |
 * |-----------------|--------------------------------------------|
 * | 0x0001–0x000f   | messenger session (hello, auth, keepalive) |
 * | 0x0010–0x00ff   | auth service on the monitor (tickets)      |
 * | 0x0100–0x01ff   | monitor (map subscribe, boot, failure, cli)|
 * | 0x0200–0x02ff   | OSD client ops (`OP_*`)                    |
 * | 0x0300–0x03ff   | OSD secondary ops (`OP_SEC_*`), peering    |
 * | 0x0400–0x04ff   | heartbeats                                 |
 * | 0xf000–0xffff   | tests and benchmarks                       |
 */

/** Wire message types. Names keep the `MSG_` prefix so `grep` finds docs and code alike. */
export const MsgType = {
  // --- Messenger session phase (handled inside Session, never dispatched). ---
  /** Client → server: protocol version, entity name, auth method, client nonce, ticket. */
  MSG_HELLO: 0x0001,
  /** Server → client: server nonce (and, for method none, acceptance). */
  MSG_HELLO_REPLY: 0x0002,
  /** Client → server: HMAC proof over both nonces. */
  MSG_AUTH_PROOF: 0x0003,
  /** Server → client: server's HMAC proof; the session is now authenticated and signed. */
  MSG_AUTH_DONE: 0x0004,
  /** Either way: handshake refused; the sender closes the connection after it. */
  MSG_AUTH_REJECT: 0x0005,
  /** Keepalive probe; answered by `MSG_PONG` with the same tid. */
  MSG_PING: 0x0006,
  MSG_PONG: 0x0007,

  // --- Auth service (monitor). ---
  /** Request a ticket for a service (`osd`); reply carries the sealed ticket and session key. */
  MSG_AUTH_GET_TICKET: 0x0010,

  /** OSD → monitor: the OSD service secret, sealed with the OSD's own key (Ceph's rotating keys). */
  MSG_AUTH_GET_SERVICE_SECRET: 0x0011,

  // --- Monitor (payloads: mon/mon-protocol.ts; docs/cluster-protocol.md §7). ---
  /** Request: subscribe to map updates after `haveEpoch`; pushes follow as MSG_MON_MAP sends. */
  MSG_MON_SUBSCRIBE: 0x0100,
  /** Send (monitor → subscriber): incrementals in order, or a full map. */
  MSG_MON_MAP: 0x0101,
  /** Request: an OSD process started (uuid, addr, location); reply carries its id and epoch. */
  MSG_MON_OSD_BOOT: 0x0110,
  /** Request: periodic OSD liveness; reply says ok, boot-required or unknown-osd. */
  MSG_MON_OSD_BEACON: 0x0111,
  /** Send: a peer OSD or client reports (or withdraws a report) that an OSD is unreachable. */
  MSG_MON_FAILURE: 0x0112,
  /** Send: an OSD's states of the PGs it is primary for. */
  MSG_MON_PG_STATES: 0x0113,
  /** Request (OSD → monitor): record a PG-history change; the reply follows the commit. */
  MSG_MON_PG_HISTORY: 0x0114,
  /** Request (OSD → monitor): set or clear a PG's pg_temp; the reply follows the commit. */
  MSG_MON_PG_TEMP: 0x0115,
  /** Request: an admin command (JSON, Ceph's mon_command); reply JSON. */
  MSG_MON_COMMAND: 0x0120,

  // --- OSD client ops (placeholder OSD today; the OSD issue extends the range). ---
  /** Request: stat an object (pool, name); caps checked for read. */
  MSG_OSD_OP_STAT: 0x0200,
  /** Request: a client op vector on one object, to the PG primary (osd/osd-protocol.ts). */
  MSG_OSD_OP: 0x0201,
  /** Request (admin/CLI → primary): scrub a PG now, optionally repairing (osd/osd-peer-protocol.ts). */
  MSG_OSD_PG_SCRUB: 0x0202,

  // --- OSD secondary ops and peering (osd/osd-peer-protocol.ts). ---
  /** Request: primary → replica, one replicated transaction + PG-log entry; reply after commit. */
  MSG_OSD_REPOP: 0x0300,
  /** Request: primary → peer, the peer's PG info and log (peering). */
  MSG_OSD_PG_QUERY: 0x0301,
  /** Request: primary → peer, a whole object (data, attrs, version) to install (recovery push). */
  MSG_OSD_PG_PUSH: 0x0302,
  /** Request: primary → peer, send me a whole object (recovery pull). */
  MSG_OSD_PG_PULL: 0x0303,
  /** Request: primary → peer, list a PG's objects with versions (+ checksums for scrub). */
  MSG_OSD_PG_SCAN: 0x0304,
  /** Request: primary → peer, adopt this PG info/log (activation after peering). */
  MSG_OSD_PG_ACTIVATE: 0x0305,
  /** Request: read an object from this OSD's local store regardless of role (scrub, tests). */
  MSG_OSD_LOCAL_READ: 0x0306,

  // --- Heartbeats. ---
  /** Request: OSD → peer OSD liveness probe over a ticket session. */
  MSG_OSD_PING: 0x0400,

  // --- Tests and benchmarks. ---
  MSG_TEST_ECHO: 0xf000,
  MSG_TEST_SINK: 0xf001,
} as const;

/** A known message type number. Peers may still send unknown numbers (newer versions). */
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

const NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(MsgType).map(([name, n]) => [n as number, name]),
);

/** Name of a type number for logs (`vu_request_to_string` equivalent), e.g. "MSG_HELLO". */
export function msgTypeName(type: number): string {
  return NAMES.get(type) ?? `MSG_UNKNOWN_0x${type.toString(16).padStart(4, '0')}`;
}

/** True for types consumed by the session layer itself (never dispatched to handlers). */
export function isSessionMsgType(type: number): boolean {
  return type >= 0x0001 && type <= 0x000f;
}
