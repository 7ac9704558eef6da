/**
 * Per-frame integrity on authenticated sessions (docs/cluster-protocol.md §5). Every frame
 * carries, in header bytes 40..55,
 *
 *   sig = HMAC-SHA256(dirKey, u64le seq ‖ header[0..40) ‖ payload ‖ data)[0..16)
 *
 * - `dirKey` is the handshake's per-direction key (c2s or s2c), so a frame cannot be reflected
 *   back at its sender.
 * - `seq` counts frames per direction from 0 and is implicit (both ends count), so a frame
 *   cannot be replayed, dropped or reordered inside a session without detection.
 * - Truncation to 128 bits (RFC 2104 §5 allows truncation to ≥ half the hash) leaves a 2^-128
 *   forgery chance per attempt, and one failure closes the session.
 *
 * Why the bytes and not only their CRCs (the brief suggested CRCs, as Ceph's msgr v1 did):
 * crc32c is linear, so an attacker who can rewrite a payload can also keep its CRC; signing the
 * CRCs would not protect the data.
 *
 * Cost: the MAC is the native shim's (`native/src/hmac.cc`): the key's pad states are prepared
 * once per direction and each frame hashes only its bytes, ≈0.7 µs + 0.57 µs/KiB here (3.1 µs for a 4 KiB write), against
 * ≈3.3 µs + 0.5 µs/KiB (5.4 µs) for node:crypto's `createHmac` per frame (which builds a context each
 * time). Same digest (tested against node:crypto in native/test/hmac.test.ts).
 */
import { hmacKey, hmacSign, hmacVerify } from '../../../native/index.js';
import { FRAME_SIGNATURE_BYTES, FRAME_SIGNED_HEADER_BYTES, frameSignature } from '../msg/frame.js';
import type { Frame } from '../msg/frame.js';

/** Signs outbound frames and verifies inbound ones for one session. */
export class FrameSigner {
  private txSeq = 0;
  private rxSeq = 0;
  private readonly txState: ArrayBuffer;
  private readonly rxState: ArrayBuffer;
  /** Reused output: `encodeFrame` copies the signature into the header at once. */
  private readonly sig = new Uint8Array(FRAME_SIGNATURE_BYTES);
  private readonly parts: Uint8Array[] = [];

  constructor(txKey: Uint8Array, rxKey: Uint8Array) {
    this.txState = hmacKey(txKey);
    this.rxState = hmacKey(rxKey);
  }

  /** `FrameSignFn` for `encodeFrame`: call exactly once per frame, in wire order. */
  readonly sign = (signedHeader: Uint8Array, payload: Uint8Array, data: readonly Uint8Array[]): Uint8Array => {
    hmacSign(this.txState, this.txSeq++, this.partsOf(signedHeader, payload, data), this.sig);
    return this.sig;
  };

  /** Verifies a received frame (in arrival order). False means tampering: close the session. */
  verify(frame: Frame): boolean {
    const parts = this.partsOf(frame.header.subarray(0, FRAME_SIGNED_HEADER_BYTES), frame.payload, frame.data);
    return hmacVerify(this.rxState, this.rxSeq++, parts, frameSignature(frame.header));
  }

  private partsOf(header: Uint8Array, payload: Uint8Array, data: readonly Uint8Array[]): Uint8Array[] {
    const p = this.parts;
    p.length = 0;
    p.push(header, payload);
    for (const d of data) p.push(d);
    return p;
  }
}
