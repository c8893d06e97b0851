import { ChatFailedError, CozeError, CozeStreamError } from './errors.js';
import { type RequestOptions, Transport, type TransportOptions } from './http.js';
import { readEvents } from './sse.js';

export interface Usage {
  token_count: number;
  output_count: number;
  input_count: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export interface InputMessage {
  role: 'user' | 'assistant';
  content: string;
  content_type?: 'text' | 'object_string' | 'card';
  type?: string;
}

export interface ChatParams extends RequestOptions {
  /** A published bot's id; a number is fine (every id is below 2^53). */
  botId: string | number;
  /** One more user text message, after `messages`. */
  query?: string;
  messages?: InputMessage[];
  /** The end user; conversations and variables are per user. Default "sdk_user". */
  userId?: string;
  conversationId?: string;
  /** Values for `{{name}}` in the bot's prompt. */
  customVariables?: Record<string, string>;
  stream?: boolean;
  onMessage?: (data: MessageEvent) => void;
  onDone?: (data: DoneEvent) => void;
  /** When given, failures go here and the promise resolves to undefined. */
  onError?: (error: CozeError) => void;
}

interface Ids {
  conversationId: string;
  chatId: string;
}

export interface CreatedEvent extends Ids {
  type: 'created';
  chat: Record<string, unknown>;
}

export interface MessageEvent extends Ids {
  type: 'message';
  /** This event's new text. */
  delta: string;
  /** The answer so far. */
  content: string;
  messageId: string;
}

export interface MessageCompletedEvent extends Ids {
  type: 'message_completed';
  content: string;
  messageId: string;
}

export interface DoneEvent extends Ids {
  type: 'done';
  status: string;
  content: string;
  usage: Usage;
  chat: Record<string, unknown>;
}

export interface ErrorEvent extends Ids {
  type: 'error';
  code: number;
  msg: string;
}

export type ChatEvent = CreatedEvent | MessageEvent | MessageCompletedEvent | DoneEvent | ErrorEvent;

export type ChatResult = DoneEvent;

export interface ChatFunction {
  /** Runs the bot. With `stream: true` the callbacks see each piece as it arrives. */
  (params: ChatParams): Promise<ChatResult | undefined>;
  /** The chat's events as an async iterator: created, message..., message_completed, then
   * exactly one of done or error. HTTP failures are thrown. */
  stream(params: Omit<ChatParams, 'stream' | 'onMessage' | 'onDone' | 'onError'>): AsyncGenerator<ChatEvent>;
}

export interface ClientOptions extends TransportOptions {}

type Json = Record<string, unknown>;

export class CozeClient {
  readonly chat: ChatFunction;
  readonly bots: Bots;
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
    const chat = (params: ChatParams) => this.runChat(params);
    this.chat = Object.assign(chat, { stream: (params: ChatParams) => this.streamChat(params) });
    this.bots = new Bots(this.transport);
  }

  private async runChat(params: ChatParams): Promise<ChatResult | undefined> {
    try {
      let result: ChatResult | undefined;
      if (params.stream) {
        for await (const event of this.streamChat(params)) {
          if (event.type === 'message') params.onMessage?.(event);
          else if (event.type === 'done') result = event;
          else if (event.type === 'error') {
            throw new ChatFailedError(event.code, event.msg, event.conversationId, event.chatId);
          }
        }
      } else {
        result = await this.answer(params);
      }
      if (result === undefined) throw new CozeStreamError('the chat ended without an outcome');
      params.onDone?.(result);
      return result;
    } catch (error) {
      const failure = error instanceof CozeError ? error : new CozeError(String(error), { cause: error });
      if (!params.onError) throw failure;
      params.onError(failure);
      return undefined;
    }
  }

  private async answer(params: ChatParams): Promise<ChatResult> {
    const data = await this.transport.json<Json>('POST', chatPath(params), chatBody(params, false), params);
    const ids = idsOf(data);
    const status = String(data.status ?? '');
    if (status === 'failed') {
      const error = (data.last_error ?? {}) as Json;
      throw new ChatFailedError(Number(error.code ?? 500), String(error.msg ?? ''), ids.conversationId, ids.chatId);
    }
    const { content, ...chat } = data;
    return { type: 'done', ...ids, status, content: String(content ?? ''), usage: usageOf(chat), chat };
  }

  private async *streamChat(params: ChatParams): AsyncGenerator<ChatEvent> {
    const { response, failure } = await this.transport.request('POST', chatPath(params), chatBody(params, true), params);
    if (response.body === null) throw new CozeStreamError('the chat answered without a body');
    let ids: Ids = { conversationId: '', chatId: '' };
    let content = '';
    let outcome: Json | undefined;
    let error: { code: number; msg: string } | undefined;
    try {
      for await (const { event, data } of readEvents(response.body)) {
        const payload = (typeof data === 'object' && data !== null ? data : {}) as Json;
        if (event === 'conversation.chat.created') {
          ids = idsOf(payload);
          yield { type: 'created', ...ids, chat: payload };
        } else if (event === 'conversation.message.delta' && payload.type === 'answer') {
          const delta = String(payload.content ?? '');
          content += delta;
          yield { type: 'message', ...ids, delta, content, messageId: String(payload.id ?? '') };
        } else if (event === 'conversation.message.completed' && payload.type === 'answer') {
          content = String(payload.content ?? content);
          yield { type: 'message_completed', ...ids, content, messageId: String(payload.id ?? '') };
        } else if (event === 'conversation.chat.completed' || event === 'conversation.chat.canceled') {
          outcome = payload;
        } else if (event === 'conversation.chat.failed') {
          const last = (payload.last_error ?? {}) as Json;
          error ??= { code: Number(last.code ?? 500), msg: String(last.msg ?? 'chat failed') };
        } else if (event === 'error') {
          const nested = (payload.error ?? payload) as Json;
          error ??= { code: Number(nested.code ?? 500), msg: String(nested.msg ?? 'chat failed') };
        } else if (event === 'done') {
          if (error) {
            yield { type: 'error', ...ids, ...error };
          } else if (outcome) {
            const status = String(outcome.status ?? '');
            yield { type: 'done', ...ids, status, content, usage: usageOf(outcome), chat: outcome };
          } else {
            throw new CozeStreamError("the stream ended without the chat's outcome");
          }
          return;
        }
      }
    } catch (e) {
      throw failure(e);
    }
    throw new CozeStreamError('the stream ended before its done event');
  }
}

export class Bots {
  constructor(private readonly transport: Transport) {}

  /** The bot's latest published version: name, description, prompt, model, tools, ... */
  get(botId: string | number, options?: RequestOptions): Promise<Json> {
    return this.transport.json<Json>('GET', `/v1/bots/${encodeURIComponent(String(botId))}`, undefined, options);
  }
}

function chatPath(params: ChatParams): string {
  const query = params.conversationId ? `?conversation_id=${encodeURIComponent(params.conversationId)}` : '';
  return `/v3/chat${query}`;
}

function chatBody(params: ChatParams, stream: boolean): Json {
  const messages: InputMessage[] = [...(params.messages ?? [])];
  if (params.query !== undefined) messages.push({ role: 'user', content: params.query, content_type: 'text' });
  return {
    bot_id: String(params.botId),
    user_id: params.userId ?? 'sdk_user',
    stream,
    additional_messages: messages,
    ...(params.customVariables ? { custom_variables: params.customVariables } : {}),
  };
}

function idsOf(chat: Json): Ids {
  return { conversationId: String(chat.conversation_id ?? ''), chatId: String(chat.id ?? '') };
}

function usageOf(chat: Json): Usage {
  const usage = (chat.usage ?? {}) as Json;
  const num = (key: string) => Number(usage[key] ?? 0);
  return {
    token_count: num('token_count'),
    output_count: num('output_count'),
    input_count: num('input_count'),
    prompt_tokens: num('prompt_tokens'),
    completion_tokens: num('completion_tokens'),
    total_tokens: num('total_tokens'),
  };
}
