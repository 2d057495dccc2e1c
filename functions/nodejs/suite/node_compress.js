// node_compress: CPU-bound kernel, zlib deflate of an object at `level` 1..9 (output `.z`).
const zlib = require('zlib');
const { paramInt, runEtl, withExt } = require('faasload_store');

function main(args) {
  return runEtl(args, 'node_compress', (a) => {
    const level = paramInt(a, 'level', 6, 1, 9);
    return (data) => zlib.deflateSync(data, { level });
  }, withExt('z'));
}
exports.main = main;
