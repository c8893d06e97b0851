export { CozeClient, Bots } from './client.js';
export type {
  ChatEvent,
  ChatFunction,
  ChatParams,
  ChatResult,
  ClientOptions,
  CreatedEvent,
  DoneEvent,
  ErrorEvent,
  InputMessage,
  MessageCompletedEvent,
  MessageEvent,
  Usage,
} from './client.js';
export type { RequestOptions } from './http.js';
export {
  AuthenticationError,
  BadRequestError,
  ChatFailedError,
  ConflictError,
  CozeAbortError,
  CozeAPIError,
  CozeConnectionError,
  CozeError,
  CozeStreamError,
  CozeTimeoutError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from './errors.js';
import { CozeClient } from './client.js';
export default CozeClient;
