// Regenerates tests/tokenizer/data/hf_regression/<folder>.jsonl: HF `tokenizers` outputs on
// seeded random texts (words, spaces, digits, punctuation, scripts, emoji, special-token
// strings, combining marks, controls, random code points), in the cases.jsonl format of
// tests/data/tokenizers. Uses the same binding that produced the shared fixtures:
//   npm install @anush008/tokenizers@0.6.0
//   node gen_hf_cases.js /path/to/tests/data/tokenizers /path/to/out [cases_per_folder]
const { Tokenizer } = require('@anush008/tokenizers');
const fs = require('fs');
const path = require('path');

const [src, out, count = '200'] = process.argv.slice(2);
let seed = 20261127;
function rnd(n) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; }
const pools = [
  ['Hello', 'world', 'The', 'quick', "don't", "I'M", "we'll", "THEY'RE", 'naïve', 'café',
   'Straße', 'İstanbul', 'ΣΊΣΥΦΟΣ', 'Привет', 'ǅemal', 'supercalifragilistic'],
  [' ', '  ', '   ', '\t', '\n', '\r\n', '\n\n', ' \n ', '\u00a0', '\u3000', '\u2003', '\u0085',
   '\u200b', '\u2028', '\v', '\f'],
  ['0', '12', '123', '1234', '000', '00000', '1,000,000', '0.000001', '٣٤٥', '१२३', '½', 'Ⅻ'],
  ['.', ',', '!', '?', '...', '?!?', '--', '—', '(', ')', '"', "'", '`', '@#$%^&*', '«»', '、',
   '。', '！'],
  ['中文', '你好世界', '日本語', 'カタカナ', '한국어', 'العربية', 'हिन्दी', 'नमस्ते', 'ελληνικά',
   'עברית', 'ไทย', '𱍐𱍑'],
  ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '1️⃣', '🇺🇸', '❤️', '🫠', '𒀀', '𝔥𝔢𝔩𝔩𝔬', 'ＦＵＬＬ', 'ﬁ', '㎏',
   '™', '\u166d', '\u061d', '\u{11f50}'],
  ['<s>', '</s>', '<unk>', '<pad>', '<extra_id_0>', '<|begin_of_text|>', '<|eot_id|>', '<start>',
   '<delim>', '<s', '<|', '▁', '▁▁', 'Ġ', '</w>', '<0x41>'],
  ['e\u0301', '\u0301', 'n\u0303', '\u0000', '\ufffd', '\uffff', '\u{10ffff}', '\u0001',
   '\u00ad', '\ufeff', '\ue000', '\u0378', '\u08d4'],
];
function randomText() {
  let s = '';
  for (let i = 0, n = rnd(4) === 0 ? rnd(40) : rnd(12); i < n; i++) {
    const pool = pools[rnd(pools.length)];
    s += pool[rnd(pool.length)] + (rnd(3) === 0 ? ' ' : '');
  }
  return s;
}
function randomCodepoints() {
  let s = '';
  for (let i = 0, n = rnd(12); i < n; i++) {
    let cp = [rnd(0x80), rnd(0x800), rnd(0x10000), 0x1F300 + rnd(0x700), rnd(0x110000)][rnd(5)];
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}

async function main() {
  const texts = [];
  for (let i = 0; i < Number(count); i++) texts.push(i % 5 === 4 ? randomCodepoints() : randomText());
  fs.mkdirSync(out, { recursive: true });
  for (const folder of fs.readdirSync(src).sort()) {
    const file = path.join(src, folder, 'tokenizer.json');
    if (!fs.existsSync(file)) continue;
    const tok = Tokenizer.fromFile(file);
    const hasPair = JSON.parse(fs.readFileSync(file)).post_processor?.pair !== undefined;
    const lines = [];
    for (const text of texts) {
      const add = rnd(2) === 0;
      const pair = hasPair && rnd(5) === 0 ? texts[rnd(texts.length)] : null;
      const enc = await tok.encode(text, pair, { addSpecialTokens: add });
      const c = { text };
      if (pair !== null) c.pair = pair;
      Object.assign(c, { add_special_tokens: add, ids: enc.getIds(), tokens: enc.getTokens() });
      if (pair !== null) c.type_ids = enc.getTypeIds();
      c.decoded = await tok.decode(c.ids, false);
      c.decoded_skip_special = await tok.decode(c.ids, true);
      lines.push(JSON.stringify(c));
    }
    fs.writeFileSync(path.join(out, folder + '.jsonl'), lines.join('\n') + '\n');
  }
}
main();
