// node_sort: memory-bound kernel, sorts the lines of a text object (`reverse` false/true).
const { paramChoice, runEtl } = require('faasload_store');

function main(args) {
  return runEtl(args, 'node_sort', (a) => {
    const reverse = paramChoice(a, 'reverse', false, [false, true]);
    return (data) => {
      const lines = data.toString('utf8').split('\n');
      lines.sort();
      if (reverse) lines.reverse();
      return Buffer.from(lines.join('\n'));
    };
  });
}
exports.main = main;
