// node_matmul: CPU-bound kernel, C = A x A^T of a CSV matrix, `repeat` 1..3 times (C fed back).
const { StoreError, paramInt, runEtl } = require('faasload_store');

function parse(data) {
  const rows = data.toString('utf8').split('\n').filter((l) => l).map((l) => l.split(',').map(Number));
  if (!rows.length || rows.some((r) => r.length !== rows[0].length || r.some((v) => !Number.isFinite(v)))) {
    throw new StoreError('input is not a rectangular CSV matrix');
  }
  return rows;
}

function main(args) {
  return runEtl(args, 'node_matmul', (a) => {
    const repeat = paramInt(a, 'repeat', 1, 1, 3);
    return (data) => {
      let m = parse(data);
      for (let k = 0; k < repeat; k++) {
        const c = m.map((r) => m.map((col) => r.reduce((s, x, i) => s + x * col[i], 0)));
        const max = Math.max(...c.map((r) => Math.max(...r.map(Math.abs)))) || 1;
        m = c.map((r) => r.map((v) => v / max));
      }
      return Buffer.from(m.map((r) => r.map((v) => v.toPrecision(6)).join(',') + '\n').join(''));
    };
  });
}
exports.main = main;
