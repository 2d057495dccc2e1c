// faasload ActionLoop launcher for Node.js actions.
//
// Reads one JSON line per message on stdin and answers one JSON line on fd 3. The first
// message initialises: {"main", "binary", "file", "env"}; the code is action.js in the
// working directory (a CommonJS module, or a script defining `main`). Every later message
// is an activation: keys other than "value" become __OW_<KEY>. Results may be promises.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

function reply(text) {
  fs.writeSync(3, text + '\n');
}

function load(init) {
  const main = init.main || 'main';
  if (init.binary) throw new Error('zip actions are not supported for nodejs on this platform');
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
