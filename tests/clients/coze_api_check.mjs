// Drives the official @coze/api SDK against a cozeplus edge and prints what it saw as JSON.
// Usage: node coze_api_check.mjs BASE_URL TOKEN BOT_ID
import { ChatEventType, CozeAPI, RoleType } from '@coze/api';

const [baseURL, token, botId] = process.argv.slice(2);
const client = new CozeAPI({ token, baseURL });
const question = (text) => [{ role: RoleType.User, content: text, content_type: 'text' }];
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

console.log(JSON.stringify(out));
