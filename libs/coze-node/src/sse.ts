import { CozeStreamError } from './errors.js';

export interface SSEEvent {
  event: string;
  data: unknown;
}

/** Reads `event: NAME\ndata: JSON\n\n` events (wire contract section 2) from a body. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SSEEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let name: string | undefined;
  let data: string | undefined;
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (name !== undefined && data !== undefined) {
            yield { event: name, data: parse(data) };
          }
          name = undefined;
          data = undefined;
        } else if (line.startsWith('event: ')) {
          name = line.slice(7);
        } else if (line.startsWith('data: ')) {
          data = line.slice(6);
        } else if (!line.startsWith(':')) {
          throw new CozeStreamError(`unexpected line in the event stream: ${line.slice(0, 80)}`);
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
  buffer += decoder.decode();
  if (buffer !== '' || name !== undefined) {
    throw new CozeStreamError('the event stream ended in the middle of an event');
  }
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new CozeStreamError(`an event's data is not JSON: ${data.slice(0, 80)}`);
  }
}
