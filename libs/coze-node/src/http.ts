import {
  CozeAbortError,
  CozeConnectionError,
  CozeError,
  CozeTimeoutError,
  apiError,
} from './errors.js';

export interface TransportOptions {
  apiKey: string;
  baseURL: string;
  /** Milliseconds for each attempt, reading the answer included. Default 60000. */
  timeout?: number;
  /** Retries of a 429 or 503 answer. Default 3. */
  maxRetries?: number;
  /** Fetch implementation; Node 20's global fetch by default. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Aborts the call; the SDK then throws (or reports) a CozeAbortError. */
  signal?: AbortSignal;
  /** Overrides the client's timeout, in milliseconds. */
  timeout?: number;
}

export interface Call {
  response: Response;
  /** Turns a failure while reading the body into the SDK's error. */
  failure(error: unknown): CozeError;
}

const RETRY_STATUSES = new Set([429, 503]);
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;

export class Transport {
  readonly baseURL: string;
  private readonly apiKey: string;
  private readonly timeout: number;
  private readonly maxRetries: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: TransportOptions) {
    if (!options.apiKey) throw new CozeError('apiKey is required');
    if (!options.baseURL) throw new CozeError('baseURL is required');
    this.apiKey = options.apiKey;
    this.baseURL = options.baseURL.replace(/\/+$/, '');
    this.timeout = options.timeout ?? 60_000;
    this.maxRetries = options.maxRetries ?? 3;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** One call, retried on 429/503 with backoff (Retry-After first); resolves only on 2xx. */
  async request(
    method: string,
    path: string,
    body: unknown,
    options: RequestOptions = {},
  ): Promise<Call> {
    for (let attempt = 0; ; attempt += 1) {
      const timeoutSignal = AbortSignal.timeout(options.timeout ?? this.timeout);
      const signal = options.signal
        ? AbortSignal.any([options.signal, timeoutSignal])
        : timeoutSignal;
      const failure = (error: unknown): CozeError =>
        abortError(error, options.signal, timeoutSignal);
      let response: Response;
      try {
        response = await this.fetchImpl(`${this.baseURL}${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${this.apiKey}`,
            ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        throw failure(error);
      }
      if (response.ok) return { response, failure };
      const error = await errorOf(response).catch((e: unknown) => {
        throw failure(e);
      });
      if (!RETRY_STATUSES.has(response.status) || attempt >= this.maxRetries) throw error;
      await sleep(retryDelay(attempt, error.retryAfter), options.signal);
    }
  }

  async json<T>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    const { response, failure } = await this.request(method, path, body, options);
    let envelope: { code?: number; msg?: string; data?: T };
    try {
      envelope = (await response.json()) as typeof envelope;
    } catch (error) {
      throw failure(error);
    }
    if (envelope.code !== 0 && envelope.code !== undefined) {
      throw apiError(response.status, envelope.code, envelope.msg ?? '', logId(response));
    }
    return envelope.data as T;
  }
}

async function errorOf(response: Response) {
  const text = await response.text();
  let code = response.status;
  let msg = text || response.statusText;
  try {
    const envelope = JSON.parse(text) as { code?: unknown; msg?: unknown };
    if (typeof envelope.code === 'number') code = envelope.code;
    if (typeof envelope.msg === 'string') msg = envelope.msg;
  } catch {
    // Not our envelope (a proxy's page): keep the text.
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  return apiError(
    response.status,
    code,
    msg,
    logId(response),
    Number.isFinite(retryAfter) && retryAfter >= 0 && response.headers.has('retry-after')
      ? retryAfter
      : undefined,
  );
}

function logId(response: Response): string {
  return response.headers.get('x-tt-logid') ?? response.headers.get('x-log-id') ?? '';
}

/** Retry-After when the server sent one, else exponential backoff with jitter. */
export function retryDelay(attempt: number, retryAfterS: number | undefined): number {
  if (retryAfterS !== undefined) return retryAfterS * 1000;
  const backoff = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return backoff / 2 + Math.random() * (backoff / 2);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CozeAbortError('aborted', { cause: signal.reason }));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CozeAbortError('aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(
  error: unknown,
  userSignal: AbortSignal | undefined,
  timeoutSignal: AbortSignal,
): CozeError {
  if (error instanceof CozeError) return error;
  if (userSignal?.aborted) return new CozeAbortError('aborted', { cause: error });
  if (timeoutSignal.aborted) return new CozeTimeoutError('request timed out', { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new CozeConnectionError(`connection failed: ${message}`, { cause: error });
}
