// faasload action proxy for the nodejs runtime image (OpenWhisk-compatible).
//
// An HTTP server on port 8080 speaking OpenWhisk's container protocol:
//   POST /init {"value": {"name", "main", "code", "binary", "env"}} -> {"ok": true} or 502 {"error"}
//   POST /run  {"value": {...}, "activation_id", "namespace", "action_name", "deadline", ...}
// Like OpenWhisk's ActionLoop proxy it runs the action in a separate process (the
// launcher, /proxy/launcher.js: one JSON line per message on stdin, one answer line on
// fd 3; keys but "value" become __OW_<KEY>). The action's stdout/stderr are the
// container's; after each activation (and a failed init) the proxy writes the sentinel
// XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX to both. When the action process dies without
// answering (crash, OOM kill) the proxy exits at once without answering, so the container
// stops and its state (OOMKilled) tells the invoker why.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const WORK = '/action';
let proc = null;
let pending = null; // resolve of the answer being waited for
let buffered = '';
let closed = false; // the launcher's answer pipe reached EOF

function sentinels() {
  fs.writeSync(1, SENTINEL + '\n');
  fs.writeSync(2, SENTINEL + '\n');
}

function die() {
  sentinels();
  process.exit(1);
}

function exchange(msg) {
  if (closed) die();
  return new Promise((resolve) => {
    pending = resolve;
    proc.stdin.write(JSON.stringify(msg) + '\n');
  });
}

function start(value) {
  fs.mkdirSync(WORK, { recursive: true });
  const binary = !!value.binary;
  const file = binary ? 'action.zip' : 'action.js';
  const code = value.code || '';
  fs.writeFileSync(path.join(WORK, file), binary ? Buffer.from(code, 'base64') : code);
  proc = spawn(process.execPath, ['/proxy/launcher.js'], {
    cwd: WORK,
    stdio: ['pipe', 'inherit', 'inherit', 'pipe'],
  });
  proc.stdin.on('error', () => {});
  proc.stdio[3].on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const r = pending;
      pending = null;
      if (r) r(line);
    }
  });
  // EOF on fd 3 comes after every answer line was delivered: dying is only right when
  // an answer is still awaited (a failed init answers, then its launcher exits).
  proc.stdio[3].on('close', () => {
    closed = true;
    if (pending) die();
  });
  return exchange({ main: value.main || 'main', binary, file, env: value.env || {} });
}

function answer(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let msg;
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch (e) {
      return answer(res, 400, JSON.stringify({ error: 'request is not JSON' }));
    }
    if (req.url === '/init') {
      if (proc) return answer(res, 403, JSON.stringify({ error: 'Cannot initialize the action more than once.' }));
      let line;
      try {
        line = await start(msg.value || {});
      } catch (e) {
        sentinels();
        return answer(res, 502, JSON.stringify({ error: 'Cannot initialize the action: ' + e.message }));
      }
      let ok = false;
      try { ok = JSON.parse(line).ok === true; } catch (e) { ok = false; }
      if (ok) return answer(res, 200, JSON.stringify({ ok: true }));
      sentinels();
      return answer(res, 502, line);
    }
    if (req.url === '/run') {
      if (!proc) return answer(res, 502, JSON.stringify({ error: 'The action was not initialized.' }));
      const line = await exchange(msg);
      sentinels();
      return answer(res, 200, line);
    }
    return answer(res, 404, JSON.stringify({ error: 'not found' }));
  });
}).listen(8080, '0.0.0.0');
