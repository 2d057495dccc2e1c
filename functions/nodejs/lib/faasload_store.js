// Object store access and the ETL contract shared by the Node.js function suite.
//
// Storage interface (one class per backend): get(container, name) -> Buffer and
// put(container, name, data) -> bytes written. openStore(args) picks the backend named
// by the FAASLOAD_STORE environment variable (default "dir"). The "dir" backend keeps
// each container in a sub-directory of a root directory, given by the store_dir
// parameter or the FAASLOAD_STORE_DIR environment variable.
'use strict';
const fs = require('fs');
const path = require('path');

class StoreError extends Error {}

class DirStore {
  constructor(root) {
    if (!root) throw new StoreError('no object store: set the store_dir parameter or FAASLOAD_STORE_DIR');
    this.root = root;
  }
  _path(container, name) {
    for (const part of [container, name]) {
      if (!part || part.startsWith('/') || part.split('/').includes('..')) {
        throw new StoreError(`bad object name ${JSON.stringify(container)}/${JSON.stringify(name)}`);
      }
    }
    return path.join(this.root, container, name);
  }
  get(container, name) {
    try {
      return fs.readFileSync(this._path(container, name));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`cannot read object ${container}/${name}: ${e.code || e.message}`);
    }
  }
  put(container, name, data) {
    const p = this._path(container, name);
    try {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      const tmp = `${p}.tmp${process.pid}`;
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, p);
    } catch (e) {
      throw new StoreError(`cannot write object ${container}/${name}: ${e.code || e.message}`);
    }
    return data.length;
  }
}

const BACKENDS = { dir: (args) => new DirStore(args.store_dir || process.env.FAASLOAD_STORE_DIR) };

function openStore(args) {
  const kind = process.env.FAASLOAD_STORE || 'dir';
  if (!BACKENDS[kind]) throw new StoreError(`unknown object store backend ${JSON.stringify(kind)} (FAASLOAD_STORE)`);
  return BACKENDS[kind](args);
}

// [container, name] of the input: incont/object, or object = "container/name".
function inputLocation(args) {
  const obj = args.object;
  if (typeof obj !== 'string' || !obj) throw new StoreError("missing parameter 'object'");
  if (args.incont) return [String(args.incont), obj];
  const i = obj.indexOf('/');
  if (i < 0) throw new StoreError(`object ${JSON.stringify(obj)} has no container: give 'incont' or 'container/name'`);
  return [obj.slice(0, i), obj.slice(i + 1)];
}

function paramFloat(args, name, dflt, lo, hi) {
  const raw = args[name] === undefined ? dflt : args[name];
  const v = typeof raw === 'number' ? raw : (typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN);
  if (!Number.isFinite(v)) throw new StoreError(`parameter '${name}' must be a number, got ${JSON.stringify(raw)}`);
  if (v < lo || v > hi) throw new StoreError(`parameter '${name}' must be in ${lo}..${hi}, got ${v}`);
  return v;
}

function paramInt(args, name, dflt, lo, hi) {
  const v = paramFloat(args, name, dflt, lo, hi);
  if (!Number.isInteger(v)) throw new StoreError(`parameter '${name}' must be an integer, got ${JSON.stringify(args[name])}`);
  return v;
}

function paramChoice(args, name, dflt, values) {
  const raw = args[name] === undefined ? dflt : args[name];
  for (const c of values) {
    if (raw === c || String(raw).toLowerCase() === String(c).toLowerCase()) return c;
  }
  throw new StoreError(`parameter '${name}' must be one of ${JSON.stringify(values)}, got ${JSON.stringify(raw)}`);
}

function withExt(ext) {
  return (name) => {
    const slash = name.lastIndexOf('/');
    const dot = name.lastIndexOf('.');
    return (dot > slash ? name.slice(0, dot) : name) + '.' + ext;
  };
}

// Extract the input, transform it, load the output; returns the contract's result.
// prepare(args) checks the parameters (throwing StoreError) before any work and returns
// an async transform(Buffer) -> Buffer; outName(name) renames the output.
async function runEtl(args, fn, prepare, outName) {
  const ms = (a, b) => Math.round(Number(b - a) / 1e3) / 1e3;
  try {
    const transform = prepare(args);
    const store = openStore(args);
    const [incont, name] = inputLocation(args);
    const outcont = String(args.outcont || `out-${fn}`);
    const t0 = process.hrtime.bigint();
    const data = store.get(incont, name);
    const t1 = process.hrtime.bigint();
    const out = await transform(data);
    const t2 = process.hrtime.bigint();
    const oname = outName ? outName(name) : name;
    const size = store.put(outcont, oname, out);
    const t3 = process.hrtime.bigint();
    return {
      outputsize: size,
      times: { extract: ms(t0, t1), transform: ms(t1, t2), load: ms(t2, t3) },
      output: `${outcont}/${oname}`,
    };
  } catch (e) {
    if (e instanceof StoreError) return { error: e.message };
    throw e;
  }
}

module.exports = { StoreError, DirStore, BACKENDS, openStore, inputLocation, paramFloat, paramInt, paramChoice, withExt, runEtl };
