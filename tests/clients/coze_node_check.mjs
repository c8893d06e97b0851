// Unit-ish checks of the cozeplus Node SDK (installed as @coze/api) against a scripted HTTP
// server started here. Prints one JSON object; test_coze_node.py asserts on it.
import http from 'node:http';
import CozeClient, {
  AuthenticationError,
  CozeAbortError,
  CozeTimeoutError,
  NotFoundError,
  RateLimitError,
} from '@coze/api';

const hits = [];
let script = [];
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    hits.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: body ? JSON.parse(body) : null });
    const step = script.shift() ?? { hang: true };
    if (step.hang) return; // never answers
    res.writeHead(step.status, { 'content-type': step.type ?? 'application/json', 'x-tt-logid': 'LOG123', ...(step.headers ?? {}) });
    res.end(step.body);
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const baseURL = `http://127.0.0.1:${server.address().port}`;
const ok = (data) => ({ status: 200, body: JSON.stringify({ code: 0, msg: 'success', data }) });
const err = (status, msg, headers) => ({ status, headers, body: JSON.stringify({ code: status, msg, data: null }) });
const sse = (events) => ({
  status: 200,
  type: 'text/event-stream; charset=utf-8',
  body: events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join(''),
});
const describe = (error) => ({ name: error?.name, status: error?.status, code: error?.code, msg: error?.msg, logId: error?.logId, retryAfter: error?.retryAfter });

async function run(steps, call) {
  script = [...steps];
  hits.length = 0;
  try {
    return { value: await call(), hits: hits.length };
  } catch (error) {
    return { error: describe(error), hits: hits.length, classes: {
      rateLimit: error instanceof RateLimitError,
      notFound: error instanceof NotFoundError,
      auth: error instanceof AuthenticationError,
      timeout: error instanceof CozeTimeoutError,
      abort: error instanceof CozeAbortError,
    } };
  }
}

const client = new CozeClient({ apiKey: 'pat_test', baseURL: `${baseURL}/`, maxRetries: 2 });
const out = {};
out.retriedThenOk = await run([err(429, 'too many requests', { 'retry-after': '0' }), err(503, 'busy'), ok({ bot_id: '7' })], () => client.bots.get(7));
out.firstRequest = hits[0] ?? null;
out.retriesExhausted = await run([0, 1, 2].map(() => err(429, 'too many requests', { 'retry-after': '0' })), () => client.bots.get(7));
out.notRetried = await run([err(404, 'bot 7 not found')], () => client.bots.get(7));
out.unauthorized = await run([err(401, 'invalid api key')], () => client.bots.get(7));
out.timeout = await run([{ hang: true }], () => client.bots.get(7, { timeout: 200 }));
const controller = new AbortController();
setTimeout(() => controller.abort(), 50);
out.aborted = await run([{ hang: true }], () => client.bots.get(7, { signal: controller.signal }));

const chat = { id: '2', conversation_id: '1', status: 'created' };
const delta = (content) => ({ id: '3', conversation_id: '1', chat_id: '2', type: 'answer', role: 'assistant', content });
const usage = { token_count: 5, input_count: 2, output_count: 3, prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 };
const success = sse([
  ['conversation.chat.created', chat],
  ['conversation.message.delta', delta('Hel')],
  ['conversation.message.delta', delta('lo')],
  ['conversation.message.completed', delta('Hello')],
  ['conversation.chat.completed', { ...chat, status: 'completed', usage }],
  ['conversation.stream.done', { event: 'conversation.stream.done' }],
  ['done', { event: 'done' }],
]);
out.iterator = await run([success], async () => {
  const events = [];
  for await (const event of client.chat.stream({ botId: 7, query: 'hi' })) events.push(event);
  return events.map((e) => ({ type: e.type, delta: e.delta, content: e.content, usage: e.usage, status: e.status }));
});
out.chatRequest = hits[0]?.body ?? null;
const failed = sse([
  ['conversation.chat.created', chat],
  ['conversation.chat.failed', { ...chat, status: 'failed', last_error: { code: 503, msg: 'model down' } }],
  ['error', { event: 'conversation.error', code: 503, msg: 'model down', error: { code: 503, msg: 'model down' } }],
  ['conversation.stream.done', {}],
  ['done', { event: 'done' }],
]);
const seen = [];
out.callbackFailure = await run([failed], () =>
  client.chat({ botId: 7, query: 'hi', stream: true, onError: (e) => seen.push(describe(e)) }),
);
out.callbackFailureSeen = seen;
out.nonStream = await run([ok({ ...chat, status: 'completed', usage, content: 'Hello', role: 'assistant' })], () =>
  client.chat({ botId: 7, query: 'hi' }),
);
out.truncated = await run([{ status: 200, type: 'text/event-stream', body: 'event: conversation.chat.created\ndata: {}' }], async () => {
  for await (const _ of client.chat.stream({ botId: 7, query: 'hi' }));
});
server.closeAllConnections();
server.close();
process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
