// faasload ActionLoop launcher for Node.js actions.
//
// Reads one JSON line per message on stdin and answers one JSON line on fd 3. The first
// message initialises: {"main", "binary", "file", "env"}; the code is action.js in the
// working directory (a CommonJS module, or a script defining `main`), or action.zip (a
// package: package.json `main`, else index.js; unpacked here). Every later message
// is an activation: keys other than "value" become __OW_<KEY>. Results may be promises.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const zlib = require('zlib');

function reply(text) {
  fs.writeSync(3, text + '\n');
}

// Unpacks a zip archive (stored or deflated entries) into `dest`, refusing unsafe paths.
function unzip(file, dest) {
  const buf = fs.readFileSync(file);
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('not a zip file');
  const root = path.resolve(dest);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad zip central directory');
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28);
    const xlen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    const off = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    p += 46 + nlen + xlen + clen;
    const target = path.resolve(root, name);
    if (target !== root && !target.startsWith(root + path.sep)) throw new Error('unsafe path in zip: ' + name);
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    const start = off + 30 + buf.readUInt16LE(off + 26) + buf.readUInt16LE(off + 28);
    const data = buf.subarray(start, start + csize);
    let content;
    if (method === 0) content = data;
    else if (method === 8) content = zlib.inflateRawSync(data);
    else throw new Error('unsupported zip compression method ' + method);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content);
  }
}

function loadZip(init, main) {
  unzip(init.file, 'action');
  const dir = path.resolve('action');
  let entry = 'index.js';
  const pkg = path.join(dir, 'package.json');
  if (fs.existsSync(pkg)) entry = JSON.parse(fs.readFileSync(pkg, 'utf8')).main || entry;
  const mod = require(path.resolve(dir, entry));
  const f = typeof mod[main] === 'function' ? mod[main] : mod;
  if (typeof f !== 'function') throw new Error("action main function '" + main + "' not found");
  return f;
}

function load(init) {
  const main = init.main || 'main';
  if (init.binary) return loadZip(init, main);
  const code = fs.readFileSync(init.file, 'utf8');
  const mod = { exports: {} };
  const fn = new Function('module', 'exports', 'require', '__filename', '__dirname',
    code + '\n;return (typeof ' + main + " === 'function') ? " + main + ' : undefined;');
  let f;
  try {
    f = fn(mod, mod.exports, require, path.resolve(init.file), process.cwd());
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
  }
  if (typeof f !== 'function') f = mod.exports[main];
  if (typeof f !== 'function' && typeof mod.exports === 'function') f = mod.exports;
  if (typeof f !== 'function') throw new Error("action main function '" + main + "' not found");
  return f;
}

async function serve() {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  let fn = null;
  for await (const line of rl) {
    const msg = JSON.parse(line);
    if (fn === null) {
      for (const [k, v] of Object.entries(msg.env || {})) {
        process.env[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      try {
        fn = load(msg);
      } catch (e) {
        console.error(e && e.stack ? e.stack : String(e));
        reply(JSON.stringify({ error: 'Cannot initialize the action: ' + (e && e.message ? e.message : String(e)) }));
        process.exit(1);
      }
      reply(JSON.stringify({ ok: true }));
      continue;
    }
    for (const [k, v] of Object.entries(msg)) {
      if (k !== 'value') process.env['__OW_' + k.toUpperCase()] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    let res;
    try {
      res = await fn(msg.value || {});
    } catch (e) {
      console.error(e && e.stack ? e.stack : String(e));
      res = { error: e && e.message ? e.message : String(e) };
    }
    let text = JSON.stringify(res);
    if (text === undefined) text = 'null';
    reply(text);
  }
}

serve();
