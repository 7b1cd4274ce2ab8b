// HTTP errors with readable messages (OperationOutcome, OAuth error JSON, plain text), and the
// error of a SMART launch that cannot go on.

export class LaunchError extends Error {
  constructor(message, code = "launch_error") { super(message); this.name = "LaunchError"; this.code = code; }
}

export class HttpError extends Error {
  constructor(what, status, detail, retryAfter = null, headers = null, code = null) {
    super(`${what} answered ${status}${detail ? `: ${detail}` : ""}`);
    this.name = "HttpError";
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
    this.challenge = headers ? headers.get("WWW-Authenticate") : null;
    this.code = code; // the body's machine-readable "error" (WADO routes), e.g. partial_study
  }
}

/** Seconds from a Retry-After header (delta-seconds or HTTP date), or null. */
export function retryAfterSeconds(value, now = Date.now()) {
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}

/** The most useful sentence in an error body. */
export async function errorDetail(response) {
  return (await errorBody(response)).detail;
}

/** The error body's most useful sentence and its machine-readable code (JSON "error"), if any. */
export async function errorBody(response) {
  let text = "";
  try { text = await response.text(); } catch { return { detail: "", code: null }; }
  try {
    const body = JSON.parse(text);
    if (body.resourceType === "OperationOutcome") {
      const detail = (body.issue || []).map((i) => i.diagnostics || (i.details && i.details.text) || i.code)
        .filter(Boolean).join("; ");
      return { detail, code: null };
    }
    const code = typeof body.error === "string" ? body.error : null;
    if (body.error_description) return { detail: `${body.error}: ${body.error_description}`, code };
    if (body.message) return { detail: code ? `${body.message} (${code})` : body.message, code };
    if (code) return { detail: code, code };
  } catch { /* not JSON */ }
  return { detail: text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300), code: null };
}

export async function httpError(what, response) {
  const { detail, code } = await errorBody(response);
  return new HttpError(what, response.status, detail,
    retryAfterSeconds(response.headers.get("Retry-After")), response.headers, code);
}
