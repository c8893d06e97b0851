/** Every error this SDK throws (or passes to `onError`) is a CozeError. */
export class CozeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server answered with an error: its HTTP status, the envelope's code and msg, and the
 * log id to quote in a bug report. */
export class CozeAPIError extends CozeError {
  readonly status: number;
  readonly code: number;
  readonly msg: string;
  readonly logId: string;
  /** Seconds, from Retry-After (429 and 503 only). */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: number, msg: string, logId: string, retryAfter?: number) {
    super(`HTTP ${status}: code ${code}, ${msg}${logId ? ` (log id ${logId})` : ''}`);
    this.status = status;
    this.code = code;
    this.msg = msg;
    this.logId = logId;
    this.retryAfter = retryAfter;
  }
}

export class BadRequestError extends CozeAPIError {}
export class AuthenticationError extends CozeAPIError {}
export class PermissionDeniedError extends CozeAPIError {}
export class NotFoundError extends CozeAPIError {}
export class ConflictError extends CozeAPIError {}
export class RateLimitError extends CozeAPIError {}
export class InternalServerError extends CozeAPIError {}

/** The chat ran but failed (model error, no runner, ...): the chat's `last_error`. */
export class ChatFailedError extends CozeError {
  readonly code: number;
  readonly msg: string;
  readonly conversationId: string;
  readonly chatId: string;

  constructor(code: number, msg: string, conversationId: string, chatId: string) {
    super(`chat failed: code ${code}, ${msg}`);
    this.code = code;
    this.msg = msg;
    this.conversationId = conversationId;
    this.chatId = chatId;
  }
}

/** The request took longer than the `timeout` option allows. */
export class CozeTimeoutError extends CozeError {}

/** The caller's AbortSignal aborted the request. */
export class CozeAbortError extends CozeError {}

/** No answer at all: connection refused, reset, DNS, ... */
export class CozeConnectionError extends CozeError {}

/** The server's event stream broke the wire contract (a truncated or malformed event). */
export class CozeStreamError extends CozeError {}

export function apiError(
  status: number,
  code: number,
  msg: string,
  logId: string,
  retryAfter?: number,
): CozeAPIError {
  const args = [status, code, msg, logId, retryAfter] as const;
  if (status === 400) return new BadRequestError(...args);
  if (status === 401) return new AuthenticationError(...args);
  if (status === 403) return new PermissionDeniedError(...args);
  if (status === 404) return new NotFoundError(...args);
  if (status === 409) return new ConflictError(...args);
  if (status === 429) return new RateLimitError(...args);
  if (status >= 500) return new InternalServerError(...args);
  return new CozeAPIError(...args);
}
