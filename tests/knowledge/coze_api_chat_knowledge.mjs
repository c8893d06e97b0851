// @coze/api's chat against bots with knowledge and a vision model: uploads an image, asks a
// knowledge bot and a vision bot (the image by file id), prints what the SDK returned as
// JSON; test_knowledge_coze_api_js.py checks the prompts the mock model received.
// Usage: node chat_knowledge.mjs BASE_URL TOKEN KB_BOT QUESTION VISION_BOT IMAGE_PATH MARKER
import { createReadStream } from 'node:fs';
import { CozeAPI, RoleType } from '@coze/api';

const [baseURL, token, kbBot, question, visionBot, imagePath, marker] = process.argv.slice(2);
const client = new CozeAPI({ token, baseURL });

const out = {};
const answered = await client.chat.createAndPoll({
  bot_id: kbBot,
  additional_messages: [{ role: RoleType.User, content: question, content_type: 'text' }],
});
out.knowledge = { status: answered.chat.status, answers: answered.messages.filter((m) => m.type === 'answer').length };
out.uploaded = await client.files.upload({ file: createReadStream(imagePath) });
const seen = await client.chat.createAndPoll({
  bot_id: visionBot,
  additional_messages: [
    {
      role: RoleType.User,
      content_type: 'object_string',
      content: JSON.stringify([
        { type: 'text', text: marker },
        { type: 'image', file_id: out.uploaded.id },
      ]),
    },
  ],
});
out.vision = { status: seen.chat.status };
console.log(JSON.stringify(out));
