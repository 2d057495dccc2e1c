// Drives the faasload platform with the official `openwhisk` npm client: creates an
// action, invokes it (blocking and not), lists actions and activations, fetches records.
// Environment: __OW_API_HOST (http://127.0.0.1:port), __OW_API_KEY (uuid:key).
// Prints one JSON summary line; exits non-zero on the first failure.
'use strict';
const openwhisk = require('openwhisk');

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function main() {
  const ow = openwhisk({ apihost: process.env.__OW_API_HOST, api_key: process.env.__OW_API_KEY });
  const code = "function main(p) { console.log('js client says', p.who); return { hi: p.who, id: process.env.__OW_ACTIVATION_ID }; }";
  const created = await ow.actions.create({ name: 'jsclient', action: code, kind: 'nodejs:20' });
  check(created.name === 'jsclient' && created.version === '0.0.1', 'create: ' + JSON.stringify(created));
  let dup = null;
  try {
    await ow.actions.create({ name: 'jsclient', action: code, kind: 'nodejs:20' });
  } catch (e) {
    dup = e;
  }
  check(dup && dup.statusCode === 409, 'a second create is refused with 409');
  const updated = await ow.actions.update({ name: 'jsclient', action: code, kind: 'nodejs:20' });
  check(updated.version === '0.0.2', 'update bumps the version: ' + updated.version);

  const rec = await ow.actions.invoke({ name: 'jsclient', blocking: true, params: { who: 'js' } });
  check(rec.response && rec.response.success === true, 'blocking invoke: ' + JSON.stringify(rec));
  check(rec.response.result.hi === 'js' && rec.response.result.id === rec.activationId, 'result');
  const result = await ow.actions.invoke({ name: 'jsclient', blocking: true, result: true, params: { who: 'r' } });
  check(result.hi === 'r', 'result only: ' + JSON.stringify(result));
  const async = await ow.actions.invoke({ name: 'jsclient', params: { who: 'later' } });
  check(/^[0-9a-f]{32}$/.test(async.activationId), 'non-blocking gives an activation id');

  const actions = await ow.actions.list();
  check(actions.some((a) => a.name === 'jsclient'), 'list actions');
  const got = await ow.actions.get({ name: 'jsclient' });
  check(got.exec.kind === 'nodejs:20' && got.exec.code === code, 'get action');

  let fetched = null;
  for (let i = 0; i < 100 && !fetched; i++) {
    try {
      fetched = await ow.activations.get({ name: async.activationId });
    } catch (e) {
      if (e.statusCode !== 404) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  check(fetched && fetched.response.result.hi === 'later', 'the non-blocking record is fetched');
  const logs = await ow.activations.logs({ name: rec.activationId });
  check(logs.logs.some((l) => l.endsWith('stdout: js client says js')), 'logs: ' + JSON.stringify(logs));
  const res = await ow.activations.result({ name: rec.activationId });
  check(res.result.hi === 'js', 'activation result');
  const list = await ow.activations.list({ name: 'jsclient', limit: 10 });
  check(list.length === 3, 'list activations: ' + list.length);
  const ns = await ow.namespaces.list();
  check(ns.length === 1 && ns[0] === 'guest', 'namespaces: ' + JSON.stringify(ns));
  await ow.actions.delete({ name: 'jsclient' });
  console.log(JSON.stringify({ ok: true, activations: list.length, version: updated.version }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
