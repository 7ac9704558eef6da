/**
 * Per-frame integrity on authenticated sessions (docs/cluster-protocol.md §5). Every frame
 * carries, in header bytes 40..55,
 *
 *   sig = GMAC(dirKey, iv = u64le seq ‖ 0u32, aad = header[0..40) ‖ payload ‖ data)
 *
 * i.e. the 128-bit tag of AES-256-GCM with no plaintext (native/src/gmac.cc).
 * - `dirKey` is the handshake's per-direction key (c2s or s2c), so a frame cannot be reflected
 *   back at its sender. Keys are fresh per session (both sides' nonces go into them).
 * - `seq` counts frames per direction from 0 and is implicit (both ends count), so a frame
 *   cannot be replayed, dropped or reordered inside a session without detection, and GCM's
 *   one rule — never reuse an IV under a key — holds by construction.
 * - A forgery succeeds with probability ≈ 2^-128 × (frame length in blocks) per attempt, and
 *   one failure closes the session.
 *
 * Why the bytes and not only their CRCs (the brief suggested CRCs, as Ceph's msgr v1 did):
 * crc32c is linear, so an attacker who can rewrite a payload can also keep its CRC; signing the
 * CRCs would not protect the data.
 *
 * Why GMAC (session 2; HMAC-SHA256 before): the MAC runs over every byte on every hop of every
 * write. Measured here: GHASH ≈0.11 ms per MiB against SHA-256's ≈0.66 ms (SHA-NI), ≈0.5 µs
 * fixed per frame with the prepared context (node:crypto's `createHmac` costs ≈3.3 µs before
 * hashing anything). Tested against node:crypto's aes-256-gcm in native/test/gmac.test.ts.
 */
import { gmacKey, gmacSign, gmacVerify } from '../../../native/index.js';
import type { GmacKey } from '../../../native/index.js';
import { FRAME_SIGNATURE_BYTES, FRAME_SIGNED_HEADER_BYTES, frameSignature } from '../msg/frame.js';
import type { Frame } from '../msg/frame.js';

/** Signs outbound frames and verifies inbound ones for one session. */
export class FrameSigner {
  private txSeq = 0;
  private rxSeq = 0;
  private readonly txKey: GmacKey;
  private readonly rxKey: GmacKey;
  /** Reused output: `encodeFrame` copies the signature into the header at once. */
  private readonly sig = new Uint8Array(FRAME_SIGNATURE_BYTES);
  private readonly parts: Uint8Array[] = [];

  constructor(txKey: Uint8Array, rxKey: Uint8Array) {
    this.txKey = gmacKey(txKey);
    this.rxKey = gmacKey(rxKey);
  }

  /** `FrameSignFn` for `encodeFrame`: call exactly once per frame, in wire order. */
  readonly sign = (signedHeader: Uint8Array, payload: Uint8Array, data: readonly Uint8Array[]): Uint8Array => {
    gmacSign(this.txKey, this.txSeq++, this.partsOf(signedHeader, payload, data), this.sig);
    return this.sig;
  };

  /** Verifies a received frame (in arrival order). False means tampering: close the session. */
  verify(frame: Frame): boolean {
    const parts = this.partsOf(frame.header.subarray(0, FRAME_SIGNED_HEADER_BYTES), frame.payload, frame.data);
    return gmacVerify(this.rxKey, this.rxSeq++, parts, frameSignature(frame.header));
  }

  /**
   * Counts a received frame that is not verified because it is dropped unread (its data went
   * to a revoked reply sink: msg/frame.ts `ReplySink`), so later frames keep their sequence.
   */
  skip(): void {
    this.rxSeq++;
  }

  private partsOf(header: Uint8Array, payload: Uint8Array, data: readonly Uint8Array[]): Uint8Array[] {
    const p = this.parts;
    p.length = 0;
    p.push(header, payload);
    for (const d of data) p.push(d);
    return p;
  }
}
