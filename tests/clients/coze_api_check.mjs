// Drives the official @coze/api SDK against a cozeplus edge and prints what it saw as JSON.
// Usage: node coze_api_check.mjs SCENARIO BASE_URL TOKEN [ARG]
// Each scenario's ARG and output are described where it is defined; test_coze_api_js.py asserts.
import { APIError, ChatEventType, CozeAPI, NotFoundError, RoleType } from '@coze/api';

const [scenario, baseURL, token, arg] = process.argv.slice(2);
const client = new CozeAPI({ token, baseURL });
const question = (text) => [{ role: RoleType.User, content: text, content_type: 'text' }];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What an SDK error carries, plus the classes it is an instance of.
const described = (error) => ({
  name: error.name,
  isAPIError: error instanceof APIError,
  isNotFoundError: error instanceof NotFoundError,
  status: error.status,
  code: error.code,
  msg: error.msg,
  logid: error.logid,
  message: error.message,
  headerLogid: error.headers?.['x-tt-logid'],
});

async function caught(call) {
  try {
    return { returned: await call() };
  } catch (error) {
    return { threw: described(error), error };
  }
}

// Every part of a chat.stream, and the error it threw, if any.
async function streamed(params) {
  const parts = [];
  try {
    for await (const part of client.chat.stream(params)) parts.push(part);
    return { parts };
  } catch (error) {
    return { parts, threw: described(error), error };
  }
}

const scenarios = {
  // ARG: a published mock-echo bot.
  async chat(botId) {
    const out = {};
    out.onlineInfo = await client.bots.retrieve({ bot_id: botId });
    out.bot = await client.bots.retrieveNew(botId);

    const events = [];
    let answer = '';
    let completed = null;
    for await (const part of client.chat.stream({ bot_id: botId, additional_messages: question('hello from js') })) {
      events.push(part.event);
      if (part.event === ChatEventType.CONVERSATION_MESSAGE_DELTA) answer += part.data.content;
      if (part.event === ChatEventType.CONVERSATION_CHAT_COMPLETED) completed = part.data;
    }
    out.stream = { events, answer, completed };

    const poll = await client.chat.createAndPoll({ bot_id: botId, additional_messages: question('poll from js') });
    out.poll = {
      status: poll.chat.status,
      usage: poll.chat.usage,
      messages: poll.messages.map((m) => ({ type: m.type, role: m.role, content: m.content })),
    };
    return out;
  },

  // ARG: a published mock-fail bot (the model breaks off mid-answer).
  async failed(botId) {
    const { parts, threw } = await streamed({ bot_id: botId, additional_messages: question('fail') });
    const poll = await client.chat.createAndPoll({ bot_id: botId, additional_messages: question('fail') });
    return { stream: { parts, threw: threw ?? null }, poll: { chat: poll.chat, messages: poll.messages } };
  },

  // ARG: a bot id nobody has.
  async refused(botId) {
    const stream = await streamed({ bot_id: botId, additional_messages: question('x') });
    // On a non-2xx streaming answer the SDK keeps the unread body stream as `rawError`.
    let streamBody = null;
    if (stream.error?.rawError instanceof ReadableStream) streamBody = await new Response(stream.error.rawError).json();
    const create = await caught(() => client.chat.create({ bot_id: botId, additional_messages: question('x') }));
    const poll = await caught(() => client.chat.createAndPoll({ bot_id: botId, additional_messages: question('x') }));
    return {
      stream: { parts: stream.parts, threw: stream.threw ?? null, body: streamBody },
      create: create.threw ?? null,
      createAndPoll: poll.threw ?? null,
    };
  },

  // ARG: a published mock-stream-slow bot.
  async cancel(botId) {
    // 1. chat.cancel on the first delta of a stream.
    const parts = [];
    let canceled = null;
    let ids = null;
    for await (const part of client.chat.stream({ bot_id: botId, additional_messages: question('long') })) {
      parts.push(part);
      if (part.event === ChatEventType.CONVERSATION_MESSAGE_DELTA && !canceled) {
        ids = { conversation_id: part.data.conversation_id, chat_id: part.data.chat_id };
        canceled = await client.chat.cancel(ids.conversation_id, ids.chat_id);
      }
    }
    const retrieved = await client.chat.retrieve(ids.conversation_id, ids.chat_id);
    const messages = await client.chat.messages.list(ids.conversation_id, ids.chat_id);
    const again = await caught(() => client.chat.cancel(ids.conversation_id, ids.chat_id));

    // 2. createAndPoll on a chat that is canceled meanwhile (by conversation id only, as the
    // product document does). Its loop waits for completed/failed/requires_action only.
    const conversation = await client.conversations.create({ bot_id: botId });
    const statuses = [];
    const retrieve = client.chat.retrieve.bind(client.chat);
    client.chat.retrieve = async (...args) => {
      const chat = await retrieve(...args);
      statuses.push(chat.status);
      return chat;
    };
    const polling = client.chat
      .createAndPoll({ bot_id: botId, conversation_id: conversation.id, additional_messages: question('long') })
      .then(() => 'returned', (error) => `threw ${error}`);
    let canceledMeanwhile = null;
    for (let attempt = 0; attempt < 50 && !canceledMeanwhile; attempt += 1) {
      await sleep(100);
      // Fails until the chat is registered; the loop retries.
      canceledMeanwhile = (await caught(() => client.chat.cancel(conversation.id))).returned ?? null;
    }
    const afterTwoSeconds = await Promise.race([polling, sleep(2000).then(() => 'still polling')]);
    return {
      stream: { events: parts.map((p) => p.event), parts, canceled, retrieved, messages, cancelAgain: again.threw ?? null },
      createAndPoll: { canceledMeanwhile, afterTwoSeconds, statuses: [...statuses] },
    };
  },

  // ARG: the account's space id.
  async bots(spaceId) {
    const created = await client.bots.create({
      space_id: spaceId,
      name: 'js bot',
      description: 'from @coze/api',
      prompt_info: { prompt: 'be brief' },
      onboarding_info: { prologue: 'hi', suggested_questions: ['q1'] },
    });
    const botId = created.bot_id;
    const other = await client.bots.create({ space_id: spaceId, name: 'never published' });
    const onlineBeforePublish = (await caught(() => client.bots.retrieve({ bot_id: botId }))).threw ?? null;
    await client.bots.update({ bot_id: botId, name: 'js bot 2', prompt_info: { prompt: 'be kind' } });
    const draft = await client.bots.retrieveNew(botId, { is_published: false });
    await client.bots.publish({ bot_id: botId, connector_ids: ['1024'] });
    const online = await client.bots.retrieve({ bot_id: botId });
    const list = await client.bots.list({ space_id: spaceId });
    const listNew = await client.bots.listNew({ workspace_id: spaceId });
    const listNewAll = await client.bots.listNew({ workspace_id: spaceId, publish_status: 'all' });
    const listNewUnpublished = await client.bots.listNew({ workspace_id: spaceId, publish_status: 'unpublished_draft' });
    return { created, otherId: other.bot_id, onlineBeforePublish, draft, online, list, listNew, listNewAll, listNewUnpublished };
  },

  // ARG: the account's space id. Pages of one through listNew with its `page_num` parameter.
  async 'bots-paging'(spaceId) {
    const ids = [];
    for (const name of ['a', 'b', 'c']) ids.push((await client.bots.create({ space_id: spaceId, name })).bot_id);
    const pages = [];
    for (const pageNum of [1, 2, 3]) {
      const page = await client.bots.listNew({ workspace_id: spaceId, publish_status: 'all', page_size: 1, page_num: pageNum });
      pages.push({ total: page.total, ids: page.items.map((b) => b.id) });
    }
    return { ids, pages };
  },

  // ARG: a published mock-echo bot.
  async conversations(botId) {
    const created = await client.conversations.create({
      bot_id: botId,
      messages: [...question('first'), { role: RoleType.Assistant, content: 'reply', content_type: 'text' }],
      meta_data: { k: 'v' },
    });
    const retrieved = await client.conversations.retrieve(created.id);
    const newer = await client.conversations.create({ bot_id: botId });
    const pages = [];
    for (const pageNum of [1, 2]) pages.push(await client.conversations.list({ bot_id: botId, page_num: pageNum, page_size: 1 }));
    const cleared = await client.conversations.clear(created.id);
    const afterClear = await client.conversations.retrieve(created.id);
    const unknown = (await caught(() => client.conversations.retrieve('123456'))).threw ?? null;
    return { created, retrieved, newerId: newer.id, pages, cleared, afterClear, unknown };
  },

  // ARG: a published mock-echo bot.
  async messages(botId) {
    const conversation = await client.conversations.create({ bot_id: botId });
    const created = [];
    for (const text of ['m0', 'm1', 'm2', 'm3', 'm4']) {
      created.push(await client.conversations.messages.create(conversation.id, {
        role: RoleType.User,
        content: text,
        content_type: 'text',
        meta_data: { n: text },
      }));
    }
    const pages = [];
    let afterId;
    for (let i = 0; i < 10; i += 1) {
      const page = await client.conversations.messages.list(conversation.id, { limit: 2, after_id: afterId });
      pages.push(page);
      if (!page.has_more) break;
      afterId = page.last_id;
    }
    const target = created[0];
    const retrieved = await client.conversations.messages.retrieve(conversation.id, target.id);
    const updated = await client.conversations.messages.update(conversation.id, target.id, { content: 'changed', content_type: 'text' });
    const deleted = await client.conversations.messages.delete(conversation.id, target.id);
    const afterDelete = (await caught(() => client.conversations.messages.retrieve(conversation.id, target.id))).threw ?? null;
    const remaining = await client.conversations.messages.list(conversation.id, { order: 'asc' });
    return { conversationId: conversation.id, created, pages, retrieved, updated, deleted, afterDelete, remaining };
  },

  // ARG: a published mock-echo bot whose prompt reads {{city}}. Finds the space through
  // workspaces.list, creates a bot there, reads users.me, then sets and reads variables of
  // one end user and chats as that user.
  async surface(botId) {
    const workspaces = await client.workspaces.list({ page_num: 1, page_size: 10 });
    const spaceId = workspaces.workspaces[0].id;
    const created = await client.bots.create({ space_id: spaceId, name: 'made in my workspace' });
    const listed = await client.bots.listNew({ workspace_id: spaceId, publish_status: 'all' });
    const me = await client.users.me();
    const uid = 'js-end-user';
    const updated = await client.variables.update({
      bot_id: botId,
      connector_uid: uid,
      data: [{ keyword: 'city', value: 'Osaka' }, { keyword: 'unused', value: 'x' }],
    });
    const one = await client.variables.retrieve({ bot_id: botId, connector_uid: uid, keywords: ['city'] });
    const all = await client.variables.retrieve({ bot_id: botId, connector_uid: uid });
    const badUpdate = (await caught(() => client.variables.update({ bot_id: botId, connector_uid: uid, data: [{ keyword: '1bad', value: 'x' }] }))).threw ?? null;
    const poll = await client.chat.createAndPoll({ bot_id: botId, user_id: uid, additional_messages: question('hi') });
    return {
      workspaces,
      createdId: created.bot_id,
      listedIds: listed.items.map((b) => b.id),
      me,
      updated: updated ?? null,
      one,
      all,
      badUpdate,
      chatStatus: poll.chat.status,
    };
  },

  // ARG: a published bot whose model calls the client-side function get_location, then
  // answers with its output. Streams into requires_action, retrieves, resumes streaming; then
  // createAndPoll into requires_action and a non-streaming submit.
  async tools(botId) {
    const streamed = [];
    for await (const part of client.chat.stream({ bot_id: botId, additional_messages: question('where am I?') })) {
      streamed.push(part);
    }
    const paused = streamed.find((p) => p.event === ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION)?.data ?? null;
    const out = { events: streamed.map((p) => p.event), paused };
    if (!paused) return out;
    const call = paused.required_action.submit_tool_outputs.tool_calls[0];
    out.functionCall = streamed.find((p) => p.data?.type === 'function_call')?.data ?? null;
    out.retrieved = await client.chat.retrieve(paused.conversation_id, paused.id);
    const resumed = [];
    for await (const part of client.chat.submitToolOutputs({
      conversation_id: paused.conversation_id,
      chat_id: paused.id,
      tool_outputs: [{ tool_call_id: call.id, output: 'Paris' }],
      stream: true,
    })) {
      resumed.push(part);
    }
    out.resumed = resumed.map((p) => ({ event: p.event, type: p.data?.type ?? null, content: p.data?.content ?? null }));
    out.messages = (await client.chat.messages.list(paused.conversation_id, paused.id)).map((m) => ({ type: m.type, content: m.content }));

    const poll = await client.chat.createAndPoll({ bot_id: botId, additional_messages: question('and here?') });
    out.poll = { status: poll.chat.status, required_action: poll.chat.required_action ?? null };
    // 1.3.9 declares submitToolOutputs as an async generator even without streaming: the
    // Chat is the generator's return value.
    const pollCall = poll.chat.required_action.submit_tool_outputs.tool_calls[0];
    const { value } = await client.chat.submitToolOutputs({
      conversation_id: poll.chat.conversation_id,
      chat_id: poll.chat.id,
      tool_outputs: [{ tool_call_id: pollCall.id, output: 'Lyon' }],
      stream: false,
    }).next();
    out.submitted = value;
    return out;
  },

  // ARG: a published bot whose scripted model calls a plugin tool, then answers. Output: the
  // bot's plugin_info_list, a stream's completed messages and answer, a createAndPoll's messages.
  async pluginTools(botId) {
    const bot = await client.bots.retrieveNew(botId);
    const completed = [];
    let answer = '';
    const events = [];
    for await (const part of client.chat.stream({ bot_id: botId, additional_messages: question('weather?') })) {
      events.push(part.event);
      if (part.event === ChatEventType.CONVERSATION_MESSAGE_COMPLETED) completed.push({ type: part.data.type, content: part.data.content });
      if (part.event === ChatEventType.CONVERSATION_MESSAGE_DELTA) answer += part.data.content;
    }
    const poll = await client.chat.createAndPoll({ bot_id: botId, additional_messages: question('again') });
    return {
      pluginInfoList: bot.plugin_info_list,
      stream: { events, completed, answer },
      poll: { status: poll.chat.status, messages: poll.messages.map((m) => ({ type: m.type, content: m.content })) },
    };
  },
};

if (!(scenario in scenarios)) throw new Error(`unknown scenario ${scenario}`);
const out = await scenarios[scenario](arg);
// Exit once the output is written, even if a createAndPoll loop is still polling.
process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
