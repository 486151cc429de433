// Encodes texts with the Hugging Face `tokenizers` library (Rust core, through the npm
// package @anush008/tokenizers), for ref_counts.py.
//
//   npm install @anush008/tokenizers        (in a scratch folder; NODE_PATH to it)
//   node hf_encode.mjs TOKENIZER.json < texts.jsonl > ids.jsonl
//
// Input: one JSON string per line. Output: one JSON array of ids per line, no special
// tokens added.
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

const require = createRequire(path.join(process.cwd(), 'x.js'));
const { Tokenizer } = require('@anush008/tokenizers');

const file = process.argv[2];
if (!file) { console.error('usage: node hf_encode.mjs TOKENIZER.json < texts.jsonl'); process.exit(2); }
const tok = Tokenizer.fromFile(file);
const texts = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
const out = [];
for (let i = 0; i < texts.length; i += 1000) {
  const encs = await tok.encodeBatch(texts.slice(i, i + 1000), { addSpecialTokens: false });
  for (const e of encs) out.push(JSON.stringify(Array.from(e.getIds())));
}
fs.writeFileSync(1, out.join('\n') + (out.length ? '\n' : ''));
