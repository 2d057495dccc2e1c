// node_json: JSON round trip, parses an object, re-serialises it with sorted keys and `indent` 0/2/4.
const { StoreError, paramChoice, runEtl } = require('faasload_store');

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}

function main(args) {
  return runEtl(args, 'node_json', (a) => {
    const indent = paramChoice(a, 'indent', 0, [0, 2, 4]);
    return (data) => {
      let doc;
      try {
        doc = JSON.parse(data.toString('utf8'));
      } catch (e) {
        throw new StoreError(`input is not JSON: ${e.message}`);
      }
      return Buffer.from(JSON.stringify(sortKeys(doc), null, indent || undefined));
    };
  });
}
exports.main = main;
