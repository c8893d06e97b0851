// Drives @coze/api's files, datasets and documents calls against a cozeplus edge and prints
// what the SDK returned as JSON; test_knowledge_coze_api_js.py asserts.
// Usage: node coze_api_knowledge.mjs BASE_URL TOKEN SPACE_ID OTHER_TOKEN
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CozeAPI } from '@coze/api';

const [baseURL, token, spaceId, otherToken] = process.argv.slice(2);
const client = new CozeAPI({ token, baseURL });
const intruder = new CozeAPI({ token: otherToken, baseURL });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const b64 = (text) => Buffer.from(text, 'utf8').toString('base64');

async function caught(call) {
  try {
    return { returned: await call() };
  } catch (error) {
    return { threw: { status: error.status, code: error.code, msg: error.msg } };
  }
}

const out = {};
// In Node the SDK's form encoder takes a stream; the file name comes from its path.
const path = join(mkdtempSync(join(tmpdir(), 'kb-')), 'quoll.txt');
writeFileSync(path, 'Quolls are spotted marsupials.');
out.uploaded = await client.files.upload({ file: createReadStream(path) });
out.retrieved = await client.files.retrieve(out.uploaded.id);
out.created = await client.datasets.create({ name: 'js kb', space_id: spaceId, format_type: 0 });
const datasetId = out.created.dataset_id;
out.documents = await client.datasets.documents.create({
  dataset_id: datasetId,
  document_bases: [
    { name: 'quoll', source_info: { source_file_id: out.uploaded.id, document_source: 5 } },
    { name: '考拉', source_info: { file_base64: b64('考拉每天睡二十个小时。'), file_type: 'txt' } },
  ],
  chunk_strategy: { chunk_type: 0 },
});
const ids = out.documents.map((d) => d.document_id);
for (let i = 0; i < 600; i += 1) {
  out.progress = await client.datasets.process(datasetId, { document_ids: ids });
  if (out.progress.data.every((p) => p.status !== 0)) break;
  await sleep(100);
}
out.listed = await client.datasets.documents.list({ dataset_id: datasetId, page: 1, page_size: 10 });
out.datasets = await client.datasets.list({ space_id: spaceId, page_num: 1, page_size: 50 });
await client.datasets.update(datasetId, { name: 'js kb renamed' });
await client.datasets.documents.update({ document_id: ids[0], document_name: 'quoll.txt' });
out.renamed = await client.datasets.documents.list({ dataset_id: datasetId });
out.foreign = {
  retrieve: await caught(() => intruder.files.retrieve(out.uploaded.id)),
  process: await caught(() => intruder.datasets.process(datasetId, { document_ids: ids })),
  list: await caught(() => intruder.datasets.documents.list({ dataset_id: datasetId })),
  delete: await caught(() => intruder.datasets.delete(datasetId)),
};
await client.datasets.documents.delete({ document_ids: [ids[1]] });
out.afterDelete = await client.datasets.documents.list({ dataset_id: datasetId });
await client.datasets.delete(datasetId);
out.afterDatasetDelete = await caught(() => client.datasets.documents.list({ dataset_id: datasetId }));
console.log(JSON.stringify(out));
