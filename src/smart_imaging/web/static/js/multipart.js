// Streaming multipart/related parser (RFC 2046 5.1) over a fetch() ReadableStream: yields each
// part as soon as its closing delimiter has arrived.

const CRLF = [13, 10];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function boundaryOf(contentType) {
  const m = /;\s*boundary\s*=\s*("([^"]+)"|[^;\s]+)/i.exec(contentType || "");
  if (!m) throw new Error(`not a multipart response (Content-Type: ${contentType || "none"})`);
  return m[2] || m[1];
}

class Buffer {
  constructor() { this.bytes = new Uint8Array(1 << 20); this.start = 0; this.end = 0; }
  get length() { return this.end - this.start; }
  push(chunk) {
    if (this.end + chunk.length > this.bytes.length) {
      const live = this.length;
      if (live + chunk.length <= this.bytes.length / 2) {
        this.bytes.copyWithin(0, this.start, this.end);
      } else {
        let size = this.bytes.length;
        while (size < (live + chunk.length) * 2) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.bytes.subarray(this.start, this.end));
        this.bytes = grown;
      }
      this.start = 0; this.end = live;
    }
    this.bytes.set(chunk, this.end);
    this.end += chunk.length;
  }
  /** Index (relative to start) of needle at or after `from`, or -1. */
  indexOf(needle, from = 0) {
    const b = this.bytes, first = needle[0], last = this.end - needle.length;
    outer: for (let i = this.start + from; i <= last; i++) {
      if (b[i] !== first) continue;
      for (let j = 1; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
      return i - this.start;
    }
    return -1;
  }
  take(n) { const out = this.bytes.slice(this.start, this.start + n); this.start += n; return out; }
  skip(n) { this.start += n; }
  peek(n) { return this.bytes.subarray(this.start, this.start + n); }
}

export function parseHeaders(text) {
  const headers = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

/**
 * Async generator of {headers, body} parts. `onBytes(total)` reports progress.
 * Works with a ReadableStream of Uint8Array chunks.
 */
export async function* parts(stream, boundary, onBytes = () => {}) {
  const reader = stream.getReader();
  const buf = new Buffer();
  const first = encoder.encode(`--${boundary}`);
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  const headerEnd = encoder.encode("\r\n\r\n");
  let state = "preamble";
  let scanFrom = 0;
  let received = 0;
  let done = false;
  let headers = null;
  try {
    while (true) {
      let progressed = true;
      while (progressed) {
        progressed = false;
        if (state === "preamble") {
          const i = buf.indexOf(first);
          if (i >= 0 && buf.length >= i + first.length + 2) {
            buf.skip(i + first.length);
            state = "after-delimiter"; progressed = true;
          }
        } else if (state === "after-delimiter") {
          const next = buf.peek(2);
          if (next.length < 2) break;
          if (next[0] === 45 && next[1] === 45) return; // "--": close delimiter
          // skip transport padding up to CRLF
          const eol = buf.indexOf(CRLF);
          if (eol < 0) break;
          buf.skip(eol + 2);
          state = "headers"; progressed = true;
        } else if (state === "headers") {
          if (buf.length >= 2 && buf.peek(2)[0] === 13 && buf.peek(2)[1] === 10) {
            buf.skip(2); headers = {}; state = "body"; scanFrom = 0; progressed = true; continue;
          }
          const i = buf.indexOf(headerEnd);
          if (i < 0) break;
          headers = parseHeaders(decoder.decode(buf.take(i)));
          buf.skip(4);
          state = "body"; scanFrom = 0; progressed = true;
        } else if (state === "body") {
          const i = buf.indexOf(delimiter, scanFrom);
          if (i < 0) { scanFrom = Math.max(0, buf.length - delimiter.length + 1); break; }
          const body = buf.take(i);
          buf.skip(delimiter.length);
          state = "after-delimiter"; progressed = true;
          yield { headers, body };
        }
      }
      if (done) break;
      const { value, done: finished } = await reader.read();
      if (finished) { done = true; continue; }
      buf.push(value);
      received += value.length;
      onBytes(received);
    }
    throw new Error("the multipart response ended before its closing boundary (incomplete study)");
  } finally {
    if (done) reader.releaseLock();
    else reader.cancel().catch(() => {});
  }
}
